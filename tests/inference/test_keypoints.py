"""Keypoint files: the joint mapping, each reader on hand-made files of the real formats, tracking
without ids, the whole run into a pose file, bad input, and the round trip through a video run's
own 2D (docs/keypoints.md)."""
from __future__ import annotations

import json

import numpy as np
import pytest

import posefile
from engine_media import cut_sample, set_mp4_rotation, write_clip
from inference.cli import main
from inference.core.keypoint_formats import (BODY25, COCO17, HEAD_FACTOR, HEAD_TOP_FRAC, MID_FACTOR, mapping_table,
                                             NECK_FRAC, to_ours)
from inference.pipeline import KeypointOptions, PipelineOptions, run_keypoints
from inference.stages.keypoint_readers import KeypointError, read_keypoints
from inference.stages.keypoints import keypoint_tracks
from keypoint_files import coco_results, H, openpose_folder, table_rows, W, write_csv
from posefile.skeleton import JOINT_INDEX as JI, JOINT_NAMES

SIZE = f"{W}x{H}"


# ---------------------------------------------------------------------------- mapping
def test_coco17_mapping_direct_derived_and_missing():
    rng = np.random.default_rng(0)
    j = rng.uniform(50, 400, (2, 17, 2))
    s = rng.uniform(0.5, 0.9, (2, 17))
    s[1, COCO17.index("l_shoulder")] = 0.0           # person 1: no left shoulder
    o, so = to_ours(j, s, "coco17")
    assert o.shape == (2, 16, 2) and so.shape == (2, 16)
    for n in ("r_ankle", "l_knee", "r_hip", "l_wrist", "r_elbow", "l_shoulder"):
        np.testing.assert_allclose(o[0, JI[n]], j[0, COCO17.index(n)], atol=1e-4)
        assert so[0, JI[n]] == pytest.approx(s[0, COCO17.index(n)])
    hips = [COCO17.index("r_hip"), COCO17.index("l_hip")]
    np.testing.assert_allclose(o[0, JI["pelvis"]], j[0, hips].mean(0), atol=1e-4)
    assert so[0, JI["pelvis"]] == pytest.approx(MID_FACTOR * s[0, hips].min())
    sh = [COCO17.index("r_shoulder"), COCO17.index("l_shoulder")]
    tho = j[0, sh].mean(0)
    ears = j[0, [COCO17.index("r_ear"), COCO17.index("l_ear")]].mean(0)
    np.testing.assert_allclose(o[0, JI["head_top"]], tho + HEAD_TOP_FRAC * (ears - tho), atol=1e-3)
    face = [COCO17.index(n) for n in ("r_ear", "l_ear")]
    want = HEAD_FACTOR * min(MID_FACTOR * s[0, sh].min(), s[0, face].min())
    assert so[0, JI["neck"]] == pytest.approx(want) and so[0, JI["head_top"]] == pytest.approx(want)
    # no left shoulder: no thorax, so no neck or head top either; the rest stays
    for n in ("l_shoulder", "thorax", "neck", "head_top"):
        assert so[1, JI[n]] == 0 and np.isnan(o[1, JI[n]]).all(), n
    assert (so[1, [JI["pelvis"], JI["r_shoulder"]]] > 0).all()


def test_body25_pelvis_and_thorax_are_direct_and_face_fallback():
    j = np.arange(50, dtype=float).reshape(25, 2) * 3 + 10
    s = np.full(25, 0.8)
    s[[BODY25.index("r_ear"), BODY25.index("l_ear")]] = 0.0       # profile: no ears -> nose and eyes
    o, so = to_ours(j, s, "body25")
    np.testing.assert_allclose(o[JI["pelvis"]], j[BODY25.index("mid_hip")])
    np.testing.assert_allclose(o[JI["thorax"]], j[BODY25.index("neck")])
    assert so[JI["pelvis"]] == pytest.approx(0.8) and so[JI["thorax"]] == pytest.approx(0.8)
    h = j[[BODY25.index(n) for n in ("nose", "r_eye", "l_eye")]].mean(0)
    np.testing.assert_allclose(o[JI["neck"]], j[1] + NECK_FRAC * (h - j[1]), atol=1e-3)
    table = mapping_table("body25")
    assert table["pelvis"].startswith("direct") and table["head_top"].startswith("derived")
    assert mapping_table("coco17")["thorax"].startswith("derived") and list(table) == list(JOINT_NAMES)


# ---------------------------------------------------------------------------- readers
def test_openpose_body25_folder(tmp_path):
    kf = read_keypoints(openpose_folder(tmp_path / "op"))
    assert (kf.format, kf.joint_set, kf.has_ids, kf.num_frames) == ("openpose", "body25", False, 20)
    assert [len(kf.frames[f][2]) for f in (0, 8, 10, 11)] == [2, 1, 1, 2]       # person 1 away 8..10
    J, S, ids = kf.frames[4]
    assert J.shape == (2, 25, 2) and (ids == -1).all()
    assert S[0, BODY25.index("l_wrist")] == 0                                    # missing, as OpenPose writes it
    tracks, stats = keypoint_tracks(kf, 25.0)
    assert stats["tracked_by"] == "tracker" and len(tracks) == 2
    lengths = sorted(len(t.frames) for t in tracks)
    assert lengths == [17, 20]                      # the same id across the 3 frames away
    for t in tracks:                                # each track stays on one person (x walks one way)
        x = np.array([np.nanmean(p[:, 0]) for p in t.poses])
        assert (np.diff(x) > 0).all() or (np.diff(x) < 0).all()
        assert np.isfinite(np.stack(t.poses)).all()
    walker = next(t for t in tracks if t.poses[-1][0, 0] > t.poses[0][0, 0])      # person 0 walks right
    assert len(walker.frames) == 20
    assert (np.array([c[JI["l_wrist"]] for c in walker.confs])[3:6] == 0).all()


def test_openpose_before_1_2_and_single_files(tmp_path):
    folder = openpose_folder(tmp_path / "op", F=3)
    for f in folder.iterdir():      # OpenPose < 1.2 named the array pose_keypoints
        f.write_text(f.read_text().replace('"pose_keypoints_2d"', '"pose_keypoints"'))
    kf = read_keypoints(folder)
    assert kf.num_frames == 3 and kf.frames[2][0].shape == (2, 25, 2)
    one = read_keypoints(sorted(folder.iterdir())[1])            # one file: its own frame number
    assert sorted(one.frames) == [0, 1] and len(one.frames[0][2]) == 0 and len(one.frames[1][2]) == 2


def test_openpose_coco18_with_ids(tmp_path):
    from keypoint_files import COCO18
    kf = read_keypoints(openpose_folder(tmp_path / "op18", names=COCO18, ids=True), fmt="openpose")
    assert kf.joint_set == "coco18" and kf.has_ids
    tracks, stats = keypoint_tracks(kf, 25.0)
    assert stats["tracked_by"] == "ids" and [t.id for t in tracks] == [0, 1]
    assert [len(t.frames) for t in tracks] == [20, 17]


def test_coco_results_image_ids_and_file_names(tmp_path):
    kf = read_keypoints(coco_results(tmp_path / "res.json"))
    assert (kf.format, kf.joint_set, kf.has_ids) == ("coco", "coco17", False)
    assert sorted(kf.frames) == list(range(20)) and len(kf.frames[9][2]) == 1
    J, S, _ = kf.frames[0]
    assert S[0].mean() >= S[1].mean()                                           # best first
    # image ids from 1, mapped to frames through the images' file names
    coco_results(tmp_path / "res1.json", first_id=1, track_ids=True)
    images = [{"id": i + 1, "file_name": f"frames/img_{i:05d}.jpg"} for i in range(20)]
    (tmp_path / "images.json").write_text(json.dumps({"images": images}))
    kf = read_keypoints(tmp_path / "res1.json", images=tmp_path / "images.json")
    assert sorted(kf.frames) == list(range(20)) and kf.has_ids
    kf = read_keypoints(tmp_path / "res1.json", images=tmp_path / "images.json", frame_regex=r"img_(\d+)")
    assert min(kf.frames) == 0
    # a COCO annotation file (ground-truth style, visibility flags 0/1/2)
    anns = [{"image_id": 7, "category_id": 1, "keypoints": [100, 100, 2] * 16 + [0, 0, 0]}]
    (tmp_path / "gt.json").write_text(json.dumps({"images": [{"id": 7, "file_name": "x_000003.png"}],
                                                  "annotations": anns}))
    kf = read_keypoints(tmp_path / "gt.json")
    assert list(kf.frames) == [3] and kf.frames[3][1].tolist()[0] == [1.0] * 16 + [0.0]


def test_tables_csv_and_npz(tmp_path):
    rows = table_rows()
    kf = read_keypoints(write_csv(tmp_path / "t.csv", rows))
    assert (kf.format, kf.joint_set, kf.has_ids) == ("table", "ours", True)
    assert [len(kf.frames[f][2]) for f in (0, 5)] == [1, 2] and kf.frames[5][0].shape == (2, 16, 2)
    f, p, n, x, y, s = zip(*rows)
    np.savez(tmp_path / "t.npz", frame=np.array(f), person=np.full(len(f), -1), joint=np.array(
        [JOINT_NAMES.index(k) for k in n]), x=np.array(x), y=np.array(y), score=np.array(s))
    with pytest.raises(KeypointError, match="joint twice"):      # 2 unknown people share person -1
        read_keypoints(tmp_path / "t.npz")
    one = np.array(p) == 0
    np.savez(tmp_path / "t1.npz", frame=np.array(f)[one], person=np.full(one.sum(), -1),
             joint=np.array([JOINT_NAMES.index(k) for k in n])[one], x=np.array(x)[one], y=np.array(y)[one],
             score=np.array(s)[one], fps=25.0, image_size=np.array([W, H]))
    kf = read_keypoints(tmp_path / "t1.npz")
    assert not kf.has_ids and kf.fps == 25.0 and kf.image_size == (W, H) and len(kf.frames) == 20
    # a table in COCO joints
    coco_rows = [(f_, p_, n_, x_, y_, s_) for f_, p_, n_, x_, y_, s_ in table_rows(names=COCO17)]
    kf = read_keypoints(write_csv(tmp_path / "c.csv", coco_rows), joint_set="coco17")
    assert kf.joint_set == "coco17" and kf.frames[0][0].shape == (1, 17, 2)


# ---------------------------------------------------------------------------- whole runs
def test_openpose_and_coco_files_become_pose_files(tmp_path):
    folder = openpose_folder(tmp_path / "op", F=30)
    out = tmp_path / "op.npz"
    assert main(["--keypoints", str(folder), "-o", str(out), "--fps", "25", "--image-size", SIZE,
                 "--progress", "none"]) == 0
    d = posefile.load(out)
    assert d.joints3d.shape[:2] == (2, 30) and d.fps == 25.0 and tuple(d.image_size) == (W, H)
    assert d.valid.sum(1).tolist() == [30, 30]                  # the 3 frames away interpolated, as for video
    assert d.meta["stats"]["filled_person_frames"] == 3
    assert np.isfinite(d.joints3d[d.valid]).all() and np.isfinite(d.joints2d[d.valid]).all()
    assert d.meta["source_kind"] == "keypoints" and d.meta["keypoints"]["joint_set"] == "body25"
    z = d.joints3d[d.valid][:, JI["pelvis"], 2]
    assert 2.0 < np.median(z) < 12.0                     # a ~300 px person in a 640 px picture: metres away
    bone = np.linalg.norm(d.joints3d[..., JI["r_knee"], :] - d.joints3d[..., JI["r_ankle"], :], axis=-1)[d.valid]
    assert 0.25 < np.median(bone) < 0.6
    res = run_keypoints(coco_results(tmp_path / "r.json", F=30), PipelineOptions(fps=30.0),
                        KeypointOptions(image_size=(W, H)))
    assert res.joints3d.shape[:2] == (2, 30) and res.meta["keypoints"]["format"] == "coco"
    # person 0 (walking right) shows no face in frames 0..3: no neck or head top there, and their
    # 2D in the pose file is the projection of the lifted 3D
    p0 = int(np.argmax(res.joints2d[:, -1, JI["pelvis"], 0] - res.joints2d[:, 0, JI["pelvis"], 0]))
    for n in ("neck", "head_top"):
        assert (res.scores[p0, :4, JI[n]] == 0).all() and (res.scores[p0, 4:, JI[n]] > 0).all()
    X = res.joints3d[p0, :4, JI["head_top"]]
    uv = X[:, :2] / X[:, 2:] * res.camera_K[0, 0] + res.camera_K[:2, 2]
    np.testing.assert_allclose(res.joints2d[p0, :4, JI["head_top"]], uv, atol=0.01)


def test_video_gives_size_and_rate_and_frame_counts_must_agree(tmp_path):
    folder = openpose_folder(tmp_path / "op", F=12)
    clip = write_clip(tmp_path / "c.mp4", 12, w=W, h=H, fps=24.0)
    res = run_keypoints(folder, PipelineOptions(), KeypointOptions(video=str(clip)))
    assert res.fps == pytest.approx(24.0) and res.image_size == (W, H) and res.num_frames == 12
    short = write_clip(tmp_path / "short.mp4", 8, w=W, h=H)
    with pytest.raises(KeypointError, match="frame 11 but the video has 8 frames"):
        run_keypoints(folder, PipelineOptions(), KeypointOptions(video=str(short)))


def test_keypoints_of_a_rotated_video_made_on_its_stored_frames_say_so(tmp_path):
    """A phone clip stored turned by 90 degrees is read upright (H x W); keypoints that another tool
    made on the stored W x H frames fall outside it, and the error names the rotation."""
    rows = [(f, 0, n, 600.0 + 2 * f, 200.0 + 10 * k, 0.9) for f in range(12) for k, n in enumerate(JOINT_NAMES)]
    table = write_csv(tmp_path / "k.csv", rows)
    clip = write_clip(tmp_path / "c.mp4", 12, w=W, h=H)
    run_keypoints(table, PipelineOptions(floor=False), KeypointOptions(video=str(clip)))    # stored upright: fine
    set_mp4_rotation(clip, 90)
    with pytest.raises(KeypointError, match="beyond the picture.*turned by 90 degrees"):
        run_keypoints(table, PipelineOptions(floor=False), KeypointOptions(video=str(clip)))


def _bad(tmp_path, capsys, *args):
    out = tmp_path / "bad.npz"
    code = main([*map(str, args), "-o", str(out), "--progress", "none"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and not out.exists() and not (tmp_path / "bad.npz.part.npz").exists()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err


def test_bad_keypoint_input(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert "no OpenPose" in _bad(tmp_path, capsys, "--keypoints", tmp_path / "empty", "--fps", 25, "--image-size", SIZE)
    (tmp_path / "x.json").write_text(json.dumps({"foo": 1}))
    assert "neither OpenPose" in _bad(tmp_path, capsys, "--keypoints", tmp_path / "x.json", "--fps", 25,
                                      "--image-size", SIZE)
    (tmp_path / "x.txt").write_text("hello")
    assert "unknown keypoint file type" in _bad(tmp_path, capsys, "--keypoints", tmp_path / "x.txt")
    res = coco_results(tmp_path / "r.json")
    assert "--image-size WxH and --fps F" in _bad(tmp_path, capsys, "--keypoints", res)
    assert "not COCO" in _bad(tmp_path, capsys, "--keypoints", tmp_path / "x.json", "--format", "coco")
    # mismatched frame counts: 20 OpenPose files for a 12-frame video
    clip = write_clip(tmp_path / "c.mp4", 12, w=W, h=H)
    assert "but the video has 12 frames" in _bad(tmp_path, capsys, "--keypoints", openpose_folder(tmp_path / "op"),
                                                 clip)

    def edited(name, change):
        doc = json.loads(res.read_text())
        change(doc)
        p = tmp_path / name
        p.write_text(json.dumps(doc))          # NaN as Python's json writes it
        return p

    def no_joints(doc):
        doc[3]["keypoints"] = [0.0] * 51
    assert "has no valid joint" in _bad(tmp_path, capsys, "--keypoints", edited("n.json", no_joints),
                                        "--fps", 25, "--image-size", SIZE)

    def nan(doc):
        doc[2]["keypoints"][15] = float("nan")    # a shoulder's x
    assert "NaN/inf coordinate" in _bad(tmp_path, capsys, "--keypoints", edited("nan.json", nan), "--fps", 25,
                                        "--image-size", SIZE)

    def negative(doc):
        doc[5]["keypoints"][16] = -200.0          # a shoulder's y
    assert "negative coordinates" in _bad(tmp_path, capsys, "--keypoints", edited("neg.json", negative),
                                          "--fps", 25, "--image-size", SIZE)
    assert "beyond the picture" in _bad(tmp_path, capsys, "--keypoints", res, "--fps", 25, "--image-size", "100x80")
    rows = table_rows()
    rows[3] = (0, 0, "elbow", 1, 1, 1)
    assert "not in joint set" in _bad(tmp_path, capsys, "--keypoints", write_csv(tmp_path / "b.csv", rows),
                                      "--fps", 25, "--image-size", SIZE)
    assert "--start / --end" in _bad(tmp_path, capsys, "--keypoints", res, "--fps", 25, "--image-size", SIZE,
                                     "--start", 3)
    assert main(["--keypoints", str(res), "-o", str(tmp_path / "bad.npz"), "--dump-keypoints",
                 str(tmp_path / "d.npz")]) == 2                          # a video run's option
    assert main(["-o", str(tmp_path / "bad.npz")]) == 2                 # neither a video nor keypoints
    capsys.readouterr()
    (tmp_path / "h.csv").write_text("a,b,c\n1,2,3\n")
    assert "not a keypoint table" in _bad(tmp_path, capsys, "--keypoints", tmp_path / "h.csv")


def test_round_trip_through_the_engines_own_2d(tmp_path):
    """A video run's 2D written as a keypoint file (--dump-keypoints) and run again: the same 3D."""
    clip = cut_sample(tmp_path / "s.mp4", 0, 45)
    if clip is None:
        pytest.skip("the sample video is not here")
    vid, kp, again = tmp_path / "v.npz", tmp_path / "v_kp.npz", tmp_path / "again.npz"
    common = ["--progress", "none"]           # the same runtime (auto) for both runs
    assert main([str(clip), "-o", str(vid), "--dump-keypoints", str(kp), *common]) == 0
    assert main(["--keypoints", str(kp), "-o", str(again), *common]) == 0
    a, b = posefile.load(vid), posefile.load(again)
    assert a.num_people >= 1 and (a.valid == b.valid).all() and a.valid.any()
    assert np.abs(a.joints3d - b.joints3d)[a.valid].max() < 1e-3           # metres: within 1 mm
    assert b.fps == a.fps and tuple(b.image_size) == tuple(a.image_size)
    assert (a.scores == b.scores).all()
    # the same with the video given for size and rate, and as a CSV in the engine's joints
    kpf = np.load(kp)
    rows = [(int(f), int(p), JOINT_NAMES[j], float(x), float(y), float(s)) for f, p, j, x, y, s in
            zip(kpf["frame"], kpf["person"], kpf["joint"], kpf["x"], kpf["y"], kpf["score"])]
    csv = tmp_path / "v.csv"
    csv.write_text("frame,person,joint,x,y,score\n" + "".join(f"{f},{p},{n},{x!r},{y!r},{s!r}\n"
                                                              for f, p, n, x, y, s in rows))
    assert main(["--keypoints", str(csv), str(clip), "-o", str(again), *common]) == 0
    c = posefile.load(again)
    assert np.abs(a.joints3d - c.joints3d)[a.valid].max() < 1e-3


def test_raw_scores_skip_the_calibration(tmp_path):
    res = coco_results(tmp_path / "r.json", F=12)
    kpo = dict(image_size=(W, H))
    cal = run_keypoints(res, PipelineOptions(fps=25.0), KeypointOptions(**kpo))
    raw = run_keypoints(res, PipelineOptions(fps=25.0), KeypointOptions(calibrate_scores=False, **kpo))
    assert cal.meta["keypoints"]["scores_calibrated"] and not raw.meta["keypoints"]["scores_calibrated"]
    assert (cal.valid == raw.valid).all() and (cal.scores == raw.scores).all()     # the file's scores kept
    assert np.abs(cal.joints3d - raw.joints3d)[cal.valid].max() > 1e-3              # the lifter saw others
