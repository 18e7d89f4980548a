"""2D training pieces on real LSP images: augmentation geometry, targets, mosaics, a few steps."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from data.paths import data_path
from inference.core import codec, crops
from posefile.skeleton import FLIP_PAIRS, JOINT_INDEX as INDEX
from inference.models.hourglass import HourglassConfig, StackedHourglass
from training.train_2d import heatmap_loss, make_batch
from data.augment import augment, AugmentConfig
from data.lsp import build_cache
from data.mosaic import compose, detector_targets, MosaicConfig

LSP = Path(data_path("lsp"))
needs_lsp = pytest.mark.skipif(not (LSP / "joints.npz").exists(), reason="shared LSP data not present")


@pytest.fixture(scope="module")
def tiny_set():
    # 6 training images and 2 held-out ones, real JPEGs
    return build_cache(LSP, side=128, indices=np.r_[0:6, 9000:9002])


def batch(rng):
    """Noise images and all-zero 2-channel targets: the loop tests' batch maker."""
    return torch.from_numpy(rng.random((2, 3, 64, 64), dtype=np.float32)), torch.zeros(2, 2, 16, 16)


def loss(outs, target):
    return sum(((o - target) ** 2).mean() for o in outs)


def _dot_image(joints, size=200):
    """A black image with one distinctly coloured dot per joint."""
    img = np.zeros((size, size, 3), np.uint8)
    for j, (x, y) in enumerate(joints):
        img[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2] = (10 + 15 * j, 255 - 15 * j, 128)
    return img


def test_augment_moves_joints_with_pixels_and_flip_swaps_sides():
    rng = np.random.default_rng(0)
    joints = rng.uniform(40, 160, (16, 2)).round().astype(np.float32)
    visible = np.ones(16, bool)
    img = _dot_image(joints)
    box = crops.box_from_joints(joints, visible)
    cfg = AugmentConfig(scale=(1.0, 1.0), rotation_deg=0, shift=0, flip_prob=1.0, colour=0, occlusion_prob=0)
    out, j2, v2, M = augment(img, joints, visible, box, 128, cfg, rng)
    # after a flip, slot r_hip holds the old l_hip, which was mirrored
    r, l = INDEX["r_hip"], INDEX["l_hip"]
    mirrored_l = crops.apply_affine(M, joints[l])
    np.testing.assert_allclose(j2[r], mirrored_l, atol=1e-4)
    # slot k now holds original joint perm[k], and lands on that joint's dot colour
    perm = codec.flip_permutation(16, FLIP_PAIRS)
    for k in range(16):
        j = perm[k]
        x, y = np.round(j2[k]).astype(int)
        if 2 <= x < 126 and 2 <= y < 126:
            patch = out[y - 2:y + 3, x - 2:x + 3].reshape(-1, 3).astype(int)
            colour = np.array([10 + 15 * j, 255 - 15 * j, 128])
            assert np.abs(patch - colour).sum(1).min() < 60, f"joint {j} not on its dot"


def test_rotation_keeps_joints_on_their_dots():
    rng = np.random.default_rng(1)
    joints = rng.uniform(60, 140, (16, 2)).round().astype(np.float32)
    img = _dot_image(joints)
    box = crops.box_from_joints(joints, np.ones(16, bool))
    cfg = AugmentConfig(scale=(0.9, 0.9), rotation_deg=30, rotation_prob=1.0, shift=0, flip_prob=0,
                        colour=0, occlusion_prob=0)
    out, j2, _, _ = augment(img, joints, np.ones(16, bool), box, 128, cfg, rng)
    for j in range(16):
        x, y = np.round(j2[j]).astype(int)
        patch = out[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3].reshape(-1, 3).astype(int)
        colour = np.array([10 + 15 * j, 255 - 15 * j, 128])
        assert np.abs(patch - colour).sum(1).min() < 90


def test_heatmap_targets_peak_at_joints():
    joints = np.array([[5.3, 7.8], [20.0, 3.0], [29.2, 28.6], [-3.0, 4.0]], np.float32)
    vis = np.array([True, True, True, True])
    heat, w = codec.encode(joints, vis, 32, 1.5)
    assert w.tolist() == [1, 1, 1, 0]  # the last lies outside the map
    xy, _ = codec.decode(heat[None, :3])
    np.testing.assert_allclose(xy[0], joints[:3], atol=0.05)


@needs_lsp
def test_few_training_steps_lower_the_loss(tiny_set):
    torch.manual_seed(0)
    torch.set_num_threads(1)
    cfg = HourglassConfig(stacks=2, features=32, in_size=64, out_channels=16)
    model = StackedHourglass(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(0)
    no_aug = AugmentConfig(scale=(1, 1), rotation_deg=0, shift=0, flip_prob=0, colour=0, occlusion_prob=0)
    x, t, w = make_batch(tiny_set, np.arange(6), cfg, no_aug, rng)
    losses = []
    for _ in range(25):
        loss = heatmap_loss(model(x), t, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3])


@needs_lsp
def test_crop_cache_keeps_joints_on_the_person(tiny_set):
    # the cache crop centres the annotated person: the joints' box is the shared box
    for i in range(len(tiny_set.names)):
        box = crops.box_from_joints(tiny_set.joints[i], tiny_set.visible[i])
        np.testing.assert_allclose(box, tiny_set.box, atol=0.6)


@needs_lsp
def test_mosaic_labels_every_pasted_person(tiny_set):
    rng = np.random.default_rng(2)
    cfg = MosaicConfig(canvas=128, max_people=4)
    seen = 0
    for _ in range(10):
        canvas, people = compose(tiny_set, np.arange(6), cfg, rng)
        assert canvas.shape == (128, 128, 3)
        heat, reg, mask = detector_targets(people, 128)
        for pelvis, box in people:
            seen += 1
            cx, cy = np.round((pelvis + 0.5) / 4 - 0.5).astype(int)
            if 0 <= cx < 32 and 0 <= cy < 32:
                assert heat[0, cy, cx] > 0.6
                assert mask[cy, cx] == 1
                # the regressed box decodes back to the labelled box
                centre = (np.array([cx, cy]) + 4 * reg[:2, cy, cx] + 0.5) * 4 - 0.5
                np.testing.assert_allclose(centre, box[:2], atol=1e-3)
                np.testing.assert_allclose(np.exp(reg[2, cy, cx]) * 4, box[2], rtol=1e-4)
    assert seen > 5


def _dot_scenes(n=4, size=120):
    """A SceneSet of synthetic photographs: black, one coloured dot per joint."""
    from data.scenes import SceneSet

    rng = np.random.default_rng(5)
    joints = rng.uniform(20, size - 20, (n, 16, 2)).round().astype(np.float32)
    imgs = [_dot_image(j, size) for j in joints]
    offsets = np.arange(n, dtype=np.int64) * size * size * 3
    return SceneSet(np.concatenate([i.reshape(-1) for i in imgs]), offsets, np.full((n, 2), size, np.int32),
                    joints, np.ones((n, 16), bool), np.zeros(n, bool))


def test_scene_mosaic_labels_sit_on_the_pasted_people():
    from posefile.skeleton import PELVIS
    from data.scenes import compose_scene, SceneConfig

    sc = _dot_scenes()
    rng = np.random.default_rng(3)
    cfg = SceneConfig(canvas=256, letterbox_prob=0.0)
    labelled = 0
    for _ in range(30):
        canvas, people, ignore = compose_scene(sc, np.arange(4), cfg, rng)
        assert canvas.shape == (256, 256, 3)
        for pelvis, box in people:
            labelled += 1
            x, y = np.round(pelvis).astype(int)
            if 3 <= x < 253 and 3 <= y < 253:
                patch = canvas[y - 3:y + 4, x - 3:x + 4].astype(int).sum(-1)
                # a (possibly shrunken or blurred, colour-jittered) dot right under the label; the
                # background is black (at most ~60 after jitter)
                assert patch[2:5, 2:5].max() > 75, "label not on a pasted dot"
            assert box[2] > 2
    assert labelled > 20


def test_scene_ignore_boxes_zero_the_detector_loss_there():
    from training.train_detector import focal_loss
    from data.scenes import ignore_weights

    w = ignore_weights([np.array([100.0, 100.0, 40.0])], 256)
    assert w.shape == (64, 64)
    assert w[25, 25] == 0 and w[0, 0] == 1 and w[60, 60] == 1
    logits = torch.full((1, 1, 64, 64), 3.0)           # confident everywhere: false positives
    target = torch.zeros((1, 1, 64, 64))
    full = focal_loss(logits, target)
    masked = focal_loss(logits, target, weight=torch.from_numpy(w)[None, None])
    assert masked < full
    only_inside = focal_loss(logits, target, weight=torch.from_numpy(1 - w)[None, None])
    np.testing.assert_allclose(float(masked + only_inside), float(full), rtol=1e-5)


@needs_lsp
def test_scene_cache_keeps_joints_on_the_downscaled_images(tmp_path):
    from data.lsp import load_annotations
    from data.scenes import build_scenes

    sc = build_scenes(LSP, max_side=80, indices=np.r_[0:3])
    _, joints, visible, _ = load_annotations(LSP)
    for i in range(3):
        h, w = sc.shapes[i]
        assert max(h, w) <= 80 and sc.image(i).shape == (h, w, 3)
        W = np.load(LSP / "joints.npz")["image_size"][i][0]
        scale = w / W
        v = visible[i]
        np.testing.assert_allclose(sc.joints[i][v], (joints[i][v] + 0.5) * scale - 0.5, atol=0.02 * W * scale)


@needs_lsp
def test_export_writes_fp16_weights_and_a_verified_manifest(tmp_path):
    from training.export_weights import export
    from training.loop import save_checkpoint
    from inference.models.weights import load_manifest

    torch.set_num_threads(1)
    cfg = HourglassConfig(stacks=1, features=16, in_size=64, out_channels=16)
    model = StackedHourglass(cfg)
    opt = torch.optim.AdamW(model.parameters())
    args = {"batch": 4, "lr": 1e-3, "seed": 0, "data": str(LSP), "dataset": "lsp", "subset": 0}
    save_checkpoint(tmp_path / "last.pt", model, opt, 30, np.random.default_rng(0), args)
    path = export("pose", str(tmp_path / "last.pt"), "pose_tiny", tmp_path / "w", eval_limit=4)
    man = load_manifest(path, kind="2d")               # raises unless the sha256 matches
    assert man["config"]["in_size"] == 64
    assert man["training"]["steps"] == 30 and man["training"]["epochs"] == round(30 * 4 / 9000, 2)
    assert "LSP" in man["data"]
    assert 0.0 <= man["eval"]["pck@0.2"]["mean"] <= 100.0
    # the lifter's score calibration and the error sample come with the weights
    assert np.all(np.diff(man["score_calibration"]["raw"]) > 0)
    with np.load(tmp_path / "w" / "pose_tiny_errors.npz") as z:
        assert str(z["sha256"]) == man["sha256"] and z["err"].shape[1:] == (16, 2)
    state = torch.load(tmp_path / "w" / "pose_tiny.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())
    # a later fine-tune from these weights records them by hash, with their step count
    from training.export_weights import _init_record
    rec = _init_record(str(path))
    assert rec["sha256"] == man["sha256"] and rec["total_steps"] == 30
    assert _init_record("runs/x/last.pt") == "runs/x/last.pt"


def test_time_annealed_run_ends_on_time_not_on_the_step_cap(tmp_path):
    """--anneal-by-time: the cosine ends with the time budget, so a step cap reached first must
    not stop the run with the learning rate still high."""
    from types import SimpleNamespace

    from training.loop import run

    torch.set_num_threads(1)
    model = StackedHourglass(HourglassConfig(stacks=1, features=16, in_size=64, out_channels=2))

    args = SimpleNamespace(out=str(tmp_path), steps=3, minutes=0.03, anneal_by_time=True, batch=2, lr=1e-3,
                           fresh=True, log_every=1, ckpt_every=1000, warmup=2)
    ckpt = run(model, batch, loss, args, np.random.default_rng(0), torch.device("cpu"))
    state = torch.load(ckpt, weights_only=False)
    assert state["step"] > 3
    lrs = [json.loads(l)["lr"] for l in open(tmp_path / "log.jsonl")]
    # a fresh run warms up to the peak (it once stayed at the first warm-up value throughout)
    assert lrs[0] <= 0.5 * args.lr and max(lrs) > 0.8 * args.lr
    assert lrs[-1] < 0.2 * args.lr
    # without it the cap holds
    args2 = SimpleNamespace(**{**vars(args), "anneal_by_time": False, "out": str(tmp_path / "b")})
    assert torch.load(run(model, batch, loss, args2, np.random.default_rng(0), torch.device("cpu")),
                      weights_only=False)["step"] == 3


def test_widened_network_computes_the_same_and_trains_its_new_channels():
    from inference.models.hourglass import widen

    torch.manual_seed(0)
    torch.set_num_threads(1)
    narrow = StackedHourglass(HourglassConfig(stacks=2, features=16, in_size=64, out_channels=16))
    for _ in range(2):                         # non-trivial BatchNorm statistics
        narrow(torch.rand(4, 3, 64, 64))
    wide = widen(narrow, 32)
    assert wide.cfg.features == 32 and wide.training
    x = torch.rand(3, 3, 64, 64)
    for mode in (True, False):                 # batch statistics and running statistics
        narrow.train(mode)
        wide.train(mode)
        with torch.no_grad():
            for a, b in zip(narrow(x), wide(x)):
                assert torch.allclose(a, b, atol=1e-6)
    wide.train()
    sum(o.square().mean() for o in wide(x)).backward()
    # the links from the added channels into the heads start at zero but do get gradients
    head = wide.heads[-1].weight
    assert torch.all(head[:, 16:] == 0) and head.grad[:, 16:].abs().sum() > 0
    with pytest.raises(ValueError):
        widen(narrow, 8)


def test_init_widens_a_checkpoint_and_refuses_other_shapes(tmp_path):
    from training.train_2d import initial_model
    from data.records import DatasetError
    from training.loop import save_checkpoint

    torch.set_num_threads(1)
    small = StackedHourglass(HourglassConfig(stacks=1, features=16, in_size=64, out_channels=16)).eval()
    save_checkpoint(tmp_path / "last.pt", small, torch.optim.AdamW(small.parameters()), 5,
                    np.random.default_rng(0), {})
    grown = initial_model(str(tmp_path / "last.pt"), HourglassConfig(stacks=1, features=32, in_size=64,
                                                                     out_channels=16)).eval()
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(small(x)[-1], grown(x)[-1], atol=1e-6)
    with pytest.raises(DatasetError, match="cannot grow"):
        initial_model(str(tmp_path / "last.pt"), HourglassConfig(stacks=2, features=32, in_size=64,
                                                                 out_channels=16))


@needs_lsp
def test_crop_pack_round_trip_keeps_labels_and_pixels(tiny_set, tmp_path):
    from data.pack import read_pack, write_pack

    path = write_pack(tiny_set, tmp_path / "p.npz", side=96, quality=90)
    back = read_pack(path)
    train = ~tiny_set.is_test
    assert back.images.shape == (train.sum(),) + tiny_set.images.shape[1:]
    assert np.array_equal(back.joints, tiny_set.joints[train]) and not back.is_test.any()
    assert list(back.names) == list(tiny_set.names[train])
    # lossy and downscaled, but the same pictures
    diff = np.abs(back.images.astype(int) - tiny_set.images[train].astype(int)).mean()
    assert diff < 12, diff
    assert np.array_equal(back.box, tiny_set.box)


def test_compact_checkpoint_resumes_with_a_fresh_optimiser(tmp_path):
    from types import SimpleNamespace

    from training.loop import compact_checkpoint, run

    torch.set_num_threads(1)
    cfg = HourglassConfig(stacks=1, features=16, in_size=64, out_channels=2)

    args = SimpleNamespace(out=str(tmp_path / "a"), steps=3, minutes=0, batch=2, lr=1e-3, fresh=False,
                           log_every=1, ckpt_every=1000)
    full = run(StackedHourglass(cfg), batch, loss, args, np.random.default_rng(0), torch.device("cpu"))
    small = compact_checkpoint(full, tmp_path / "b" / "last.pt")
    assert small.stat().st_size < 0.5 * full.stat().st_size
    state = torch.load(small, weights_only=False)
    assert state["opt"] is None and all(v.dtype == torch.float16 for v in state["model"].values()
                                        if v.is_floating_point())
    args_b = SimpleNamespace(**{**vars(args), "out": str(tmp_path / "b"), "steps": 5})
    model = StackedHourglass(cfg)
    assert torch.load(run(model, batch, loss, args_b, np.random.default_rng(0), torch.device("cpu")),
                      weights_only=False)["step"] == 5
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_average_checkpoints_is_the_mean_of_the_snapshots(tmp_path):
    from types import SimpleNamespace

    from training.loop import average_checkpoints, run

    torch.set_num_threads(1)
    cfg = HourglassConfig(stacks=1, features=16, in_size=64, out_channels=2)
    args = SimpleNamespace(out=str(tmp_path / "r"), steps=2, minutes=0, batch=2, lr=1e-2, fresh=False,
                           log_every=1, ckpt_every=1000)
    model = StackedHourglass(cfg)
    snaps = []
    for steps in (2, 4):        # two snapshots of one run
        args.steps = steps
        snaps.append(tmp_path / f"s{steps}.pt")
        snaps[-1].write_bytes(run(model, batch, loss, args, np.random.default_rng(0),
                                  torch.device("cpu")).read_bytes())
    a, b = (torch.load(s, weights_only=False)["model"] for s in snaps)
    avg = torch.load(average_checkpoints(snaps, tmp_path / "avg.pt"), weights_only=False)
    assert avg["opt"] is None and avg["step"] == 4 and avg["averaged_from"] == [2, 4]
    k = next(k for k, v in a.items() if v.is_floating_point() and not torch.equal(v, b[k]))
    assert torch.allclose(avg["model"][k], (a[k] + b[k]) / 2, atol=1e-6)
    ints = [n for n in b if not b[n].is_floating_point()]      # BatchNorm step counters
    assert ints and all(torch.equal(avg["model"][n], b[n]) for n in ints)
    StackedHourglass(cfg).load_state_dict(avg["model"])     # still a loadable network
    with pytest.raises(ValueError, match="different networks"):
        other = StackedHourglass(HourglassConfig(stacks=2, features=16, in_size=64, out_channels=2))
        torch.save({"model": other.state_dict(), "step": 0}, tmp_path / "o.pt")
        average_checkpoints([snaps[0], tmp_path / "o.pt"], tmp_path / "bad.pt")


def test_batch_workers_die_on_sigterm_under_the_runs_flag_only_handler():
    """run() installs a SIGTERM handler that only sets a flag; forked workers inherited it, so
    Pool.terminate (which holds the task queue's lock, then SIGTERMs the workers) waited forever
    on an idle worker blocked on that lock (it hung a test run)."""
    import os
    import signal
    import threading
    import time

    from training.loop import _Batches

    def catches_sigterm(pid: int) -> bool:       # the process has a Python handler for SIGTERM
        with open(f"/proc/{pid}/status") as f:
            mask = next(int(line.split()[1], 16) for line in f if line.startswith("SigCgt:"))
        return bool(mask >> (signal.SIGTERM - 1) & 1)

    before = signal.signal(signal.SIGTERM, lambda *a: None)
    b = _Batches(lambda rng: rng.random(3), np.random.default_rng(0), 2, 0, 0)
    try:
        b()
        worker = b.pool._pool[0]
        # Signal only once the worker's initializer has run: before that it still has the
        # inherited handler, and a loaded machine once kept it from running for over 0.3 s.
        deadline = time.monotonic() + 60
        while catches_sigterm(worker.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)                          # every worker idle, waiting on the task queue
        os.kill(worker.pid, signal.SIGTERM)
        worker.join(60)
        # The pool's own thread reaps dead workers too: when it wins the race for waitpid, join
        # returns as soon as the worker is gone but exitcode reads None until that thread has
        # stored the status (CPython's Popen.poll takes ECHILD as "not yet").
        deadline = time.monotonic() + 10
        while worker.exitcode is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert worker.exitcode == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, before)
        closing = threading.Thread(target=b.close, daemon=True)  # must not hang the suite if broken
        closing.start()
        closing.join(10)


def test_batch_workers_make_the_same_run_whatever_their_number(tmp_path):
    from types import SimpleNamespace

    from training.loop import run

    torch.set_num_threads(1)
    cfg = HourglassConfig(stacks=1, features=16, in_size=64, out_channels=2)

    weights = []
    for workers in (1, 2):
        torch.manual_seed(0)
        args = SimpleNamespace(out=str(tmp_path / str(workers)), steps=4, minutes=0, batch=2, lr=1e-3,
                               fresh=True, log_every=1, ckpt_every=1000, workers=workers, seed=3)
        weights.append(torch.load(run(StackedHourglass(cfg), batch, loss, args, np.random.default_rng(0),
                                      torch.device("cpu")), weights_only=False)["model"])
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
