"""One-Euro smoothing and bone-length constancy on synthetic trajectories."""
from __future__ import annotations

import numpy as np
import pytest

from inference.core.filters import bone_lengths, enforce_bone_lengths, one_euro, runs, smooth, smooth_track, whittaker, whittaker_lambda
from inference.core.metrics import jitter
from posefile.skeleton import BONES

FPS = 30.0


def walking(F=150, J=16):
    """Clean 3D trajectories (F, J, 3) in metres: walking forward with swinging limbs."""
    t = np.arange(F)[:, None] / FPS
    phase = np.linspace(0, np.pi, J)[None, :]
    x = 1.2 * t + 0.25 * np.sin(2 * np.pi * 0.9 * t + phase)
    y = -0.8 + 0.05 * np.sin(2 * np.pi * 1.8 * t + phase)
    z = 4.0 + 0.1 * np.cos(2 * np.pi * 0.5 * t + phase)
    return np.stack([x, y, z], -1)


def test_reduces_jitter_of_noisy_trajectory():
    clean = walking()
    rng = np.random.default_rng(0)
    noisy = clean + rng.normal(0, 0.02, clean.shape)
    out = smooth(noisy, FPS, min_cutoff=1.0, beta=2.0)
    assert out.shape == noisy.shape and out.dtype == np.float32
    assert jitter(out) < 0.45 * jitter(noisy)
    err_raw = np.linalg.norm(noisy - clean, axis=-1).mean()
    err_out = np.linalg.norm(out - clean, axis=-1).mean()
    assert err_out < 0.7 * err_raw


def test_does_not_shift_a_clean_trajectory():
    clean = walking()
    out = smooth(clean, FPS, min_cutoff=1.0, beta=2.0)
    err = np.linalg.norm(out - clean, axis=-1)
    # Limbs swing 0.25 m at 0.9 Hz: a low-pass trims the peaks a little, but does not delay.
    assert err.mean() < 0.012          # metres
    # No lag: the mean signed error along the walking direction is ~0.
    assert abs((out - clean)[..., 0].mean()) < 0.002


def test_causal_filter_lags_but_zero_phase_does_not():
    t = np.arange(90, dtype=np.float64)[:, None, None]
    line = np.concatenate([t * 0.05, 0 * t, 0 * t], -1)       # 1.5 m/s constant velocity
    causal = one_euro(line, FPS, min_cutoff=0.5, beta=0.0)
    assert (line - causal)[30:, 0, 0].mean() > 0.01              # the causal pass lags
    both = smooth(line, FPS, min_cutoff=0.5, beta=0.0)
    np.testing.assert_allclose(both, line, atol=1e-5)          # ends included
    np.testing.assert_allclose(smooth(line[:4], FPS), line[:4], atol=1e-4)
    np.testing.assert_allclose(smooth(line, FPS, beta=3.0), line, atol=1e-4)


def test_beta_follows_fast_motion():
    # A fast step: a larger beta raises the cutoff at speed and follows the step more closely.
    x = np.zeros((60, 1, 3))
    x[30:, 0, 0] = 1.0
    slow = one_euro(x, FPS, min_cutoff=0.5, beta=0.0)
    fast = one_euro(x, FPS, min_cutoff=0.5, beta=5.0)
    assert abs(fast[33, 0, 0] - 1) < abs(slow[33, 0, 0] - 1)


def test_segments_are_filtered_separately():
    x = walking(40)
    valid = np.ones(40, bool)
    valid[18:22] = False
    x_bad = x.copy()
    x_bad[18:22] = np.nan
    out = smooth(x_bad, FPS, valid=valid)
    assert np.isfinite(out[valid]).all() and np.isnan(out[18:22]).all()
    assert runs(valid) == [(0, 18), (22, 40)]


def test_bone_lengths_constant_after_enforcing():
    rng = np.random.default_rng(1)
    F = 50
    base = rng.normal(0, 0.3, (16, 3))
    joints = base + rng.normal(0, 0.01, (F, 16, 3)) + np.linspace(0, 1, F)[:, None, None]
    L = bone_lengths(joints)
    out = enforce_bone_lengths(joints, L)
    lengths = np.linalg.norm(out[:, BONES[:, 1]] - out[:, BONES[:, 0]], axis=-1)
    np.testing.assert_allclose(lengths, np.broadcast_to(L, lengths.shape), rtol=1e-5)
    # The root stays, and every bone keeps its direction.
    np.testing.assert_allclose(out[:, 6], joints[:, 6], atol=1e-6)
    d_in = joints[:, BONES[:, 1]] - joints[:, BONES[:, 0]]
    d_out = out[:, BONES[:, 1]] - out[:, BONES[:, 0]]
    cos = (d_in * d_out).sum(-1) / np.linalg.norm(d_in, axis=-1) / np.linalg.norm(d_out, axis=-1)
    assert cos.min() > 1 - 1e-6


def test_bones_must_be_ordered():
    with pytest.raises(ValueError):
        enforce_bone_lengths(np.zeros((2, 16, 3)), np.ones(2), bones=np.array([(1, 0), (6, 1)]))


def test_whittaker_solves_its_normal_equations_and_keeps_lines():
    rng = np.random.default_rng(3)
    F, lam = 120, 40.0
    y = rng.normal(size=(F, 3))
    w = rng.uniform(0.1, 1.0, F)
    D = np.diff(np.eye(F), 2, axis=0)
    ref = np.linalg.solve(np.diag(w) + lam * D.T @ D, w[:, None] * y)
    np.testing.assert_allclose(whittaker(y, lam, w), ref, atol=1e-10)
    line = 2.0 + 0.05 * np.arange(F)[:, None] * np.array([1.0, -3.0, 0.5])
    np.testing.assert_allclose(whittaker(line, 1e4), line, atol=1e-7)   # no lag, no end effects
    np.testing.assert_array_equal(whittaker(y[:2], lam), y[:2])         # too short to bend


def test_whittaker_lambda_gives_half_gain_at_the_cutoff():
    fc = 2.0
    t = np.arange(3000) / FPS
    for f, gain in ((fc, 0.5), (0.2, 1.0), (10.0, 0.0)):
        s = np.sin(2 * np.pi * f * t)[:, None]
        out = whittaker(s, whittaker_lambda(fc, FPS))[500:-500, 0]
        assert abs(out.std() / s[500:-500, 0].std() - gain) < 0.02
    with pytest.raises(ValueError):
        whittaker_lambda(0.0, FPS)


def test_smooth_track_steadies_the_root_and_keeps_the_pose():
    clean = walking()
    rng = np.random.default_rng(1)
    # the whole person shifted by a per-frame error: what 2D hip error times distance does
    shake = rng.normal(0, 0.03, (len(clean), 1, 3))
    noisy = clean + shake
    one_euro_only = smooth_track(noisy, FPS, 1.0, 2.0, root_cutoff=None, root=6)
    out = smooth_track(noisy, FPS, 1.0, 2.0, root_cutoff=2.0, root=6)
    np.testing.assert_allclose(one_euro_only, smooth(noisy, FPS, 1.0, 2.0))
    assert jitter(out[:, 6]) < 0.3 * jitter(one_euro_only[:, 6])
    err = lambda x: np.linalg.norm(x[:, 6] - clean[:, 6], axis=-1).mean()
    assert err(out) < err(one_euro_only)
    # the pose relative to the root is the One-Euro one
    rel = lambda x: x - x[:, 6:7]
    np.testing.assert_allclose(rel(out), rel(one_euro_only), atol=1e-5)
    # invalid frames are left alone, each valid run smoothed on its own
    valid = np.ones(len(clean), bool)
    valid[60:70] = False
    bad = noisy.copy()
    bad[60:70] = np.nan
    part = smooth_track(bad, FPS, 1.0, 2.0, root_cutoff=2.0, root=6, valid=valid)
    assert np.isnan(part[60:70]).all() and np.isfinite(part[valid]).all()
