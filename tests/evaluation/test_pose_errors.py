"""Score calibration, replayed pose-network errors, and their use in lifter training and the engine."""
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.core import score_calibration as sc
from data.cameras import corrupt_2d
from data.pose_noise import fill_unseen, replay_errors
from mocap_samples import tiny_mocap_set

REPO = Path(__file__).resolve().parents[2]
LSP = REPO.parent / "shared" / "data" / "lsp"
needs_lsp = pytest.mark.skipif(not (LSP / "joints.npz").exists(), reason="shared LSP data not present")
torch.set_num_threads(1)


def test_lifter_score_is_the_training_convention():
    # corrupt_2d's scores follow lifter_score of the error (plus its jitter): clean joints ~1
    rng = np.random.default_rng(0)
    xn = rng.normal(0, 0.2, (64, 5, 16, 2))
    _, s = corrupt_2d(xn, np.zeros(64), rng)
    assert abs(float(np.median(s)) - 1.0) < 0.06
    np.testing.assert_allclose(sc.lifter_score(np.array([0.0, 0.1, 0.2, 1.0])), [1.0, 0.75, 0.5, sc.SCORE_MIN])


def test_fit_is_monotone_and_apply_keeps_missing_joints():
    rng = np.random.default_rng(1)
    raw = rng.uniform(0.2, 1.0, 5000)
    err = np.abs(rng.normal(0, 1, 5000)) * 0.3 * (1.0 - raw)   # higher peak, smaller error
    t = sc.fit(raw, err)
    assert np.all(np.diff(t["raw"]) > 0) and np.all(np.diff(t["score"]) >= 0)
    assert t["score"][-1] > t["score"][0] + 0.2
    out = sc.apply(t, np.array([[0.0, 0.3, 0.9]]))
    assert out[0, 0] == 0.0 and 0 < out[0, 1] < out[0, 2] <= 1.0
    np.testing.assert_array_equal(sc.apply(None, np.array([0.0, 0.4])), [0.0, 0.4])
    with pytest.raises(ValueError):
        sc.fit(raw[:20], err[:20])


def _sample(n=50, seed=0):
    rng = np.random.default_rng(seed)
    vis = rng.random((n, 16)) < 0.8
    return {"err": rng.normal(0, 0.05, (n, 16, 2)).astype(np.float32),
            "raw": rng.uniform(0.3, 0.9, (n, 16)).astype(np.float32), "visible": vis}


def test_replayed_errors_scale_with_the_person_and_persist():
    s = _sample()
    s["err"][:] = 0.0
    s["err"][..., 0] = 0.1                                  # every joint 0.1 person sizes to the right
    rng = np.random.default_rng(2)
    xn = np.zeros((40, 16, 2))
    xn[:, :, 1] = np.linspace(0, 0.5, 16)                   # a person 0.5 units tall
    noisy, raw = replay_errors(xn, s, rng, max_hold=5)
    np.testing.assert_allclose(noisy[..., 0], 0.05, atol=1e-6)
    np.testing.assert_allclose(noisy[..., 1], xn[..., 1])
    # scores come from the sample, held for runs of at most 5 frames
    assert set(np.unique(raw)) <= set(np.unique(fill_unseen(s, np.random.default_rng(0))[1]))
    changes = np.nonzero(np.any(raw[1:] != raw[:-1], axis=1))[0]
    assert len(changes) >= 40 // 5 - 1 and np.diff(np.concatenate([[-1], changes, [39]])).max() <= 5
    # batches of windows, and joints outside the image dropped
    inside = np.ones((3, 40, 16), bool)
    inside[:, :, 0] = False
    nb, sb = replay_errors(np.stack([xn] * 3), s, rng, in_image=inside)
    assert nb.shape == (3, 40, 16, 2) and (sb[..., 0] == 0).all() and (nb[..., 0, :] == 0).all()
    assert (sb[..., 1:] > 0).all()


def test_unseen_joints_borrow_seen_ones():
    s = _sample()
    s["visible"][:, 3] = False
    s["visible"][7, 3] = True
    err, raw = fill_unseen(s, np.random.default_rng(0))
    np.testing.assert_array_equal(err[:, 3], np.repeat(s["err"][7:8, 3], len(err), 0))
    np.testing.assert_array_equal(raw[:, 3], raw[7, 3])


def test_pair_sampler_replays_with_calibrated_scores():
    from training.train_3d import PairSampler
    ms = tiny_mocap_set()
    s = _sample()
    s["calibration"] = {"raw": [0.3, 0.9], "score": [0.6, 0.6]}   # every present joint -> 0.6
    sampler = PairSampler(ms, "train", 9, pose_errors=s, p_replay=1.0)
    feats, r, logc, ok = sampler.batch(16, np.random.default_rng(3))
    scores = feats[..., 32:48]
    assert ok.any() and np.isfinite(feats).all()
    np.testing.assert_allclose(np.unique(scores[scores > 0]), 0.6, rtol=1e-6)


@needs_lsp
def test_shipped_pose_weights_carry_their_calibration_and_error_sample():
    from evaluation.eval_2d import load_model
    from evaluation.pose_errors import load_errors, update
    from inference.models.weights import load_manifest

    man = load_manifest("pose_fast", "2d")
    t = man["score_calibration"]
    assert np.all(np.diff(t["raw"]) > 0) and np.all(np.diff(t["score"]) >= 0)
    npz = REPO / "weights" / man["pose_errors"]["file"]
    with np.load(npz) as z:
        assert str(z["sha256"]) == man["sha256"]               # measured on these very weights
    sample = load_errors(npz)
    assert sample["err"].shape[1:] == (16, 2) and len(sample["err"]) >= 400
    # re-measuring a few held-out images gives errors of the same kind (a real check of the net)
    model, _ = load_model("pose_fast")
    rep = update("pose_fast", model, str(LSP), limit=64, write=False)
    assert 0.02 < rep["fit_half"]["median_error"] < 0.2


def test_engine_gives_the_lifter_scores_in_its_convention():
    from inference.stages.lifting import Lifter
    from inference.pipeline import lifter_scores, Models
    from inference.stages.pose2d import PoseEstimator

    pose, lifter = PoseEstimator("pose_fast", "cpu"), Lifter.load()
    raw = np.array([[0.0, 0.45, 0.7, 0.95]], np.float32)
    models = Models(pose=pose, detector=None, lifter=lifter, sha256={})
    for wants in (False, True):
        lifter.wants_calibrated_scores = wants
        got = lifter_scores(models, raw)
        want = sc.apply(pose.score_calibration, raw) if wants else raw
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert got[0, 0] == 0 and not np.allclose(got, raw)      # the shipped calibration changes scores
    # a lifter trained with replayed errors asks for calibration through its manifest
    assert Lifter(lifter.model, {"config": {"pose_errors": "x.npz"}}).wants_calibrated_scores
