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

When the source's ankles are known (``SourceMotion.ankles_world``) and the target's shins
hang below its root bone, the root is placed from the feet instead of the pelvis: for each
foot, the root position that puts the target's ankle (forward kinematics of the target's
own rotations) on the source ankle mapped the same way (plus the constant difference of the
two rest poses), blended with weights favouring the lower source foot (softmin over its
height, ``FOOT_SIGMA``). A planted source foot then gives a planted target foot, whatever
the differences between the two pelvises and hips. With ``plant_feet`` the target's thigh
and shin are then turned (two-bone IK, knee kept in its plane) so that an ankle whose source
ankle is near the source's floor (full weight up to ``PLANT_FULL`` above it, none from
``PLANT_NONE``) lands exactly on its goal: both feet stay planted in double support too.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import floor
from . import foot_lock as fk
from . import rotations as rot

#: Largest angle between rest directions that is treated as the same limb.
ALIGN_MAX_DEG = 60.0
#: Height difference (m, source) over which the lower foot's weight in placing the root
#: falls by a factor e.
FOOT_SIGMA = 0.03
#: Mocap bones whose tails are the ankles (right, left), as in the pose file's contacts.
SHINS = ("shin.R", "shin.L")
#: Source ankle height above its floor (m) up to which the target's foot is planted fully,
#: and from which not at all (half-cosine in between).
PLANT_FULL, PLANT_NONE = 0.02, 0.05


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
    height of the source's ankles when a foot is on its floor, None = estimated (see
    ``source_floor``); ankles_world (F, 2, 3) and rest_ankles (2, 3): the right and
    left ankles posed and at rest (world), None when unknown (the root then follows the
    pelvis)."""
    names: list
    world_rot: np.ndarray
    rest_dirs: np.ndarray
    root_world: np.ndarray
    rest_root: np.ndarray
    hip_height: float
    floor_z: float | None = None
    ankles_world: np.ndarray | None = None    # (F, 2, 3) right, left ankle (world)
    rest_ankles: np.ndarray | None = None     # (2, 3) the same in the rest pose (world)


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
             align_max_deg: float = ALIGN_MAX_DEG, plant_feet: bool = True) -> RetargetResult:
    """Compute target pose rotations for every source frame.

    mapping: source bone -> target bone.  Raises RetargetError when a mapped
    bone is missing on either side or nothing is mapped.  plant_feet: turn the target's
    thighs and shins so feet near the floor land exactly (see the module docstring).
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
        src_floor = source_floor(source)

        def mapped(P):   # source world points -> target world points, about the floors
            out = head_w + scale * (P - source.rest_root)
            out[..., 2] = tgt_floor + ankle + scale * (P[..., 2] - src_floor)
            return out
        head_world = mapped(source.root_world)                                  # (F, 3)
        goals = _ankle_goals(source, target, mapping, r, M, scale, mapped)
        on_feet = None if goals is None else _root_from_feet(goals, source, target, Wt, r, M, src_floor)
        Minv = np.linalg.inv(M)
        if on_feet is not None:
            head_world = on_feet
            if plant_feet:
                planted = _plant_feet(goals, source, target, by_target, Wt, r, M, Minv,
                                      head_world @ Minv[:3, :3].T + Minv[:3, 3], src_floor)
                if planted:
                    warnings.append(f"legs turned to plant the feet in {planted} frames")
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
    # keyed bones' descendants that are unmapped keep identity local rotation;
    # they need no keys.
    L = rot.local_rotations(Wt, np.asarray(target.parents), target.rest_rot)
    q = rot.make_sign_continuous(rot.quat_from_matrix(L))
    return RetargetResult(local_quat=q, keyed=keyed, root_bone=root_bone, root_location=root_loc,
                          aligned=aligned, scale=scale, warnings=warnings)


def _posed_offset(parents, Wt, heads, tails, root: int, bone: int, at_head: bool = False):
    """(F, 3) posed tail (head with ``at_head``) of ``bone`` minus the posed head of ``root``
    (armature space) by forward kinematics of the world deltas Wt (F, Bt, 3, 3); None if
    ``bone`` is not below ``root``."""
    chain, b = [], bone
    while b >= 0 and b != root:
        chain.append(b)
        b = parents[b]
    if b != root:
        return None
    off = np.zeros((Wt.shape[0], 3))
    prev = root
    for b in reversed(chain):
        off = off + rot.mv(Wt[:, prev], heads[b] - heads[prev])
        prev = b
    if at_head:
        return off
    return off + rot.mv(Wt[:, bone], tails[bone] - heads[bone])


def _ankle_goals(source, target, mapping, r, M, scale, mapped):
    """(goals (F, 2, 3): world points where the target's right and left ankles belong, the
    target bones the shins map to), or None when the source ankles or a shin are missing."""
    if source.ankles_world is None or source.rest_ankles is None:
        return None
    index = {n: i for i, n in enumerate(target.names)}
    goals, shins = [], []
    for k, shin in enumerate(SHINS):
        t = index.get(mapping.get(shin))
        if t is None:
            return None
        rest_off_w = M[:3, :3] @ (target.tails[t] - target.heads[r])
        c = rest_off_w - scale * (source.rest_ankles[k] - source.rest_root)   # rest poses' difference
        goals.append(mapped(source.ankles_world[:, k]) + c)
        shins.append(t)
    return np.stack(goals, 1), shins


def _root_from_feet(goals, source, target, Wt, r, M, src_floor):
    """(F, 3) world root head that keeps the target's ankles on their goals (see the module
    docstring), or None when the shins are not below the root bone."""
    goals, shins = goals
    demands = []
    for k, t in enumerate(shins):
        off = _posed_offset(target.parents, Wt, target.heads, target.tails, r, t)
        if off is None:
            return None
        demands.append(goals[:, k] - off @ M[:3, :3].T)
    h = source.ankles_world[:, :, 2] - src_floor                                # (F, 2)
    w = np.exp(-(h - h.min(axis=1, keepdims=True)) / FOOT_SIGMA)
    return (w[:, 0, None] * demands[0] + w[:, 1, None] * demands[1]) / w.sum(axis=1, keepdims=True)


def _plant_feet(goals, source, target, by_target, Wt, r, M, Minv, head_arm, src_floor) -> int:
    """Turn the target's mapped thighs and shins (Wt, in place) so that each ankle reaches
    its goal with the plant weight of its source ankle's height; unmapped bones below follow.
    Returns the number of frames changed (0 when the legs are not thigh -> shin chains)."""
    goals, shins = goals
    A, _ = _object_rotation(M)
    fwd_rest = A.T @ np.array([0.0, -1.0, 0.0])                  # the rig's front, armature axes
    h = source.ankles_world[:, :, 2] - src_floor
    x = np.clip((h - PLANT_FULL) / (PLANT_NONE - PLANT_FULL), 0.0, 1.0)
    weight = 0.5 * (1.0 + np.cos(np.pi * x))                     # (F, 2)
    changed = np.zeros(len(h), bool)
    P, heads, tails = target.parents, target.heads, target.tails
    for k, t in enumerate(shins):
        th = P[t]
        if th < 0 or target.names[th] not in by_target or not np.allclose(tails[th], heads[t], atol=1e-4 * (
                1.0 + np.abs(heads).max())):
            continue
        use = weight[:, k] > 1e-6
        if not use.any():
            continue
        hip = head_arm + _posed_offset(P, Wt, heads, tails, r, th, at_head=True)
        knee = hip + rot.mv(Wt[:, th], tails[th] - heads[th])
        ankle = knee + rot.mv(Wt[:, t], tails[t] - heads[t])
        goal = goals[:, k] @ Minv[:3, :3].T + Minv[:3, 3]
        want = ankle + weight[:, k, None] * (goal - ankle)
        fwd = rot.mv(Wt[:, r], fwd_rest)
        l1, l2 = np.linalg.norm(tails[th] - heads[th]), np.linalg.norm(tails[t] - heads[t])
        new_knee, new_ankle, _ = fk.two_bone_ik(hip[use], knee[use], want[use], l1, l2, fwd[use])
        R1 = rot.rotation_between(rot.normalize(knee[use] - hip[use]), rot.normalize(new_knee - hip[use]))
        R2 = rot.rotation_between(rot.normalize(ankle[use] - knee[use]), rot.normalize(new_ankle - new_knee))
        Wt[use, th] = rot.mm(R1, Wt[use, th])
        Wt[use, t] = rot.mm(R2, Wt[use, t])
        changed |= use
    if changed.any():
        for b in range(len(target.names)):       # unmapped bones follow their (maybe turned) parents
            if target.names[b] not in by_target and P[b] >= 0:
                Wt[:, b] = Wt[:, P[b]]
    return int(changed.sum())


def source_floor(source: SourceMotion) -> float:
    """World height of the source's ankles when a foot is on its floor: ``floor_z`` (the
    importer's), else where its posed ankles stand (floor.contact_height), else the rest
    pose's ankle level below the pelvis."""
    if source.floor_z is not None:
        return float(source.floor_z)
    if source.ankles_world is not None:
        z = floor.contact_height(source.ankles_world[:, :, 2])
        if np.isfinite(z):
            return z
    return float(source.rest_root[2] - source.hip_height)


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
                      object_matrix, root_index, hip_height, floor_z: float | None = None,
                      rest_tails: np.ndarray | None = None) -> SourceMotion:
    """Rebuild a SourceMotion from a mocap armature's keyed channels.

    names (Bs,), parents (Bs,), bone_rest (Bs, 3, 3), rest_heads (Bs, 3) in the
    source armature space; local_quat (F, Bs, 4); root_location (F, 3) pose
    location of bone ``root_index``; object_matrix (4, 4) source object world
    matrix.  Rest directions are the bones' rest Y axes.  floor_z: the height of the
    source's floor in its armature space (None: the rest pose's ankle level); rest_tails
    (Bs, 3): with them the ankles (tails of SHINS) are posed by forward kinematics.
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
    ankles = rest_ankles = None
    if rest_tails is not None and all(n in names for n in SHINS):
        rest_heads = np.asarray(rest_heads, float)
        rest_tails = np.asarray(rest_tails, float)
        ankles_arm = np.stack([head_arm + _posed_offset(np.asarray(parents), W_arm, rest_heads, rest_tails,
                                                        root_index, list(names).index(n)) for n in SHINS], 1)
        ankles = ankles_arm @ M[:3, :3].T + M[:3, 3]
        rest_ankles = np.stack([rest_tails[list(names).index(n)] for n in SHINS]) @ M[:3, :3].T + M[:3, 3]
    return SourceMotion(names=list(names), world_rot=W, rest_dirs=dirs, root_world=root_world,
                        rest_root=rest_root, hip_height=float(hip_height) * s, floor_z=floor_world,
                        ankles_world=ankles, rest_ankles=rest_ankles)
