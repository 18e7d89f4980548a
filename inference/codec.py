"""Heatmap codec: joint coordinates <-> Gaussian heatmaps, with sub-pixel decoding.

Coordinates are in heatmap pixels with pixel centres on integers (the centre of the
top-left cell is (0, 0)). An input-image coordinate maps to the heatmap by
`(x + 0.5) / stride - 0.5` (see `to_heatmap` / `from_heatmap`).

Decoding takes the arg-max and refines it with a second-order Taylor step on the
log-heatmap (DARK, Zhang et al. CVPR 2020), which is exact for a Gaussian peak.
"""
from __future__ import annotations

import numpy as np


def to_heatmap(xy: np.ndarray, stride: float) -> np.ndarray:
    return (np.asarray(xy, np.float32) + 0.5) / stride - 0.5


def from_heatmap(xy: np.ndarray, stride: float) -> np.ndarray:
    return (np.asarray(xy, np.float32) + 0.5) * stride - 0.5


def encode(joints: np.ndarray, visible: np.ndarray, size: int, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian targets.

    joints (J, 2) in heatmap pixels, visible (J,) bool -> heatmaps (J, size, size) float32
    with peak 1 at each visible joint, and weights (J,) float32: 1 where the joint is
    visible and inside the map, else 0 (masked out of the loss).
    """
    joints = np.asarray(joints, np.float32)
    assert joints.ndim == 2 and joints.shape[1] == 2, joints.shape
    J = joints.shape[0]
    grid = np.arange(size, dtype=np.float32)
    gx = np.exp(-((grid[None, :] - joints[:, :1]) ** 2) / (2 * sigma ** 2))  # (J, W)
    gy = np.exp(-((grid[None, :] - joints[:, 1:]) ** 2) / (2 * sigma ** 2))  # (J, H)
    heat = gy[:, :, None] * gx[:, None, :]
    inside = np.all((joints > -0.5) & (joints < size - 0.5), axis=1)
    weights = (np.asarray(visible, bool) & inside).astype(np.float32)
    heat *= weights[:, None, None]
    return heat.astype(np.float32), weights


def decode(heatmaps: np.ndarray, refine: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Peak per map.

    heatmaps (N, J, H, W) -> coords (N, J, 2) in heatmap pixels (x, y), scores (N, J)
    (the peak value, clipped to [0, 1]).
    """
    hm = np.asarray(heatmaps, np.float32)
    assert hm.ndim == 4, hm.shape
    N, J, H, W = hm.shape
    flat = hm.reshape(N, J, -1)
    idx = flat.argmax(-1)
    scores = np.take_along_axis(flat, idx[..., None], -1)[..., 0]
    x = (idx % W).astype(np.int64)
    y = (idx // W).astype(np.int64)
    coords = np.stack([x, y], -1).astype(np.float32)
    if refine:
        coords += _taylor_offsets(hm, x, y)
    return coords, np.clip(scores, 0.0, 1.0)


def _taylor_offsets(hm: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Newton step on log(heatmap) around the integer peak; zero at borders or flat maps."""
    N, J, H, W = hm.shape
    eps = 1e-10
    logh = np.log(np.maximum(hm, eps))
    n = np.arange(N)[:, None]
    j = np.arange(J)[None, :]
    ok = (x >= 1) & (x <= W - 2) & (y >= 1) & (y <= H - 2)
    xc, yc = np.clip(x, 1, W - 2), np.clip(y, 1, H - 2)

    def at(dy, dx):
        return logh[n, j, yc + dy, xc + dx]

    c = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2 * c + at(0, -1)
    dyy = at(1, 0) - 2 * c + at(-1, 0)
    dxy = 0.25 * (at(1, 1) - at(1, -1) - at(-1, 1) + at(-1, -1))
    det = dxx * dyy - dxy ** 2
    # Only a proper maximum (negative-definite Hessian) gets a step.
    good = ok & (det > 1e-6) & (dxx < 0) & (hm[n, j, yc, xc] > eps)
    safe = np.where(good, det, 1.0)
    ox = -(dyy * dx - dxy * dy) / safe
    oy = -(dxx * dy - dxy * dx) / safe
    off = np.stack([ox, oy], -1)
    off = np.where(good[..., None], np.clip(off, -1.0, 1.0), 0.0)
    return off.astype(np.float32)


def flip_heatmaps(hm: np.ndarray, flip_pairs: np.ndarray) -> np.ndarray:
    """Mirror (N, J, H, W) maps left-right and swap left/right channels."""
    out = hm[..., ::-1].copy()
    perm = flip_permutation(hm.shape[1], flip_pairs)
    return out[:, perm]


def flip_permutation(J: int, flip_pairs) -> np.ndarray:
    perm = np.arange(J)
    for a, b in flip_pairs:
        perm[a], perm[b] = b, a
    return perm
