"""Virtual cameras for lifter training: sampling, world -> camera, 2D corruption (pure numpy).

World frame: the mocap cache's (Y up, metres).  Camera frame: OpenCV (x right, y down, z forward).
A camera is described by its centre C (3,) in world, rotation R (3, 3) with rows = camera axes in
world coordinates (X_cam = R @ (X_world - C)), and intrinsics K for an image of size (W, H).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.core.camera import bbox_area
from inference.core.score_calibration import lifter_score
from data.mocap import FLIP_PERM, PELVIS

# Sampling ranges (documented in docs/lifter.md and tested in tests/test_cameras.py).
FOCAL_REL = (0.6, 2.0)        # focal length in image widths
HEIGHT_M = (0.5, 2.5)         # camera centre height above the floor (world y = 0)
PITCH_DEG = (-30.0, 30.0)     # positive = looking down
DISTANCE_M = (2.0, 15.0)      # horizontal distance camera -> person's mean pelvis
ROLL_DEG = 5.0                # |roll| <= this
IMAGE_WIDTHS = (640, 1920)
ASPECTS = (16 / 9, 4 / 3, 9 / 16)


@dataclass
class Cameras:
    """N cameras. C: (N, 3) world centres; R: (N, 3, 3); K: (N, 3, 3); size: (N, 2) width, height;
    plus the sampled parameters (N,) each: focal_rel, height, pitch_deg, yaw_deg, distance."""

    C: np.ndarray
    R: np.ndarray
    K: np.ndarray
    size: np.ndarray
    focal_rel: np.ndarray
    height: np.ndarray
    pitch_deg: np.ndarray
    yaw_deg: np.ndarray
    distance: np.ndarray


def look_rotation(heading_rad: np.ndarray, pitch_rad: np.ndarray, roll_rad: np.ndarray) -> np.ndarray:
    """World(Y up) -> OpenCV camera rotations (N, 3, 3).

    heading: direction of view in the ground plane, angle from world +Z towards +X.
    pitch: positive looks down.  roll: about the optical axis.
    """
    h = np.stack([np.sin(heading_rad), np.zeros_like(heading_rad), np.cos(heading_rad)], -1)
    down = np.array([0.0, -1.0, 0.0])
    fwd = np.cos(pitch_rad)[:, None] * h + np.sin(pitch_rad)[:, None] * down
    up = np.array([0.0, 1.0, 0.0])
    right = np.cross(fwd, up)
    right /= np.linalg.norm(right, axis=-1, keepdims=True)
    dn = np.cross(fwd, right)
    c, s = np.cos(roll_rad)[:, None], np.sin(roll_rad)[:, None]
    r2 = c * right + s * dn
    d2 = -s * right + c * dn
    return np.stack([r2, d2, fwd], axis=1)


def sample_cameras(target: np.ndarray, rng: np.random.Generator) -> Cameras:
    """One random camera per target point.

    target: (N, 3) world points (the mean pelvis of each window) the person stands around.
    The camera stands at a uniform distance/yaw/height around the target, with uniform pitch;
    samples whose target would fall outside 80% of the vertical field of view are redrawn, and the
    target is placed at a random horizontal offset inside the field of view.
    """
    n = len(target)
    out = {k: np.empty(n) for k in ("focal_rel", "height", "pitch", "yaw", "dist", "w", "aspect")}
    todo = np.arange(n)
    for _ in range(100):
        m = len(todo)
        if m == 0:
            break
        f = rng.uniform(*FOCAL_REL, m)
        hgt = rng.uniform(*HEIGHT_M, m)
        pitch = np.deg2rad(rng.uniform(*PITCH_DEG, m))
        dist = rng.uniform(*DISTANCE_M, m)
        aspect = np.asarray(ASPECTS)[rng.integers(0, len(ASPECTS), m)]
        half_v = np.arctan(0.5 / aspect / f)
        below = np.arctan2(hgt - target[todo, 1], dist)  # angle of the target below the horizon
        ok = np.abs(below - pitch) < 0.8 * half_v
        idx = todo[ok]
        for k, v in (("focal_rel", f), ("height", hgt), ("pitch", pitch), ("dist", dist), ("aspect", aspect)):
            out[k][idx] = v[ok]
        todo = todo[~ok]
    if len(todo):  # fall back: aim straight at the target (still inside the pitch range)
        f = rng.uniform(*FOCAL_REL, len(todo))
        hgt = rng.uniform(*HEIGHT_M, len(todo))
        dist = rng.uniform(*DISTANCE_M, len(todo))
        below = np.arctan2(hgt - target[todo, 1], dist)
        for k, v in (("focal_rel", f), ("height", hgt), ("dist", dist), ("aspect", np.full(len(todo), 16 / 9)),
                     ("pitch", np.clip(below, *np.deg2rad(PITCH_DEG)))):
            out[k][todo] = v
    yaw = rng.uniform(0, 2 * np.pi, n)
    C = target.copy()
    C[:, 0] += out["dist"] * np.sin(yaw)
    C[:, 2] += out["dist"] * np.cos(yaw)
    C[:, 1] = out["height"]
    half_h = np.arctan(0.5 / out["focal_rel"])
    heading = yaw + np.pi + rng.uniform(-0.6, 0.6, n) * half_h  # target off-centre horizontally
    roll = np.deg2rad(rng.uniform(-ROLL_DEG, ROLL_DEG, n))
    R = look_rotation(heading, out["pitch"], roll)
    w = rng.uniform(*IMAGE_WIDTHS, n).round()
    h = (w / out["aspect"]).round()
    fpx = out["focal_rel"] * w
    K = np.zeros((n, 3, 3))
    K[:, 0, 0] = fpx
    K[:, 1, 1] = fpx
    K[:, 0, 2] = (w - 1) / 2
    K[:, 1, 2] = (h - 1) / 2
    K[:, 2, 2] = 1
    return Cameras(C, R, K, np.stack([w, h], -1), out["focal_rel"], out["height"],
                   np.rad2deg(out["pitch"]), np.rad2deg(yaw) % 360, out["dist"])


def world_to_camera(X: np.ndarray, cams: Cameras) -> np.ndarray:
    """World points (N, ..., 3) -> camera frame (N, ..., 3), one camera per leading index."""
    n = X.shape[0]
    Xc = X.reshape(n, -1, 3) - cams.C[:, None, :]
    return (Xc @ cams.R.transpose(0, 2, 1)).reshape(X.shape)  # matmul: ~4x faster than einsum here


def project_normalized(Xc: np.ndarray) -> np.ndarray:
    """Camera points (..., 3) -> normalised image coordinates x/z, y/z (..., 2)."""
    return Xc[..., :2] / Xc[..., 2:3]


def mirror_world(X: np.ndarray) -> np.ndarray:
    """Mirror world poses (..., 16, 3) left-right: x -> -x and swap left/right joints."""
    Y = X[..., FLIP_PERM, :].copy()
    Y[..., 0] *= -1
    return Y


# Per-joint noise multipliers (extremities are harder for detectors).
JOINT_NOISE = np.array([1.5, 1.2, 1.3, 1.3, 1.2, 1.5, 1.0, 0.8, 0.8, 1.0, 1.6, 1.3, 1.0, 1.0, 1.3, 1.6])
_LR_PAIRS = [(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)]
_LIMBS = [[0, 1, 2], [10, 11, 12]]  # right leg, right arm (left partners via FLIP_PERM)


def corrupt_2d(xn: np.ndarray, difficulty: np.ndarray, rng: np.random.Generator,
               in_image: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Make clean 2D look like a detector's output.

    xn: (N, T, 16, 2) clean normalised coordinates (x/z, y/z); difficulty: (N,) in [0, 1].
    in_image: optional (N, T, 16) bool, joints outside the image are dropped.
    Noise scale is relative to the person's 2D size s (square bbox side): per-joint Gaussian
    noise with sigma = 0.05 * difficulty * s * JOINT_NOISE plus a constant per-window bias,
    occasional outliers, left/right swaps of a limb pair, dropped joints (iid and in runs).
    Returns (noisy xn (N, T, 16, 2), scores (N, T, 16) in [0, 1], 0 = missing).
    """
    N, T = xn.shape[:2]
    d = difficulty[:, None, None, None]
    s = np.sqrt(bbox_area(xn))[..., None, None]  # (N, T, 1, 1)
    s = np.maximum(s, 1e-6)
    sigma = 0.05 * d * s * JOINT_NOISE[None, None, :, None]
    err = rng.standard_normal(xn.shape) * sigma
    err += 0.4 * rng.standard_normal((N, 1, 16, 2)) * sigma
    # outliers: a joint jumps by ~0.3 s
    p_out = 0.01 * difficulty[:, None, None]
    outl = rng.random((N, T, 16)) < p_out
    err += outl[..., None] * rng.standard_normal(xn.shape) * 0.3 * s
    noisy = xn + err
    # left/right swaps of one pair in some frames
    p_swap = 0.04 * difficulty[:, None]
    swap = rng.random((N, T)) < p_swap
    if swap.any():
        pair = rng.integers(0, len(_LR_PAIRS), (N, T))
        for k, (a, b) in enumerate(_LR_PAIRS):
            m = swap & (pair == k)
            tmp = noisy[m, a].copy()
            noisy[m, a] = noisy[m, b]
            noisy[m, b] = tmp
    # scores: high for small errors, jittered
    e = np.linalg.norm(noisy - xn, axis=-1) / s[..., 0]
    scores = lifter_score(e, rng.normal(0, 0.08, e.shape))
    # dropped joints: iid plus one occlusion run per some windows
    p_drop = rng.uniform(0, 0.12, (N, 1, 1)) * difficulty[:, None, None]
    drop = rng.random((N, T, 16)) < p_drop
    runs = rng.random(N) < 0.4 * difficulty
    for i in np.where(runs)[0]:
        limb = _LIMBS[rng.integers(0, 2)]
        if rng.random() < 0.5:
            limb = list(FLIP_PERM[limb])
        joints = limb[rng.integers(0, 3):]
        a = rng.integers(0, T)
        b = min(T, a + rng.integers(1, max(2, T // 2)))
        drop[i, a:b][:, joints] = True
    if in_image is not None:
        drop |= ~in_image
    scores = np.where(drop, 0.0, scores)
    noisy = np.where(drop[..., None], 0.0, noisy)
    return noisy, scores.astype(np.float32)
