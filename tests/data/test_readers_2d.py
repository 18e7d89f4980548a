"""MPII and COCO keypoint readers and the person-record crop cache, on small synthetic
annotation files and real JPEGs (written and decoded by OpenCV).

Every annotated joint is drawn as a dot in its own colour, so a test can check that the
cached crop shows joint j's colour where the cache says joint j is.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.core import crops
from posefile.skeleton import JOINT_INDEX as INDEX, NUM_JOINTS as J
from inference.models.hourglass import HourglassConfig
from training.train_2d import load_training_data, make_batch, parse_args
from data.augment import NO_AUGMENT
from data.coco import COCO, FACE, from_coco, read_coco
from data.lsp import build_cache_from_records, cache_path, load_dataset
from data.records import DatasetError
from data.mpii import read_mpii

SIDE = 160
# A standing person facing the camera, in units of its height (our joint order).
TEMPLATE = np.array([
    (-0.15, 0.50), (-0.13, 0.25), (-0.10, 0.00), (0.10, 0.00), (0.13, 0.25), (0.15, 0.50),   # legs
    (0.00, 0.00), (0.00, -0.28), (0.00, -0.38), (0.00, -0.50),                               # trunk, head
    (-0.30, 0.00), (-0.25, -0.14), (-0.18, -0.28), (0.18, -0.28), (0.25, -0.14), (0.30, 0.00),  # arms
], np.float32)
FACE_TEMPLATE = np.array([(0.0, -0.42), (0.03, -0.44), (-0.03, -0.44), (0.06, -0.43), (-0.06, -0.43)],
                         np.float32)  # nose, l_eye, r_eye, l_ear, r_ear (COCO order)
# 16 saturated colours, pairwise at least 128 apart (sum of |BGR| differences)
COLOURS = np.array([(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255), (255, 255, 0),
                    (255, 255, 255), (0, 128, 255), (0, 255, 128), (128, 0, 255), (255, 0, 128),
                    (128, 255, 0), (255, 128, 0), (128, 128, 255), (128, 255, 128), (255, 128, 128)], np.int32)


def person(cx, cy, h):
    """-> our 16 joints (16, 2) and COCO's 5 face points (5, 2), image px (whole pixels)."""
    return (np.round(TEMPLATE * h + (cx, cy)).astype(np.float32),
            np.round(FACE_TEMPLATE * h + (cx, cy)).astype(np.float32))


def write_image(path: Path, people, size=(300, 420)):
    """people: list of (joints (16, 2), drawn (16,) bool). A JPEG with a 7x7 dot per drawn joint."""
    img = np.full(size + (3,), 40, np.uint8)
    for joints, drawn in people:
        for j in np.where(drawn)[0]:
            x, y = joints[j].astype(int)
            img[y - 3:y + 4, x - 3:x + 4] = COLOURS[j]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 98])


def nearest_colour(img, xy) -> int:
    """Joint index whose colour is closest to the crop's pixels at xy (3x3 neighbourhood)."""
    x, y = np.round(xy).astype(int)
    patch = img[y - 1:y + 2, x - 1:x + 2].reshape(-1, 1, 3).astype(np.int32)
    d = np.abs(patch - COLOURS[None]).sum(-1).min(0)
    return int(d.argmin())


# ---------------------------------------------------------------- synthetic data sets

@pytest.fixture(scope="module")
def mpii(tmp_path_factory):
    root = tmp_path_factory.mktemp("mpii")
    a0, _ = person(100, 140, 200)
    a1, _ = person(300, 140, 180)
    a2, _ = person(200, 60, 80)        # only 4 joints annotated: skipped
    b0, _ = person(210, 150, 220)
    b1, _ = person(380, 270, 24)       # tiny: skipped
    lab1 = np.ones(J, bool)
    lab1[[INDEX["r_ankle"], INDEX["l_ankle"]]] = False
    write_image(root / "images" / "a.jpg", [(a0, np.ones(J, bool)), (a1, lab1)])
    write_image(root / "images" / "b.jpg", [(b0, np.ones(J, bool))])

    def entry(img, joints, flags, valid, k):
        js = [[float(x), float(y), float(f)] for (x, y), f in zip(joints, flags)]
        return {"img_paths": img, "joint_self": js, "isValidation": valid, "people_index": k,
                "objpos": joints.mean(0).tolist(), "scale_provided": 1.0, "dataset": "MPI"}

    flags0 = np.ones(J)
    flags0[INDEX["l_wrist"]] = 0                 # annotated but occluded
    j1, flags1 = a1.copy(), np.ones(J)
    j1[INDEX["r_ankle"]] = 0, 0                  # not annotated, written as (0, 0)
    j1[INDEX["l_ankle"]] = -1, -1                # ... or as (-1, -1)
    flags1[[INDEX["r_ankle"], INDEX["l_ankle"]]] = 0
    j2 = np.zeros((J, 2), np.float32)
    j2[:4] = a2[:4]
    ann = [entry("a.jpg", a0, flags0, 0.0, 0), entry("a.jpg", j1, flags1, 0.0, 1),
           entry("a.jpg", j2, np.r_[np.ones(4), np.zeros(12)], 0.0, 2),
           entry("b.jpg", b0, np.ones(J), 1.0, 0), entry("b.jpg", b1, np.ones(J), 0.0, 1)]
    (root / "mpii_annotations.json").write_text(json.dumps(ann))
    return dict(root=root, json=root / "mpii_annotations.json", a0=a0, a1=a1, b0=b0)


def coco_keypoints(joints, face, labelled_body=None, v=2):
    """Our template joints + face -> COCO keypoints (17, 3)."""
    kp = np.zeros((17, 3), np.float32)
    names = {"l_shoulder": "l_shoulder", "r_shoulder": "r_shoulder", "l_elbow": "l_elbow", "r_elbow": "r_elbow",
             "l_wrist": "l_wrist", "r_wrist": "r_wrist", "l_hip": "l_hip", "r_hip": "r_hip", "l_knee": "l_knee",
             "r_knee": "r_knee", "l_ankle": "l_ankle", "r_ankle": "r_ankle"}
    for c, ours in names.items():
        kp[COCO[c], :2] = joints[INDEX[ours]]
        kp[COCO[c], 2] = v
    kp[FACE, :2] = face
    kp[FACE, 2] = v
    if labelled_body is not None:
        for c in names:
            if c not in labelled_body:
                kp[COCO[c]] = 0
    return kp


@pytest.fixture(scope="module")
def coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco")
    pa, fa = person(100, 140, 200)
    pb, fb = person(300, 150, 190)
    pc, fc = person(200, 140, 150)    # crowd: skipped
    pd, fd = person(90, 150, 200)     # 5 body keypoints: skipped
    pe, fe = person(300, 150, 200)
    pv, fv = person(200, 150, 210)
    direct = np.ones(J, bool)
    direct[[INDEX["pelvis"], INDEX["thorax"], INDEX["neck"], INDEX["head_top"]]] = False
    kb_direct = direct.copy()
    kb_direct[INDEX["l_shoulder"]] = False
    write_image(root / "train2017" / "a.jpg", [(pa, direct), (pb, kb_direct)])
    write_image(root / "train2017" / "b.jpg", [(pe, direct)])
    write_image(root / "val2017" / "v.jpg", [(pv, direct)])

    ka = coco_keypoints(pa, fa)
    ka[COCO["r_knee"], 2] = 1                     # labelled, occluded: still trained on
    kb = coco_keypoints(pb, fb)
    kb[COCO["l_shoulder"]] = 0                    # unlabelled: thorax cannot be derived
    kd = coco_keypoints(pd, fd, labelled_body={"l_hip", "r_hip", "l_knee", "r_knee", "l_ankle"})

    def ann(i, img, kp, crowd=0):
        return {"id": i, "image_id": img, "category_id": 1, "iscrowd": crowd, "keypoints": kp.ravel().tolist(),
                "num_keypoints": int((kp[:, 2] > 0).sum()), "bbox": [0, 0, 1, 1], "area": 1.0}

    train = {"images": [{"id": 1, "file_name": "a.jpg", "width": 420, "height": 300},
                        {"id": 2, "file_name": "b.jpg", "width": 420, "height": 300}],
             "annotations": [ann(10, 1, ka), ann(11, 1, kb), ann(12, 1, coco_keypoints(pc, fc), crowd=1),
                             ann(13, 2, kd), ann(14, 2, coco_keypoints(pe, fe))],
             "categories": [{"id": 1, "name": "person", "keypoints": list(COCO)}]}
    val = {"images": [{"id": 7, "file_name": "v.jpg", "width": 420, "height": 300}],
           "annotations": [ann(70, 7, coco_keypoints(pv, fv))]}
    (root / "annotations").mkdir()
    (root / "annotations" / "person_keypoints_train2017.json").write_text(json.dumps(train))
    (root / "annotations" / "person_keypoints_val2017.json").write_text(json.dumps(val))
    return dict(root=root, train=root / "annotations" / "person_keypoints_train2017.json",
                val=root / "annotations" / "person_keypoints_val2017.json", pa=pa, pb=pb, pe=pe, ka=ka, kb=kb)


# ---------------------------------------------------------------- MPII

def test_mpii_reader_keeps_joint_order_labels_and_people(mpii):
    rec = read_mpii(mpii["json"])
    # two usable people on a.jpg (the 4-joint one is skipped), one on b.jpg (the tiny one is skipped)
    assert rec.names.tolist() == ["a.jpg#0", "a.jpg#1", "b.jpg#0"]
    assert rec.images.tolist() == [str(mpii["root"] / "images" / n) for n in ("a.jpg", "a.jpg", "b.jpg")]
    assert rec.is_test.tolist() == [False, False, True]
    np.testing.assert_array_equal(rec.joints[0], mpii["a0"])
    np.testing.assert_array_equal(rec.joints[2], mpii["b0"])
    # occluded but annotated: labelled; (0, 0) and (-1, -1): not labelled
    assert rec.visible[0].all()
    assert rec.visible[1].sum() == 14 and not rec.visible[1, [INDEX["r_ankle"], INDEX["l_ankle"]]].any()
    np.testing.assert_array_equal(rec.joints[1][rec.visible[1]], mpii["a1"][rec.visible[1]])
    # box = tight joints' box (head_top to ankles)
    np.testing.assert_allclose(rec.boxes[0], crops.box_from_joints(mpii["a0"], np.ones(J, bool)))
    strict = read_mpii(mpii["json"], occluded=False)
    assert not strict.visible[0, INDEX["l_wrist"]] and strict.visible[0].sum() == 15


def test_mpii_crop_cache_puts_each_persons_joints_on_its_dots(mpii):
    rec = read_mpii(mpii["json"])
    cs = build_cache_from_records(rec, side=SIDE)
    assert cs.images.shape == (3, SIDE, SIDE, 3) and cs.names.tolist() == rec.names.tolist()
    for i in range(len(cs.names)):
        v = cs.visible[i]
        assert ((cs.joints[i][v] >= 2) & (cs.joints[i][v] < SIDE - 2)).all()
        # the person's joints' box is the shared box of the cache
        np.testing.assert_allclose(crops.box_from_joints(cs.joints[i], v), cs.box, atol=0.6)
        for j in np.where(v)[0]:
            assert nearest_colour(cs.images[i], cs.joints[i, j]) == j, (cs.names[i], j)


# ---------------------------------------------------------------- COCO

def test_coco_mapping_derived_and_missing_joints():
    kp = np.zeros((2, 17, 3), np.float32)
    kp[..., :2] = np.arange(34, dtype=np.float32).reshape(17, 2) * 3 + 5
    kp[..., 2] = 2
    kp[1, COCO["r_hip"], 2] = 0
    joints, vis = from_coco(kp)
    assert joints.shape == (2, 16, 2) and vis.shape == (2, 16)
    for name in ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
                 "r_shoulder", "l_shoulder", "l_elbow", "l_wrist"):
        np.testing.assert_array_equal(joints[0, INDEX[name]], kp[0, COCO[name], :2])
    np.testing.assert_allclose(joints[0, INDEX["pelvis"]], kp[0, [COCO["l_hip"], COCO["r_hip"]], :2].mean(0))
    np.testing.assert_allclose(joints[0, INDEX["thorax"]],
                               kp[0, [COCO["l_shoulder"], COCO["r_shoulder"]], :2].mean(0))
    assert vis[0].sum() == 14 and not vis[:, [INDEX["neck"], INDEX["head_top"]]].any()
    # one hip unlabelled: that hip and the pelvis are not labelled, the rest are
    assert not vis[1, INDEX["r_hip"]] and not vis[1, INDEX["pelvis"]] and vis[1].sum() == 12


def test_coco_reader_skips_crowds_and_sparse_people(coco):
    rec = read_coco(coco["train"])
    assert rec.names.tolist() == ["a.jpg#10", "a.jpg#11", "b.jpg#14"]
    assert rec.images[0] == str(coco["root"] / "train2017" / "a.jpg")   # standard layout found
    assert not rec.is_test.any()
    np.testing.assert_array_equal(rec.joints[0, INDEX["r_ankle"]], coco["ka"][COCO["r_ankle"], :2])
    np.testing.assert_array_equal(rec.joints[0, INDEX["l_wrist"]], coco["ka"][COCO["l_wrist"], :2])
    assert rec.visible[0, INDEX["r_knee"]]                                # v = 1 counts as labelled
    np.testing.assert_allclose(rec.joints[0, INDEX["thorax"]], coco["pa"][INDEX["thorax"]])
    assert rec.visible[0].sum() == 14
    assert not rec.visible[1, INDEX["l_shoulder"]] and not rec.visible[1, INDEX["thorax"]]
    # the box reaches above the face (estimated head top) and down to the ankles
    top = rec.boxes[0, 1] - rec.boxes[0, 2] / 2
    assert top < coco["pa"][INDEX["head_top"], 1] + 0.05 * 200
    assert rec.boxes[0, 1] + rec.boxes[0, 2] / 2 >= coco["pa"][INDEX["r_ankle"], 1] - 0.5
    val = read_coco(coco["val"], is_test=True)
    assert val.names.tolist() == ["v.jpg#70"] and val.is_test.all()
    assert val.images[0] == str(coco["root"] / "val2017" / "v.jpg")


def test_coco_crop_cache_puts_each_persons_joints_on_its_dots(coco):
    rec = read_coco(coco["train"])
    cs = build_cache_from_records(rec, side=SIDE)
    for i in range(len(cs.names)):
        v = cs.visible[i]
        assert ((cs.joints[i][v] >= 2) & (cs.joints[i][v] < SIDE - 2)).all()
        # the record's box maps onto the shared box
        M = crops.crop_matrix(rec.boxes[i], SIDE, scale=1.6)
        np.testing.assert_allclose(crops.apply_affine(M, rec.boxes[i, :2]), cs.box[:2], atol=1e-3)
        for j in np.where(v)[0]:
            if j not in (INDEX["pelvis"], INDEX["thorax"]):     # derived joints have no dot
                assert nearest_colour(cs.images[i], cs.joints[i, j]) == j, (cs.names[i], j)


# ---------------------------------------------------------------- cache files and train_2d glue

def test_cache_files_are_named_by_kind_and_reloaded(mpii, coco, tmp_path):
    cs = load_dataset("mpii", mpii["json"], tmp_path, side=SIDE)
    files = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert len(files) == 1 and files[0].startswith(f"mpii_crops_{SIDE}_")
    mtime = os.path.getmtime(tmp_path / files[0])
    again = load_dataset("mpii", mpii["json"], tmp_path, side=SIDE)
    assert os.path.getmtime(tmp_path / files[0]) == mtime
    np.testing.assert_array_equal(again.images, cs.images)
    np.testing.assert_array_equal(again.joints, cs.joints)
    np.testing.assert_array_equal(again.names, cs.names)
    # a subset of training people is another cache; held-out people are all kept
    sub = load_dataset("mpii", mpii["json"], tmp_path, side=SIDE, max_people=1)
    assert (~sub.is_test).sum() == 1 and sub.is_test.sum() == 1
    both = load_dataset("coco", coco["train"], tmp_path, side=SIDE, val_annotations=coco["val"])
    assert both.is_test.tolist() == [False, False, False, True]
    names = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert len(names) == 3 and sum(n.startswith(f"coco_crops_{SIDE}_") for n in names) == 1
    assert cache_path(tmp_path, "lsp", 192).name == "lsp_crops_192.npz"


def test_lsp_through_the_dispatcher_keeps_its_cache_name(tmp_path):
    root = tmp_path / "lsp"
    p, _ = person(100, 140, 200)
    lsp_order = ["r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
                 "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top"]
    j14 = np.stack([p[INDEX[n]] for n in lsp_order])[None].repeat(2, 0)
    write_image(root / "images" / "im1.jpg", [(p, np.ones(J, bool))])
    write_image(root / "images" / "im2.jpg", [(p, np.ones(J, bool))])
    np.savez(root / "joints.npz", joints=j14, visible=np.ones((2, 14), bool),
             image_names=np.array(["im1.jpg", "im2.jpg"]), is_test=np.array([False, True]))
    cs = load_dataset("lsp", root, tmp_path / "cache", side=SIDE)
    assert [f.name for f in (tmp_path / "cache").iterdir()] == [f"lsp_crops_{SIDE}.npz"]
    assert cs.is_test.tolist() == [False, True]
    np.testing.assert_allclose(crops.box_from_joints(cs.joints[0], cs.visible[0]), cs.box, atol=0.6)


def test_train_2d_loads_coco_and_masks_neck_and_head(coco, tmp_path):
    args = parse_args(["--dataset", "coco", "--annotations", str(coco["train"]), "--val-annotations",
                       str(coco["val"]), "--cache", str(tmp_path)])
    data = load_training_data(args)
    assert len(data.names) == 4 and data.is_test.sum() == 1
    cfg = HourglassConfig(stacks=1, features=16, in_size=64, out_channels=16)
    _, target, weights = make_batch(data, np.arange(3), cfg, NO_AUGMENT, np.random.default_rng(0))
    w = weights.numpy()
    assert (w[:, [INDEX["neck"], INDEX["head_top"]]] == 0).all()
    assert (target.numpy()[:, [INDEX["neck"], INDEX["head_top"]]] == 0).all()
    assert w[0, INDEX["pelvis"]] == 1 and w[1, INDEX["thorax"]] == 0
    with pytest.raises(DatasetError):
        load_training_data(parse_args(["--dataset", "mpii", "--cache", str(tmp_path)]))


def test_bad_inputs_raise_dataset_error(mpii, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"img_paths": "a.jpg", "joint_self": [[1, 2, 1]] * 3}]))
    with pytest.raises(DatasetError):
        read_mpii(bad)
    with pytest.raises(DatasetError):
        read_coco(bad)
    rec = read_mpii(mpii["json"], images=tmp_path / "nowhere")
    with pytest.raises(DatasetError):
        build_cache_from_records(rec, side=SIDE)
    with pytest.raises(DatasetError):
        load_dataset("mpii", tmp_path / "missing.json", tmp_path)


def test_train_2d_runs_checkpoints_and_resumes(coco, tmp_path):
    """The real training entry point on a tiny set: it logs, checkpoints, and a second run of
    the same command continues from the checkpoint instead of starting over."""
    import torch

    from training.train_2d import train

    torch.set_num_threads(1)
    argv = ["--dataset", "coco", "--annotations", str(coco["train"]), "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "run"), "--batch", "2", "--log-every", "1", "--ckpt-every", "100",
            "--device", "cpu", "--threads", "1"]
    ckpt = train(parse_args(argv + ["--steps", "2"]))
    assert torch.load(ckpt, weights_only=False)["step"] == 2
    train(parse_args(argv + ["--steps", "3"]))
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] == 3 and state["config"]["stacks"] == 2
    steps = [json.loads(line)["step"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]
