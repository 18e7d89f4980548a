"""3D pose metrics (pure numpy). Units follow the inputs (metres in, metres out)."""
from __future__ import annotations

import numpy as np


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Mean per-joint position error per frame. pred, gt: (..., J, 3) -> (...,).

    Root alignment, if wanted, is the caller's choice (pass root-relative poses).
    """
    return np.linalg.norm(pred - gt, axis=-1).mean(-1)


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Similarity transform (rotation, uniform scale, translation) of pred onto gt, per pose.

    pred, gt: (N, J, 3) -> aligned pred (N, J, 3). Reflections are excluded (Umeyama 1991).
    """
    mu_p = pred.mean(-2, keepdims=True)
    mu_g = gt.mean(-2, keepdims=True)
    p = pred - mu_p
    g = gt - mu_g
    H = np.einsum("nji,njk->nik", p, g)  # (N, 3, 3) = p^T g
    U, S, Vt = np.linalg.svd(H)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", U, Vt)))
    D = np.ones_like(S)
    D[:, -1] = d
    R = np.einsum("nij,nj,njk->nik", U, D, Vt)  # maps row vectors: p @ R
    var_p = (p ** 2).sum(axis=(-2, -1))
    scale = (S * D).sum(-1) / np.maximum(var_p, 1e-12)
    return scale[:, None, None] * np.einsum("nji,nik->njk", p, R) + mu_g


def p_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """MPJPE after Procrustes alignment (PA-MPJPE), per pose. (N, J, 3) -> (N,)."""
    pred = np.asarray(pred, np.float64).reshape(-1, *np.shape(pred)[-2:])
    gt = np.asarray(gt, np.float64).reshape(-1, *np.shape(gt)[-2:])
    return mpjpe(procrustes_align(pred, gt), gt)


def jitter(seq: np.ndarray) -> float:
    """Mean norm of the second difference over frames and joints. seq: (F, J, 3) -> scalar
    (units per frame^2); NaN for fewer than 3 frames."""
    if len(seq) < 3:
        return float("nan")
    acc = seq[2:] - 2 * seq[1:-1] + seq[:-2]
    return float(np.linalg.norm(acc, axis=-1).mean())


def root_lateral_error(pred_root: np.ndarray, gt_root: np.ndarray) -> np.ndarray:
    """Root placement error apart from depth, (...,): the predicted root (..., 3) slid along its
    camera ray to the true depth, then its distance to the true root."""
    slid = pred_root * (gt_root[..., 2] / pred_root[..., 2])[..., None]
    return np.linalg.norm(slid - gt_root, axis=-1)


def root_depth_error(pred_z: np.ndarray, gt_z: np.ndarray) -> np.ndarray:
    """Relative root depth error |z_pred - z_gt| / z_gt, (...,)."""
    return np.abs(pred_z - gt_z) / gt_z
