"""The one stage-2 post-process (inference.stages.smoothing.post_process): smoothing + constant
bone lengths, as the pipeline, the raw-vs-smoothed preview and eval_3d all apply it."""
from __future__ import annotations

import numpy as np

from inference.core.metrics import jitter
from inference.pipeline import PipelineOptions
from inference.stages.smoothing import post_process, SmoothingConfig
from inference.stages.types import PersonMotion
from posefile.skeleton import BONES, PELVIS

FPS = 30.0
K = np.array([[800.0, 0, 320], [0, 800.0, 240], [0, 0, 1]])


def _person(F=90, seed=0):
    """A noisy person walking 4 m away: joints3d (F, 16, 3) m, joints2d (F, 16, 2) px."""
    rng = np.random.default_rng(seed)
    t = np.arange(F)[:, None, None] / FPS
    base = rng.normal(0, 0.3, (1, 16, 3)) + np.array([0.0, 0.0, 4.0])
    clean = base + t * np.array([0.8, 0.0, 0.0])
    X = (clean + rng.normal(0, 0.01, clean.shape)).astype(np.float32)
    x2 = (X[..., :2] / X[..., 2:] * 800.0 + np.array([320.0, 240.0])).astype(np.float32)
    return X, x2


def _lengths(X):
    return np.linalg.norm(X[:, BONES[:, 1]] - X[:, BONES[:, 0]], axis=-1)


def test_post_process_smooths_and_fixes_bone_lengths():
    X, x2 = _person()
    valid = np.ones(len(X), bool)
    valid[40:44] = False
    X[40:44], x2[40:44] = np.nan, np.nan
    out = post_process(PersonMotion(X, x2, valid), FPS, K, SmoothingConfig())
    assert out.joints3d.dtype == np.float32 and out.joints2d.shape == x2.shape
    np.testing.assert_array_equal(out.valid, valid)
    assert np.isnan(out.joints3d[40:44]).all() and np.isfinite(out.joints3d[valid]).all()
    assert jitter(out.joints3d[:40]) < 0.5 * jitter(X[:40])
    assert jitter(out.joints2d[:40]) < 0.5 * jitter(x2[:40])
    L = _lengths(out.joints3d[valid])
    np.testing.assert_allclose(L, np.broadcast_to(L[0], L.shape), rtol=1e-4)
    assert not np.shares_memory(out.joints3d, X)           # the input is left as it was


def test_post_process_off_and_3d_only():
    X, x2 = _person(30)
    valid = np.ones(30, bool)
    off = post_process(PersonMotion(X, x2, valid), FPS, K, SmoothingConfig(smoothing=0.0, bone_lengths=False))
    np.testing.assert_array_equal(off.joints3d, X)
    np.testing.assert_array_equal(off.joints2d, x2)
    bones_only = post_process(PersonMotion(X, None, valid), FPS, K, SmoothingConfig(smoothing=0.0))
    assert bones_only.joints2d is None
    np.testing.assert_allclose(bones_only.joints3d[:, PELVIS], X[:, PELVIS], atol=1e-6)   # the root stays
    L = _lengths(bones_only.joints3d)
    np.testing.assert_allclose(L, np.broadcast_to(L[0], L.shape), rtol=1e-4)


def test_segments_skip_dropped_frames():
    """The pipeline passes the runs it lifted: a frame dropped inside one (a non-finite lift) is
    skipped by the filters (they restart after it, as with the default runs of valid), and only
    the 2D speed scale (the median depth) is taken over the whole segment."""
    X, x2 = _person(60)
    valid = np.ones(60, bool)
    valid[30] = False
    X[30] = np.nan
    cfg = SmoothingConfig(bone_lengths=False)
    one_run = post_process(PersonMotion(X, x2, valid), FPS, K, cfg, segments=[(0, 60)])
    split = post_process(PersonMotion(X, x2, valid), FPS, K, cfg)
    assert np.isfinite(one_run.joints3d[valid]).all() and np.isfinite(one_run.joints2d[valid]).all()
    np.testing.assert_array_equal(one_run.joints3d, split.joints3d, strict=True)
    np.testing.assert_allclose(one_run.joints2d[valid], split.joints2d[valid], atol=0.5)
    # A segment with no valid frame is left alone.
    none = post_process(PersonMotion(X, x2, np.zeros(60, bool)), FPS, K, cfg, segments=[(0, 60)])
    np.testing.assert_array_equal(none.joints3d, X)


def test_pipeline_options_give_the_settings():
    opts = PipelineOptions(smoothing=2.0, min_cutoff=0.5, beta=1.0, root_cutoff=0.0, bone_lengths=False)
    assert opts.smoothing_config() == SmoothingConfig(2.0, 0.5, 1.0, 0.0, False)
    assert PipelineOptions().smoothing_config() == SmoothingConfig()
