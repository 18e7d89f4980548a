"""Retargeting maths (pure numpy): mocap bone orientations onto another rig.

Source: the mocap armature's motion as world rotations W_s (F, Bs, 3, 3) (each
takes a rest bone to its posed orientation), the rest direction of each source
bone, and the root (pelvis) trajectory.  Target: a rig's rest pose in its
armature space (bone rest rotations, heads, parents) and the armature object's
world matrix.

For a mapped target bone t following source bone s:

    W_t = W_s' @ C_t,     W_s' = A^T W_s A   (world -> target armature axes)

where C_t is the shortest arc taking the target's rest direction to the
source's rest direction, applied only when the two rest directions are within
``ALIGN_MAX_DEG`` (a T-pose source onto an A-pose target: the target bone
points where the source bone points).  Bones whose rest direction has nothing
to do with the limb (Rigify's "torso" control, say) get W_s' alone.  Unmapped
bones keep their rest pose relative to their parent (W_t = W_parent).
Local pose rotations follow Blender's rule L = Rt^T W_p^T W_t Rt.

The root bone's head follows the source pelvis, scaled about the floor: the scale is
the ratio of leg lengths (target: root head height above its ankles; source: rest pelvis
height above its ankles), horizontally the motion is scaled about the source's rest
pelvis and lands on the target's rest root head, and vertically the target root's
height above the target's ankle level is the scaled source pelvis height above the
source's floor. A source foot on its floor thus puts the target foot on the target's floor
(the lowest point of its rest pose), at the height its ankle has in the rest pose.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import rotations as rot

#: Largest angle between rest directions that is treated as the same limb.
ALIGN_MAX_DEG = 60.0


class RetargetError(Exception):
    """The source/target/bone map combination cannot be retargeted."""


@dataclass
class TargetRig:
    """Rest pose of a target armature, in its armature space.

    names: (Bt,) bone names, parents before children; parents: (Bt,) int (-1 root);
    rest_rot: (Bt, 3, 3) ``bone.matrix_local`` rotation; heads, tails: (Bt, 3);
    object_matrix: (4, 4) armature object's world matrix.
    """
    names: list
    parents: np.ndarray
    rest_rot: np.ndarray
    heads: np.ndarray
    tails: np.ndarray
    object_matrix: np.ndarray = field(default_factory=lambda: np.eye(4))


@dataclass
class SourceMotion:
    """names: (Bs,); world_rot: (F, Bs, 3, 3) world deltas; rest_dirs: (Bs, 3)
    world rest directions; root_world: (F, 3) pelvis; rest_root: (3,) rest
    pelvis (world); hip_height: rest pelvis height above the feet (m); floor_z: world
    height of the floor the source's feet (ankles) stand on, None = the rest pose's ankle
    level below ``rest_root``."""
    names: list
    world_rot: np.ndarray
    rest_dirs: np.ndarray
    root_world: np.ndarray
    rest_root: np.ndarray
    hip_height: float
    floor_z: float | None = None


@dataclass
class RetargetResult:
    """local_quat: (F, Bt, 4) pose rotations (w, x, y, z), sign-continuous;
    keyed: names of bones to key (mapped bones and their unmapped descendants
    are posed implicitly); root_bone: target root bone name or None;
    root_location: (F, 3) its pose location; aligned: bones where C_t was used."""
    local_quat: np.ndarray
    keyed: list
    root_bone: str | None
    root_location: np.ndarray | None
    aligned: list
    scale: float
    warnings: list = field(default_factory=list)


def _object_rotation(M: np.ndarray):
    """(4, 4) -> (3, 3) rotation part without scale, and the mean scale."""
    A = np.asarray(M, float)[:3, :3]
    s = np.linalg.norm(A, axis=0)
    if np.any(s < 1e-12):
        raise RetargetError("target armature object has zero scale")
    R = A / s
    u, _, vt = np.linalg.svd(R)
    R = u @ vt
    if np.linalg.det(R) < 0:
        raise RetargetError("target armature object is mirrored (negative scale)")
    return R, float(np.mean(s))


def retarget(source: SourceMotion, target: TargetRig, mapping: dict, root_bone: str | None,
             align_max_deg: float = ALIGN_MAX_DEG) -> RetargetResult:
    """Compute target pose rotations for every source frame.

    mapping: source bone -> target bone.  Raises RetargetError when a mapped
    bone is missing on either side or nothing is mapped.
    """
    F = source.world_rot.shape[0]
    Bs = len(source.names)
    assert source.world_rot.shape == (F, Bs, 3, 3) and source.root_world.shape == (F, 3)
    Bt = len(target.names)
    assert target.rest_rot.shape == (Bt, 3, 3) and target.parents.shape == (Bt,)
    src_index = {n: i for i, n in enumerate(source.names)}
    tgt_index = {n: i for i, n in enumerate(target.names)}
    missing_t = sorted(t for t in mapping.values() if t not in tgt_index)
    missing_s = sorted(s for s in mapping if s not in src_index)
    if missing_t:
        raise RetargetError(f"target rig has no bones named {missing_t}")
    if missing_s:
        raise RetargetError(f"source has no bones named {missing_s}")
    if not mapping:
        raise RetargetError("bone map is empty")
    if root_bone is not None and root_bone not in tgt_index:
        raise RetargetError(f"target rig has no root bone {root_bone!r}")
    if len(set(mapping.values())) != len(mapping):
        raise RetargetError("two mocap bones map to the same target bone")
    for i, p in enumerate(target.parents):
        if p >= i:
            raise RetargetError("target bones must be listed parents first")

    A, obj_scale = _object_rotation(target.object_matrix)
    Ws = np.einsum("ji,fbjk,kl->fbil", A, source.world_rot, A)        # A^T W A
    src_dirs = rot.normalize(source.rest_dirs @ A)                     # A^T d, row-wise
    by_target = {t: s for s, t in mapping.items()}
    Wt = np.empty((F, Bt, 3, 3))
    aligned, keyed = [], []
    cos_max = np.cos(np.radians(align_max_deg))
    for t in range(Bt):
        name = target.names[t]
        p = target.parents[t]
        if name in by_target:
            s = src_index[by_target[name]]
            d_t = rot.normalize(target.rest_rot[t][:, 1])
            d_s = src_dirs[s]
            C = np.eye(3)
            if float(d_t @ d_s) >= cos_max:
                C = rot.rotation_between(d_t, d_s)
                aligned.append(name)
            Wt[:, t] = Ws[:, s] @ C
            keyed.append(name)
        elif p >= 0:
            Wt[:, t] = Wt[:, p]
        else:
            Wt[:, t] = np.eye(3)
    # keyed bones' descendants that are unmapped keep identity local rotation;
    # they need no keys.
    L = rot.local_rotations(Wt, np.asarray(target.parents), target.rest_rot)
    q = rot.make_sign_continuous(rot.quat_from_matrix(L))

    root_loc, scale = None, 1.0
    warnings = []
    if root_bone is not None:
        r = tgt_index[root_bone]
        M = np.asarray(target.object_matrix, float)
        head_w = M[:3, :3] @ target.heads[r] + M[:3, 3]
        pts = np.concatenate([target.heads, target.tails]) @ M[:3, :3].T + M[:3, 3]
        tgt_floor = float(pts[:, 2].min())
        ankle = target_ankle_height(target, mapping) - tgt_floor
        tgt_leg = float(head_w[2] - tgt_floor - ankle)
        if tgt_leg <= 1e-6 or source.hip_height <= 1e-6:
            warnings.append("could not compare leg lengths; root motion not scaled")
            scale = 1.0
            tgt_leg = float(source.hip_height)
        else:
            scale = tgt_leg / source.hip_height
        head_world = head_w + scale * (source.root_world - source.rest_root)   # (F, 3)
        src_floor = (source.rest_root[2] - source.hip_height if source.floor_z is None
                     else float(source.floor_z))
        head_world[:, 2] = tgt_floor + ankle + scale * (source.root_world[:, 2] - src_floor)
        Minv = np.linalg.inv(M)
        head_arm = head_world @ Minv[:3, :3].T + Minv[:3, 3]
        # pose location is in the bone's rest axes (valid while its parents are at rest)
        root_loc = (head_arm - target.heads[r]) @ target.rest_rot[r]
        unposed_parents = []
        p = target.parents[r]
        while p >= 0:
            if target.names[p] in by_target:
                unposed_parents.append(target.names[p])
            p = target.parents[p]
        if unposed_parents:
            warnings.append(f"root bone {root_bone!r} has mapped parents {unposed_parents}; "
                            "its location assumes they stay at rest")
    return RetargetResult(local_quat=q, keyed=keyed, root_bone=root_bone, root_location=root_loc,
                          aligned=aligned, scale=scale, warnings=warnings)


def target_ankle_height(target: TargetRig, mapping: dict) -> float:
    """World height of the target's ankles in its rest pose: the tails of the bones the
    mocap shins map to (their mean); the rig's lowest point when no shin is mapped."""
    M = np.asarray(target.object_matrix, float)
    index = {n: i for i, n in enumerate(target.names)}
    tails = [index[mapping[s]] for s in ("shin.L", "shin.R") if mapping.get(s) in index]
    pts = (target.tails[tails] if tails else np.concatenate([target.heads, target.tails]))
    z = (pts @ M[:3, :3].T + M[:3, 3])[:, 2]
    return float(z.mean() if tails else z.min())


def source_from_local(names, parents, bone_rest, local_quat, root_location, rest_heads,
                      object_matrix, root_index, hip_height, floor_z: float | None = None) -> SourceMotion:
    """Rebuild a SourceMotion from a mocap armature's keyed channels.

    names (Bs,), parents (Bs,), bone_rest (Bs, 3, 3), rest_heads (Bs, 3) in the
    source armature space; local_quat (F, Bs, 4); root_location (F, 3) pose
    location of bone ``root_index``; object_matrix (4, 4) source object world
    matrix.  Rest directions are the bones' rest Y axes.  floor_z: the height of the
    source's floor in its armature space (None: the rest pose's ankle level).
    """
    L = rot.matrix_from_quat(local_quat)
    W_arm = rot.world_from_local(L, np.asarray(parents), bone_rest)
    A, s = _object_rotation(object_matrix)
    M = np.asarray(object_matrix, float)
    W = np.einsum("ij,fbjk,lk->fbil", A, W_arm, A)                      # A W A^T
    dirs = rot.normalize(bone_rest[:, :, 1] @ A.T)
    head_arm = rest_heads[root_index] + root_location @ bone_rest[root_index].T
    root_world = head_arm @ M[:3, :3].T + M[:3, 3]
    rest_root = M[:3, :3] @ rest_heads[root_index] + M[:3, 3]
    floor_world = None
    if floor_z is not None:
        floor_world = float((M[:3, :3] @ np.array([rest_heads[root_index][0], rest_heads[root_index][1],
                                                    float(floor_z)]) + M[:3, 3])[2])
    return SourceMotion(names=list(names), world_rot=W, rest_dirs=dirs, root_world=root_world,
                        rest_root=rest_root, hip_height=float(hip_height) * s, floor_z=floor_world)
