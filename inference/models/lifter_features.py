"""The lifter's input features and output layout, in numpy (no torch): what the run time needs
around the network, whichever runtime runs it (lifter.py re-exports these names).

Input features (per frame, ``pose_features``): joints in normalised image coordinates, centred
on the 2D root and divided by the side of the square 2D box around the visible joints; plus the
scores and the root's normalised position. Output per frame (``split_output``): 16 x 3
root-relative joints in metres and a log correction of the RootNet pinhole depth.
"""
from __future__ import annotations

import numpy as np

from inference.core.camera import A_REAL_M2, bbox_area
from posefile.skeleton import JOINT_INDEX, PELVIS  # noqa: F401  (PELVIS re-exported)
from posefile.skeleton import NUM_JOINTS as J

R_HIP, L_HIP = JOINT_INDEX["r_hip"], JOINT_INDEX["l_hip"]
N_FEAT = J * 2 + J + 2
N_OUT = J * 3 + 1


def root_2d(xn: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """2D root (..., 2): pelvis if visible, else mid-hips if both visible, else mean of visible."""
    # Per coordinate: numpy reduces over the joint axis of (..., J, 2) several times slower.
    m = mask.astype(np.float64)
    cnt = np.maximum(m.sum(-1), 1.0)
    mean = np.stack([(xn[..., 0] * m).sum(-1) / cnt, (xn[..., 1] * m).sum(-1) / cnt], -1)
    hips = 0.5 * (xn[..., R_HIP, :] + xn[..., L_HIP, :])
    both = (mask[..., R_HIP] & mask[..., L_HIP])[..., None]
    r = np.where(both, hips, mean)
    return np.where(mask[..., PELVIS, None], xn[..., PELVIS, :], r)


def pose_features(xn: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Lifter inputs from normalised 2D.

    xn: (..., 16, 2) normalised image coordinates; scores: (..., 16), 0 = missing.
    Returns feats (..., 50) float32, root (..., 2) normalised root, k (...,) pinhole depth in metres
    (RootNet with the square box; NaN where < 2 joints), valid (...,) bool (>= 2 visible joints).
    """
    mask = scores > 0
    root = root_2d(xn, mask)
    side = np.sqrt(bbox_area(xn, mask))                 # square box side; 0 with < 2 visible joints
    valid = (mask.sum(-1) >= 2) & (side > 1e-6)
    s = np.where(valid, side, 1.0)
    rel = np.where(mask[..., None], (xn - root[..., None, :]) / s[..., None, None], 0.0)
    sc = np.where(mask, scores, 0.0)
    feats = np.concatenate([rel.reshape(rel.shape[:-2] + (J * 2,)), sc, root], -1)
    feats = np.where(valid[..., None], feats, 0.0)
    k = np.where(valid, np.sqrt(A_REAL_M2) / s, np.nan)
    return feats.astype(np.float32), root, k, valid


def split_output(out):
    """(..., 49) -> relative joints (..., 16, 3) metres, log depth correction (...,); numpy arrays
    or torch tensors."""
    return out[..., :J * 3].reshape(out.shape[:-1] + (J, 3)), out[..., J * 3]


def receptive_field(config: dict) -> int:
    """Frames a lifter of this manifest config sees per output frame: the product of the temporal
    network's filter widths (dilations 1, w0, w0*w1, ...), 1 for the per-frame MLP."""
    if config.get("arch", "tcn") != "tcn":
        return 1
    rf = 1
    for w in config.get("filter_widths", (3, 3, 3)):
        rf *= int(w)
    return rf
