"""Heatmap codec: joint coordinates <-> Gaussian heatmaps, with sub-pixel decoding.

Coordinates are in heatmap pixels with pixel centres on integers (the centre of the
top-left cell is (0, 0)). An input-image coordinate maps to the heatmap by
`(x + 0.5) / stride - 0.5` (see `to_heatmap` / `from_heatmap`).

Decoding smooths each map with a small Gaussian, takes the arg-max and refines it with a
second-order Taylor step on the log-heatmap (DARK, Zhang et al. CVPR 2020), which is exact for
a Gaussian peak. The smoothing ("distribution modulation" in DARK) keeps a network's ragged
peaks from throwing the Taylor step; a Gaussian target stays a Gaussian with the same centre.
"""
from __future__ import annotations

import functools

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


# Smoothing of network heatmaps before the peak search, in heatmap pixels. Picked on 1,000 LSP
# *training* photographs with the fast network (PCK@0.2 58.9% unsmoothed, 60.0% at 0.75, 60.2% at
# 1.0, 60.1% at 1.5, 59.2% at 2.0); held out it takes 56.1% to 57.0%
# (`python -m evaluation.eval_2d --blur-sweep`, docs/results/results_2d_decode_blur.json).
DECODE_BLUR = 1.0


def decode(heatmaps: np.ndarray, refine: bool = True, blur: float = DECODE_BLUR) -> tuple[np.ndarray, np.ndarray]:
    """Peak per map.

    heatmaps (N, J, H, W) -> coords (N, J, 2) in heatmap pixels (x, y), scores (N, J)
    (the raw map's value at the peak, clipped to [0, 1]). blur: sigma of the smoothing applied
    before the peak search (0: none).
    """
    hm = np.asarray(heatmaps, np.float32)
    assert hm.ndim == 4, hm.shape
    N, J, H, W = hm.shape
    sm = gaussian_blur(hm, blur) if blur > 0 else hm
    flat = sm.reshape(N, J, -1)
    idx = flat.argmax(-1)
    scores = np.take_along_axis(hm.reshape(N, J, -1), idx[..., None], -1)[..., 0]
    x = (idx % W).astype(np.int64)
    y = (idx // W).astype(np.int64)
    coords = np.stack([x, y], -1).astype(np.float32)
    if refine:
        coords += taylor_offsets(sm, x, y)
    return coords, np.clip(scores, 0.0, 1.0)


def gaussian_blur(hm: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian smoothing of the last two axes, radius 3 sigma. Zero beyond the edges:
    of the paddings tried it moves a Gaussian target's peak least (0.03 px at 2.4 px from
    the edge, 0.12 px at 1.2 px; repeating the edge moves them 0.06 and 0.34 px)."""
    H, W = hm.shape[-2:]
    # As banded matrices, out = K_H @ map @ K_W^T: zero padding for free, and no OpenCV thread
    # pool (its threads do not survive the fork of training.loop's batch workers).
    return (_blur_matrix(H, sigma) @ np.asarray(hm, np.float32) @ _blur_matrix(W, sigma).T).astype(np.float32)


@functools.lru_cache(maxsize=8)
def _blur_matrix(n: int, sigma: float) -> np.ndarray:
    """(n, n) banded Gaussian; cached (decode runs every frame on maps of one size), read-only."""
    r = max(1, int(np.ceil(3 * sigma)))
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    g = lambda t: np.exp(-np.asarray(t, np.float32) ** 2 / (2 * sigma ** 2))  # noqa: E731
    k = (g(d) * (np.abs(d) <= r) / g(np.arange(-r, r + 1)).sum()).astype(np.float32)
    k.setflags(write=False)
    return k


def taylor_offsets(hm: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
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
