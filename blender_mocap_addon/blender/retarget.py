"""Retarget a mocap armature's action onto a user's rig (thin bpy glue).

Reads the mocap armature's keys (no frame stepping), runs core.retarget, and
writes the result as a NEW action on the target, named after the source
action.  The target's previous action is kept (fake user) - never overwritten.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import bpy
import numpy as np

from . import armature as armature_bpy, keys as keys_bpy, layers, rigify_ik as rigify_ik_bpy
from ..core import bonemap as bm
from ..core import retarget as rt
from ..core import rotations as rot
from ..core import skeleton as sk
from ..errors import MocapError


@dataclass
class RetargetReport:
    action: str = ""
    frames: int = 0
    bones: list = field(default_factory=list)
    warnings: list = field(default_factory=list)


def _matrix(m) -> np.ndarray:
    return np.array([[m[r][c] for c in range(4)] for r in range(4)], dtype=np.float64)


def is_mocap_armature(obj) -> bool:
    return (obj is not None and obj.type == 'ARMATURE'
            and all(n in obj.data.bones for n in sk.BONE_NAMES))


def read_source(src) -> tuple:
    """(frames (F,), SourceMotion) from a mocap armature's active action.

    Channels are sampled at the union of their key frames with linear
    interpolation (the importer keys linearly), quaternions renormalized.
    """
    if not is_mocap_armature(src):
        raise MocapError(f"{getattr(src, 'name', src)!r} is not a mocap armature "
                         f"(needs bones {', '.join(sk.BONE_NAMES)})")
    curves = {}
    for fc in keys_bpy.fcurves_of(src):
        if not keys_bpy.is_motion(fc):      # confidence, bone colours, visibility
            continue
        curves[(fc.data_path, fc.array_index)] = keys_bpy.read_channel(fc)
    if not curves:
        raise MocapError(f"{src.name!r} has no animation to retarget")
    frames = np.unique(np.concatenate([c[0] for c in curves.values()]))
    B = len(sk.BONE_NAMES)
    q = np.zeros((len(frames), B, 4))
    q[..., 0] = 1.0
    for b, name in enumerate(sk.BONE_NAMES):
        pb = src.pose.bones[name]
        for i in range(4):
            c = curves.get((f'pose.bones["{name}"].rotation_quaternion', i))
            if c is not None:
                q[:, b, i] = np.interp(frames, c[0], c[1])
            else:
                q[:, b, i] = pb.rotation_quaternion[i]
    q = rot.normalize_quat(q)
    root = sk.ROOT_BONE
    loc = np.zeros((len(frames), 3))
    for i in range(3):
        c = curves.get((f'pose.bones["{root}"].location', i))
        loc[:, i] = np.interp(frames, c[0], c[1]) if c is not None else src.pose.bones[root].location[i]
    names = list(sk.BONE_NAMES)
    rest = armature_bpy.bone_rest_rotations(src, names)
    heads = np.array([src.data.bones[n].head_local[:] for n in names], dtype=np.float64)
    tails = np.array([src.data.bones[n].tail_local[:] for n in names], dtype=np.float64)
    root_i = names.index(root)
    hip = float(src.get("mocap_hip_height", heads[root_i, 2] - min(heads[:, 2].min(), tails[:, 2].min())))
    floor_z = src.get("mocap_floor_z")     # set by the importer; older armatures: rest ankle level
    motion = rt.source_from_local(names, sk.bone_parents(), rest, q, loc, heads,
                                  _matrix(src.matrix_world), root_i, hip,
                                  floor_z=None if floor_z is None else float(floor_z), rest_tails=tails)
    return frames, motion


def resolve_map(tgt, bone_map: bm.BoneMap | None) -> bm.BoneMap:
    """The map to use on ``tgt`` (best preset / name match when None); MocapError if unusable."""
    if tgt is None or tgt.type != 'ARMATURE':
        raise MocapError("choose a target armature to retarget onto")
    names = [b.name for b in tgt.data.bones]
    bone_map = bone_map or bm.best_map(names)
    missing = bone_map.missing(names)
    if missing:
        raise MocapError(f"target rig {tgt.name!r} lacks bones the map '{bone_map.name}' needs: "
                         f"{', '.join(missing)}")
    if not bone_map.bones:
        raise MocapError(f"no bone of {tgt.name!r} matches the mocap skeleton; edit the bone map")
    return bone_map


#: Constraints that set a bone's rotation whatever its own keys say.
OVERRIDING = {'COPY_TRANSFORMS', 'COPY_ROTATION', 'CHILD_OF', 'ARMATURE', 'DAMPED_TRACK', 'LOCKED_TRACK',
              'TRACK_TO', 'STRETCH_TO', 'IK'}


def follow_copies(tgt, names, parents, rest, heads, tails, mw):
    """The rig's rest arrays with each bone whose orientation a constraint copies from another
    bone of the same rig with the same rest orientation (COPY_TRANSFORMS or world-space
    COPY_ROTATION, enabled, at full evaluated influence: a generated Rigify rig's ORG- bones
    copy its controls, its FK arm parents copy the root, its head copies the torso) made a
    child of that bone, so the retarget maths moves it, and what hangs below it, as Blender
    will. Re-sorted parents first."""
    index = {n: i for i, n in enumerate(names)}
    parents = np.array(parents, copy=True)
    scene = bpy.context.scene
    tgt.update_tag(refresh={'OBJECT', 'DATA', 'TIME'})   # run the rig's drivers (constraint
    cur = scene.frame_current                            # influences) on its current settings:
    scene.frame_set(cur + 1)                             # setting the same frame would not
    scene.frame_set(cur)
    evaluated = tgt.evaluated_get(bpy.context.evaluated_depsgraph_get())
    for i, n in enumerate(names):
        source = None
        for c in evaluated.pose.bones[n].constraints:
            if not _copies(c, tgt):
                continue
            if c.influence >= 0.999:
                source = c.subtarget          # the last full one wins (REPLACE)
            elif c.influence > 1e-3:
                source = None                 # a blend: not modelled, keep the data parent
        if source in index:
            j = index[source]
            if np.allclose(rest[i], rest[j], atol=1e-4) and not _descends(parents, j, i):
                parents[i] = j
    order, seen = [], set()

    def visit(i):
        if i in seen:
            return
        if parents[i] >= 0:
            visit(parents[i])
        seen.add(i)
        order.append(i)
    for i in range(len(names)):
        visit(i)
    pos = {old: new for new, old in enumerate(order)}
    names = [names[i] for i in order]
    parents = np.array([pos[parents[i]] if parents[i] >= 0 else -1 for i in order], dtype=np.int64)
    return names, parents, rest[order], heads[order], tails[order], mw


def _copies(c, tgt) -> bool:
    if c.type not in ('COPY_TRANSFORMS', 'COPY_ROTATION') or c.mute or not getattr(c, "enabled", True):
        return False
    target = getattr(c, "target", None)       # the evaluated rig's constraints name the evaluated rig
    if target is None or target.name != tgt.name:
        return False
    if c.type == 'COPY_ROTATION' and (c.target_space != 'WORLD' or c.owner_space != 'WORLD'
                                      or getattr(c, "mix_mode", 'REPLACE') != 'REPLACE'
                                      or not (c.use_x and c.use_y and c.use_z)
                                      or c.invert_x or c.invert_y or c.invert_z):
        return False
    return True


def _descends(parents, i, ancestor) -> bool:
    """Whether bone i has ``ancestor`` above it (or is it)."""
    while i >= 0:
        if i == ancestor:
            return True
        i = parents[i]
    return False


def constraint_driven(tgt, bone_map) -> list:
    """[(bone, constraint type)] of mapped target bones whose rotation an enabled constraint at
    full influence decides (keys on them would be overridden)."""
    out = []
    for name in bone_map.bones.values():
        pb = tgt.pose.bones.get(name)
        if pb is None:
            continue
        for c in pb.constraints:
            if c.type in OVERRIDING and not c.mute and getattr(c, "enabled", True) and c.influence >= 0.999:
                out.append((name, c.type))
                break
    return out


def retarget(src, tgt, bone_map: bm.BoneMap | None = None, report=print,
             plant_feet: bool = True, rigify_ik: bool = False) -> RetargetReport:
    """Key ``tgt`` (an armature) to follow ``src`` (a mocap armature); returns a report.
    plant_feet: turn the rig's legs so feet near the floor land exactly (core.retarget).
    rigify_ik: on a generated Rigify rig, also key the limbs' IK targets from the FK pose and
    switch the limbs to IK (``rigify_ik.py``); needs the FK controls map."""
    if src is tgt:
        raise MocapError("source and target are the same object")
    bone_map = resolve_map(tgt, bone_map)
    driven = constraint_driven(tgt, bone_map)
    if driven:
        shown = ", ".join(f"{b} ({c})" for b, c in driven[:4]) + (" and more" if len(driven) > 4 else "")
        raise MocapError(f"{len(driven)} bones the map '{bone_map.name}' keys on {tgt.name!r} follow "
                         f"constraints, so their keys would not move the rig: {shown}. On a generated "
                         "Rigify rig use the 'Rigify FK controls' preset (DEF- bones copy the ORG- and "
                         "control bones); otherwise map the bones that carry the animation")
    ik_limbs = rigify_ik_bpy.check(tgt, bone_map) if rigify_ik else None    # before anything changes
    frames, source = read_source(src)
    names, parents, rest, heads, tails, mw = follow_copies(tgt, *armature_bpy.rig_rest(tgt))
    target = rt.TargetRig(names=names, parents=parents, rest_rot=rest, heads=heads, tails=tails,
                          object_matrix=mw)
    try:
        res = rt.retarget(source, target, bone_map.bones, bone_map.root, plant_feet=plant_feet)
    except rt.RetargetError as ex:
        raise MocapError(f"retarget failed: {ex}") from ex

    out = RetargetReport(frames=len(frames), bones=list(res.keyed), warnings=list(res.warnings))
    index = {n: i for i, n in enumerate(names)}
    chans = []
    for name in res.keyed:
        t = index[name]
        for i in range(4):
            chans.append(keys_bpy.Channel(f'pose.bones["{name}"].rotation_quaternion', i, frames,
                                          res.local_quat[:, t, i], name))
    if res.root_bone is not None:
        for i in range(3):
            chans.append(keys_bpy.Channel(f'pose.bones["{res.root_bone}"].location', i, frames,
                                          res.root_location[:, i], res.root_bone))

    src_action = src.animation_data.action if src.animation_data else None
    ad = tgt.animation_data
    old_action = ad.action if ad else None
    old_slot = getattr(ad, "action_slot", None) if ad else None
    changed_modes = []
    action = keys_bpy.new_action(f"{src_action.name if src_action else src.name}_to_{tgt.name}")
    try:
        for name in res.keyed:
            pb = tgt.pose.bones[name]
            if pb.rotation_mode != 'QUATERNION':
                changed_modes.append((pb, pb.rotation_mode))
                pb.rotation_mode = 'QUATERNION'
        keys_bpy.write_channels(tgt, action, chans)
        if ik_limbs:
            rigify_ik_bpy.key_ik_targets(tgt, action, frames, ik_limbs)
    except Exception as ex:
        bpy.data.actions.remove(action)
        for pb, mode in changed_modes:
            pb.rotation_mode = mode
        if tgt.animation_data is not None:
            tgt.animation_data.action = old_action
            if old_slot is not None:
                tgt.animation_data.action_slot = old_slot
        if isinstance(ex, MocapError):
            raise
        raise MocapError(f"retarget failed while keying: {type(ex).__name__}: {ex}") from ex
    if old_action is not None:
        old_action.use_fake_user = True
        try:       # also visible in the NLA editor, under the new action (muted)
            layers.stash(tgt, old_action, f"Before retarget: {old_action.name}")
        except (RuntimeError, TypeError) as ex:
            out.warnings.append(f"could not keep {old_action.name!r} on an NLA track: {ex}")
        out.warnings.append(f"{tgt.name!r} had action {old_action.name!r}; kept it (fake user, muted "
                            f"NLA track) and assigned the new action {action.name!r}")
    if changed_modes:
        out.warnings.append(f"set {len(changed_modes)} bones of {tgt.name!r} to quaternion rotation")
    if ik_limbs:
        out.bones += [n for limb in ik_limbs for n in (limb.control, limb.pole)]
        report(f"Rigify limbs on IK: {', '.join(limb.control for limb in ik_limbs)} and their pole targets "
               "keyed, IK_FK = 0, pole targets on, IK chains' stretch 0 so they give the FK pose exactly "
               "(the FK controls are keyed too: IK_FK = 1 shows them)")
    else:
        ik_switches = _switch_rigify_to_fk(tgt, bone_map)
        if ik_switches:
            out.warnings.append(f"switched {ik_switches} Rigify limbs to FK (IK_FK = 1)")
    out.action = action.name
    report(bm.describe(bone_map))
    report(f"retargeted {src.name} -> {tgt.name}: {len(frames)} frames, {len(res.keyed)} bones, "
           f"root scale {res.scale:.3f}, action {action.name!r}")
    for w in out.warnings:
        report(f"WARNING: {w}")
    return out


def _switch_rigify_to_fk(tgt, bone_map) -> int:
    if not any("_fk" in t for t in bone_map.bones.values()):
        return 0
    n = 0
    for pb in tgt.pose.bones:
        if "IK_FK" in pb.keys():
            pb["IK_FK"] = 1.0
            n += 1
    return n
