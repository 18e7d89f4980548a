"""The mocap skeleton: 15 bones over the 16 MPII joints of the pose-file contract.

Pure numpy.  World frame is Blender's (Z up, character facing -Y, its left side
at +X).  Each bone has a rest direction ``rest_dir`` and a rest roll axis
``rest_x`` (perpendicular to it); its rest matrix is the rotation with columns
``[rest_x, rest_dir, rest_x x rest_dir]``, i.e. Blender's bone convention (local
Y along the bone) with the bone's local X on ``rest_x``.  ``ref`` names the
per-frame vector that picks the bone's twist (see :mod:`.rotations`).

Rest pose: a T-pose built from one person's median bone lengths over valid
frames, pelvis at (0, 0, leg length) so the feet touch z = 0.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BoneDef:
    name: str
    head: str          # joint name at the bone head
    tail: str          # joint name at the bone tail
    parent: str | None
    rest_dir: tuple    # unit (3,) rest direction, Blender world
    rest_x: tuple      # unit (3,) rest local X (roll), perpendicular to rest_dir
    ref: str           # twist reference, see rotations.reference_vectors


_X, _NX, _Z, _NZ = (1.0, 0.0, 0.0), (-1.0, 0.0, 0.0), (0.0, 0.0, 1.0), (0.0, 0.0, -1.0)

#: Bones in topological order (parents before children).  ".L" is the
#: person's own left side.
BONES: tuple[BoneDef, ...] = (
    BoneDef("spine", "pelvis", "thorax", None, _Z, _X, "torso_lateral"),
    BoneDef("neck", "thorax", "neck", "spine", _Z, _X, "shoulder_lateral"),
    BoneDef("head", "neck", "head_top", "neck", _Z, _X, "shoulder_lateral"),
    BoneDef("hip.R", "pelvis", "r_hip", "spine", _NX, _Z, "up"),
    BoneDef("thigh.R", "r_hip", "r_knee", "hip.R", _NZ, _X, "knee.R"),
    BoneDef("shin.R", "r_knee", "r_ankle", "thigh.R", _NZ, _X, "knee.R"),
    BoneDef("hip.L", "pelvis", "l_hip", "spine", _X, _Z, "up"),
    BoneDef("thigh.L", "l_hip", "l_knee", "hip.L", _NZ, _X, "knee.L"),
    BoneDef("shin.L", "l_knee", "l_ankle", "thigh.L", _NZ, _X, "knee.L"),
    BoneDef("shoulder.R", "thorax", "r_shoulder", "spine", _NX, _Z, "up"),
    BoneDef("upper_arm.R", "r_shoulder", "r_elbow", "shoulder.R", _NX, _Z, "elbow.R"),
    BoneDef("forearm.R", "r_elbow", "r_wrist", "upper_arm.R", _NX, _Z, "elbow.R"),
    BoneDef("shoulder.L", "thorax", "l_shoulder", "spine", _X, _Z, "up"),
    BoneDef("upper_arm.L", "l_shoulder", "l_elbow", "shoulder.L", _X, _Z, "elbow.L"),
    BoneDef("forearm.L", "l_elbow", "l_wrist", "upper_arm.L", _X, _Z, "elbow.L"),
)

BONE_NAMES: tuple[str, ...] = tuple(b.name for b in BONES)
ROOT_BONE = "spine"
ROOT_JOINT = "pelvis"


def bone_parents() -> np.ndarray:
    """(B,) int parent index per bone, -1 for the root."""
    idx = {b.name: i for i, b in enumerate(BONES)}
    return np.array([idx[b.parent] if b.parent else -1 for b in BONES], dtype=np.int64)


def rest_frames() -> np.ndarray:
    """(B, 3, 3) rest rotation per bone, columns [x, y=dir, z=x cross y]."""
    out = np.empty((len(BONES), 3, 3))
    for i, b in enumerate(BONES):
        x = np.asarray(b.rest_x, float)
        y = np.asarray(b.rest_dir, float)
        out[i] = np.stack([x, y, np.cross(x, y)], axis=1)
    return out


def joint_indices(joint_names) -> dict[str, int]:
    """Map joint name -> column in a pose file; raises KeyError naming a missing joint."""
    names = [str(n) for n in joint_names]
    lookup = {n: i for i, n in enumerate(names)}
    needed = {b.head for b in BONES} | {b.tail for b in BONES}
    missing = sorted(needed - set(lookup))
    if missing:
        raise KeyError(f"pose file lacks joints: {', '.join(missing)}")
    return lookup


def bone_vectors(joints: np.ndarray, joint_names) -> np.ndarray:
    """(..., J, 3) joints -> (..., B, 3) tail - head per bone."""
    ji = joint_indices(joint_names)
    h = [ji[b.head] for b in BONES]
    t = [ji[b.tail] for b in BONES]
    return joints[..., t, :] - joints[..., h, :]


def median_bone_lengths(joints: np.ndarray, valid: np.ndarray, joint_names) -> np.ndarray:
    """Median length per bone over valid frames.

    joints: (F, J, 3) one person's joints; valid: (F,) bool.  Returns (B,) metres.
    Raises ValueError when no valid frame has finite joints.
    """
    joints = np.asarray(joints, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    assert joints.ndim == 3 and joints.shape[2] == 3 and valid.shape == joints.shape[:1]
    vec = bone_vectors(joints[valid], joint_names)            # (V, B, 3)
    lengths = np.linalg.norm(vec, axis=-1)                     # (V, B)
    ok = np.isfinite(lengths).all(axis=1)
    if not ok.any():
        raise ValueError("no valid frame with finite joints")
    return np.median(lengths[ok], axis=0)


@dataclass
class RestSkeleton:
    """Rest pose of one person.

    lengths: (B,) bone lengths, metres; heads, tails: (B, 3) rest positions in
    the armature's space (Blender axes); frames: (B, 3, 3) rest rotations.
    """
    lengths: np.ndarray
    heads: np.ndarray
    tails: np.ndarray
    frames: np.ndarray

    @property
    def root_head(self) -> np.ndarray:
        return self.heads[BONE_NAMES.index(ROOT_BONE)]


def rest_skeleton(lengths: np.ndarray) -> RestSkeleton:
    """T-pose from (B,) bone lengths; feet on z = 0, pelvis above the origin."""
    lengths = np.asarray(lengths, dtype=np.float64)
    assert lengths.shape == (len(BONES),)
    names = list(BONE_NAMES)
    leg = max(lengths[names.index("thigh.R")] + lengths[names.index("shin.R")],
              lengths[names.index("thigh.L")] + lengths[names.index("shin.L")])
    joint_pos = {ROOT_JOINT: np.array([0.0, 0.0, leg])}
    heads = np.zeros((len(BONES), 3))
    tails = np.zeros((len(BONES), 3))
    for i, b in enumerate(BONES):
        heads[i] = joint_pos[b.head]
        tails[i] = heads[i] + lengths[i] * np.asarray(b.rest_dir, float)
        joint_pos[b.tail] = tails[i]
    return RestSkeleton(lengths=lengths, heads=heads, tails=tails, frames=rest_frames())


def forward_kinematics(world_rot: np.ndarray, root_pos: np.ndarray, rest: RestSkeleton):
    """Joint positions from world bone rotations (used by tests and checks).

    world_rot: (F, B, 3, 3) rotation taking each rest bone to its posed
    orientation (world delta); root_pos: (F, 3) posed root-joint position.
    Returns dict joint name -> (F, 3).
    """
    F = world_rot.shape[0]
    out = {ROOT_JOINT: np.asarray(root_pos, float).reshape(F, 3)}
    for i, b in enumerate(BONES):
        d = world_rot[:, i] @ np.asarray(b.rest_dir, float)
        out[b.tail] = out[b.head] + rest.lengths[i] * d
    return out
