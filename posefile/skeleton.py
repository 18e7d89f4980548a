"""The one joint and skeleton definition of the project (MPII order, J = 16).

Pure numpy. Every other module (engine, data readers, training, the add-on) takes its joint
order, left/right pairs and bones from here. "r_" is the person's own right side.
"""
from __future__ import annotations

import numpy as np

__all__ = ["JOINT_NAMES", "NUM_JOINTS", "JOINT_INDEX", "PELVIS", "PARENTS", "BONES",
           "FLIP_PAIRS", "FLIP_PERM"]

#: Joint order (MPII).
JOINT_NAMES: tuple[str, ...] = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle",
    "pelvis", "thorax", "neck", "head_top",
    "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)
NUM_JOINTS = len(JOINT_NAMES)
JOINT_INDEX: dict[str, int] = {name: i for i, name in enumerate(JOINT_NAMES)}
#: Each person's centre: the root of the kinematic tree and of root-relative 3D poses.
PELVIS = JOINT_INDEX["pelvis"]

_EDGES: dict[str, str | None] = {
    "pelvis": None,
    "r_hip": "pelvis", "r_knee": "r_hip", "r_ankle": "r_knee",
    "l_hip": "pelvis", "l_knee": "l_hip", "l_ankle": "l_knee",
    "thorax": "pelvis", "neck": "thorax", "head_top": "neck",
    "r_shoulder": "thorax", "r_elbow": "r_shoulder", "r_wrist": "r_elbow",
    "l_shoulder": "thorax", "l_elbow": "l_shoulder", "l_wrist": "l_elbow",
}

#: Kinematic tree: ``PARENTS[j]`` is the index of joint j's parent, -1 for the root (pelvis).
PARENTS: tuple[int, ...] = tuple(-1 if _EDGES[n] is None else JOINT_INDEX[_EDGES[n]]
                                 for n in JOINT_NAMES)

#: Bones as (parent, child) index pairs, (15, 2): overlays and bone-length constancy.
BONES = np.array([
    (6, 2), (2, 1), (1, 0), (6, 3), (3, 4), (4, 5),
    (6, 7), (7, 8), (8, 9),
    (7, 12), (12, 11), (11, 10), (7, 13), (13, 14), (14, 15),
])

#: Left/right pairs swapped by a horizontal flip, (6, 2).
FLIP_PAIRS = np.array([(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)])


def _flip_perm() -> np.ndarray:
    perm = np.arange(NUM_JOINTS)
    perm[FLIP_PAIRS[:, 0]], perm[FLIP_PAIRS[:, 1]] = FLIP_PAIRS[:, 1], FLIP_PAIRS[:, 0]
    return perm


#: The joint order seen in a mirror: ``joints[..., FLIP_PERM, :]`` relabels left and right.
FLIP_PERM = _flip_perm()

assert all(PARENTS[c] == p for p, c in BONES), "BONES must follow the kinematic tree"
