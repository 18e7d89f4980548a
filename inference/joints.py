"""Joint conventions of the inference side (MPII order, J = 16; see shared README)."""
from __future__ import annotations

import numpy as np

JOINT_NAMES = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle",
    "pelvis", "thorax", "neck", "head_top",
    "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
J = len(JOINT_NAMES)
INDEX = {n: i for i, n in enumerate(JOINT_NAMES)}
PELVIS = INDEX["pelvis"]

# Left/right pairs swapped by a horizontal flip.
FLIP_PAIRS = np.array([(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)])

# Bones drawn in overlays and used for bone-length constancy (parent, child).
BONES = np.array([
    (6, 2), (2, 1), (1, 0), (6, 3), (3, 4), (4, 5),
    (6, 7), (7, 8), (8, 9),
    (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
])

# LSP (14 joints) -> our 16: index into LSP, or None for derived joints.
LSP_NAMES = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
             "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top")


def from_lsp(joints14: np.ndarray, visible14: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 14, 2), (..., 14) -> (..., 16, 2), (..., 16). Pelvis = mid-hips, thorax =
    mid-shoulders, each visible only when both parents are."""
    lsp = {n: i for i, n in enumerate(LSP_NAMES)}
    shape = joints14.shape[:-2]
    out = np.zeros(shape + (J, 2), np.float32)
    vis = np.zeros(shape + (J,), bool)
    for name, i in INDEX.items():
        if name in lsp:
            out[..., i, :] = joints14[..., lsp[name], :]
            vis[..., i] = visible14[..., lsp[name]]
    for name, (a, b) in {"pelvis": ("r_hip", "l_hip"), "thorax": ("r_shoulder", "l_shoulder")}.items():
        ia, ib = lsp[a], lsp[b]
        out[..., INDEX[name], :] = 0.5 * (joints14[..., ia, :] + joints14[..., ib, :])
        vis[..., INDEX[name]] = visible14[..., ia] & visible14[..., ib]
    return out, vis
