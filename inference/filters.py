"""Temporal smoothing and skeleton constraints for one tracked person (pure numpy).

* One-Euro filter (Casiez, Roussel and Vogel, "1 Euro Filter: A Simple Speed-based Low-pass
  Filter for Noisy Input in Interactive Systems", CHI 2012): an exponential low-pass whose
  cutoff rises with speed, ``fc = min_cutoff + beta * |dx/dt|``, so slow motion is smoothed
  hard (no jitter) and fast motion follows with little lag. Here one filter runs per joint and
  the speed is the norm of the joint's velocity vector. ``smooth`` runs it forwards and
  backwards and averages the two passes: offline, the lags of the two directions cancel, so a
  clean trajectory is not shifted in time.
* Constant bone lengths: each bone gets the median of its length over the track and every
  frame is rebuilt from the root outward, keeping each bone's direction.

Letters: F frames, J joints, C coordinates (2 or 3), B bones.
"""
from __future__ import annotations

import numpy as np

from .joints import BONES


def _alpha(cutoff: np.ndarray, dt: float) -> np.ndarray:
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def one_euro(x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 1.0,
             d_cutoff: float = 1.0, speed_scale: float = 1.0, steady_start: bool = False) -> np.ndarray:
    """Causal One-Euro filter along axis 0.

    x (F, J, C) -> (F, J, C) float64. min_cutoff, d_cutoff in Hz; beta in 1/(unit); the speed
    (unit/s) is divided by speed_scale first, so beta can be given per metre while x is in
    pixels (speed_scale = pixels per metre). NaN rows are not allowed (filter segments).
    steady_start: start with the velocity of the first frames (least squares over up to 5) and
    the lag a constant-velocity input would have by then, instead of at rest, so a start in
    motion makes no transient.
    """
    x = np.asarray(x, np.float64)
    assert x.ndim == 3, x.shape
    if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0 or fps <= 0:
        raise ValueError("One-Euro needs min_cutoff > 0, d_cutoff > 0, beta >= 0 and fps > 0")
    F = len(x)
    out = np.empty_like(x)
    if F == 0:
        return out
    dt = 1.0 / fps
    a_d = _alpha(np.float64(d_cutoff), dt)
    prev = x[0].copy()
    dprev = np.zeros_like(prev)
    if steady_start and F > 1:
        k = min(F, 5)
        t = np.arange(k) - (k - 1) / 2.0
        v = np.tensordot(t, x[:k] - x[:k].mean(0), axes=(0, 0)) / (t @ t) / dt
        # At steady state the output lags by v*dt*(1-a)/a and the derivative estimate, taken
        # against the previous output as in the paper, reads v/a; a depends on it: iterate.
        a = np.ones(v.shape[:-1] + (1,))
        for _ in range(8):
            speed = np.linalg.norm(v / a, axis=-1, keepdims=True) / speed_scale
            a = _alpha(min_cutoff + beta * speed, dt)
        dprev = v / a
        prev = x[0] - v * dt * (1.0 - a) / a
    out[0] = prev
    for f in range(1, F):
        dx = (x[f] - prev) / dt
        dprev = a_d * dx + (1.0 - a_d) * dprev
        speed = np.linalg.norm(dprev, axis=-1, keepdims=True) / speed_scale
        a = _alpha(min_cutoff + beta * speed, dt)
        prev = a * x[f] + (1.0 - a) * prev
        out[f] = prev
    return out


def smooth(x: np.ndarray, fps: float, min_cutoff: float = 1.0, beta: float = 1.0,
           d_cutoff: float = 1.0, speed_scale: float = 1.0, valid: np.ndarray | None = None) -> np.ndarray:
    """Zero-lag offline One-Euro: the mean of a forward and a backward pass, run separately on
    each run of consecutive valid frames (each run padded at both ends by point reflection, and
    each pass started at steady state, so a constant-velocity stretch comes out unchanged).

    x (F, J, C), valid (F,) bool or None (all valid) -> (F, J, C) float32; invalid rows are
    returned unchanged.
    """
    x = np.asarray(x)
    out = np.array(x, np.float32, copy=True)
    F = len(x)
    valid = np.ones(F, bool) if valid is None else np.asarray(valid, bool)
    for a, b in runs(valid):
        seg = np.asarray(x[a:b], np.float64)
        n = len(seg)
        # Point-reflect each end (a line continues as the same line) so that the filters'
        # start-up transients fall in the padding, not on the data.
        pad = min(n - 1, int(np.ceil(3.0 * fps / (2.0 * np.pi * min_cutoff))) + 2)
        ext = np.concatenate([2 * seg[:1] - seg[pad:0:-1], seg, 2 * seg[-1:] - seg[-2:-pad - 2:-1]]) if pad > 0 else seg
        fwd = one_euro(ext, fps, min_cutoff, beta, d_cutoff, speed_scale, steady_start=True)
        bwd = one_euro(ext[::-1], fps, min_cutoff, beta, d_cutoff, speed_scale, steady_start=True)[::-1]
        out[a:b] = (0.5 * (fwd + bwd))[pad:pad + n]
    return out


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a (F,) bool mask."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.diff(m.astype(np.int8))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist()))


def _check_bones(bones: np.ndarray) -> None:
    placed = set()
    roots = set(bones[:, 0]) - set(bones[:, 1])
    placed |= roots
    for p, c in bones:
        if p not in placed:
            raise ValueError(f"bones must list a parent before its children (bone {p}->{c})")
        placed.add(c)


def bone_lengths(joints: np.ndarray, valid: np.ndarray | None = None, bones: np.ndarray = BONES) -> np.ndarray:
    """Median length of each bone over the valid frames: joints (F, J, C) -> (B,)."""
    joints = np.asarray(joints, np.float64)
    if valid is not None:
        joints = joints[np.asarray(valid, bool)]
    if len(joints) == 0:
        return np.full(len(bones), np.nan)
    vec = joints[:, bones[:, 1]] - joints[:, bones[:, 0]]
    return np.nanmedian(np.linalg.norm(vec, axis=-1), axis=0)


def enforce_bone_lengths(joints: np.ndarray, lengths: np.ndarray, bones: np.ndarray = BONES) -> np.ndarray:
    """Rebuild every frame from the root outward with fixed bone lengths.

    joints (F, J, C), lengths (B,) -> (F, J, C) float32. The root keeps its position; each child
    is put at parent + length * (direction of the original bone). A zero-length bone keeps its
    original offset; a NaN length leaves the bone as it was.
    """
    bones = np.asarray(bones)
    _check_bones(bones)
    src = np.asarray(joints, np.float64)
    out = src.copy()
    for (p, c), L in zip(bones, lengths):
        d = src[:, c] - src[:, p]
        n = np.linalg.norm(d, axis=-1, keepdims=True)
        if np.isfinite(L):
            unit_ok = n > 1e-9
            d = np.where(unit_ok, d / np.where(unit_ok, n, 1.0) * L, d)
        out[:, c] = out[:, p] + d
    return out.astype(np.float32)
