"""IK controls that reproduce an FK pose (pure numpy): the maths of retargeting onto a rig's IK
targets, e.g. a generated Rigify rig's hand_ik / foot_ik and their pole targets.

The retarget first poses the rig's FK chain (exact, ``core/retarget.py``); the glue then samples
the chain (armature space) and this module places the IK controls so the IK solver gives the
same limb:

* the end control (hand_ik, foot_ik) moves rigidly with the bone it drives (the ORG- hand or
  foot): at rest both agree, so ``C(t) = B(t) @ B_rest^-1 @ C_rest``;
* the pole target sits on the side the middle joint bends to, at its rest distance from that
  joint: the direction from the root-end line to the elbow / knee; with the limb almost straight
  (no bend to read), the rest pole carried rigidly with the upper bone.

Matrices are (..., 4, 4) armature space; the glue has Blender turn them into the controls'
bases (``convert_space``), which knows each bone's parenting flags.
"""
from __future__ import annotations

import numpy as np

from . import rotations as rot

#: Below this bend (distance of the middle joint from the root-end line, as a share of the limb's
#: length) the pole direction is blended towards the rigidly carried rest pole.
STRAIGHT = 0.02


def follow_rigidly(bone: np.ndarray, bone_rest: np.ndarray, control_rest: np.ndarray) -> np.ndarray:
    """(F, 4, 4) control matrices that keep their rest placement relative to ``bone`` (F, 4, 4)."""
    return np.asarray(bone, np.float64) @ (np.linalg.inv(bone_rest) @ control_rest)


def pole_positions(root: np.ndarray, mid: np.ndarray, end: np.ndarray, carried: np.ndarray,
                   distance: float) -> np.ndarray:
    """(F, 3) pole target heads: ``distance`` from ``mid`` towards its bend. root, mid, end (F, 3)
    the limb's joints (shoulder, elbow, wrist); carried (F, 3) the rest pole moved rigidly with
    the upper bone (used where the limb is straight)."""
    root, mid, end, carried = (np.asarray(a, np.float64) for a in (root, mid, end, carried))
    axis = end - root
    length = np.linalg.norm(axis, axis=-1, keepdims=True)
    u = axis / np.maximum(length, 1e-9)
    off = (mid - root) - np.sum((mid - root) * u, -1, keepdims=True) * u
    bend = np.linalg.norm(off, axis=-1, keepdims=True)
    fallback = carried - mid
    fallback = fallback - np.sum(fallback * u, -1, keepdims=True) * u    # across the limb, too
    fb = fallback / np.maximum(np.linalg.norm(fallback, axis=-1, keepdims=True), 1e-9)
    w = np.clip(bend / np.maximum(STRAIGHT * length, 1e-9), 0.0, 1.0)   # 1: bent enough to read
    d = w * off / np.maximum(bend, 1e-9) + (1.0 - w) * fb
    d /= np.maximum(np.linalg.norm(d, axis=-1, keepdims=True), 1e-9)
    return mid + distance * d


def with_translation(rest: np.ndarray, heads: np.ndarray) -> np.ndarray:
    """(F, 4, 4): ``rest`` (4, 4) moved so its head is at ``heads`` (F, 3)."""
    out = np.broadcast_to(np.asarray(rest, np.float64), (len(heads), 4, 4)).copy()
    out[:, :3, 3] = heads
    return out


def channels(basis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(location (F, 3), rotation quaternion (F, 4) w x y z, sign-continuous) of basis matrices;
    the rotation is orthonormalised (scale is not keyed)."""
    B = np.asarray(basis, np.float64)
    u, _, vt = np.linalg.svd(B[:, :3, :3])
    R = u @ vt
    R[np.linalg.det(R) < 0] *= -1.0          # never: a basis is a proper rotation; kept safe
    q = rot.make_sign_continuous(rot.normalize_quat(rot.quat_from_matrix(R)))
    return B[:, :3, 3].copy(), q
