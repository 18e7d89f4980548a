"""Build one mocap armature from a rest skeleton (thin bpy glue)."""
from __future__ import annotations

import bpy
import numpy as np

from ..core import skeleton as sk


def ensure_object_mode():
    obj = bpy.context.view_layer.objects.active if bpy.context.view_layer else None
    if obj is not None and obj.mode != 'OBJECT':
        bpy.ops.object.mode_set(mode='OBJECT')


def build_armature(name: str, rest: sk.RestSkeleton, collection):
    """One armature; see :func:`build_armatures`."""
    return build_armatures([(name, rest)], collection)[0]


def build_armatures(specs, collection) -> list:
    """Create one armature object per (name, RestSkeleton) in ``collection``.

    Names are suffixed by Blender if taken.  Bones follow skeleton.BONES:
    heads/tails from the rest skeleton, roll so the bone's local X is ``rest_x``,
    rotation mode quaternion.  All armatures are edited in one multi-object
    edit-mode session (each mode switch updates the whole view layer).
    Returns the objects, in order.
    """
    ensure_object_mode()
    vl = bpy.context.view_layer
    prev_active = vl.objects.active
    prev_selected = [o for o in vl.objects if o.select_get()]
    objs = []
    for name, _ in specs:
        arm = bpy.data.armatures.new(name)
        obj = bpy.data.objects.new(name, arm)
        collection.objects.link(obj)
        objs.append(obj)
    try:
        for o in prev_selected:
            o.select_set(False)
        for o in objs:
            o.select_set(True)
        vl.objects.active = objs[0]
        bpy.ops.object.mode_set(mode='EDIT')
        for obj, (_, rest) in zip(objs, specs):
            ebs = {}
            arm = obj.data
            for i, b in enumerate(sk.BONES):
                eb = arm.edit_bones.new(b.name)
                eb.head = rest.heads[i].tolist()
                eb.tail = rest.tails[i].tolist()
                eb.align_roll(rest.frames[i][:, 2].tolist())   # local Z = x cross dir
                if b.parent:
                    eb.parent = ebs[b.parent]
                    eb.use_connect = bool(np.allclose(ebs[b.parent].tail, eb.head, atol=1e-6))
                ebs[b.name] = eb
        bpy.ops.object.mode_set(mode='OBJECT')
    finally:
        for o in objs:
            o.select_set(False)
        for o in prev_selected:
            if o.name in vl.objects:
                o.select_set(True)
        vl.objects.active = prev_active if prev_active is not None else objs[0]
    for obj in objs:
        for pb in obj.pose.bones:
            pb.rotation_mode = 'QUATERNION'
        obj.data.display_type = 'STICK'
        obj.show_in_front = True
    return objs


def bone_rest_rotations(obj, names) -> np.ndarray:
    """(B, 3, 3) rotation part of ``bone.matrix_local`` for ``names`` (armature space),
    made exactly orthonormal (Blender stores float32)."""
    out = np.empty((len(names), 3, 3))
    for i, n in enumerate(names):
        m = obj.data.bones[n].matrix_local
        out[i] = np.array([[m[r][c] for c in range(3)] for r in range(3)])
    u, _, vt = np.linalg.svd(out)
    return u @ vt


def rig_rest(obj):
    """Target-rig rest pose: (names, parents (B,), rest_rot (B,3,3), heads (B,3), tails (B,3), world (4,4)).

    Bones in the armature's order (Blender keeps parents before children).
    """
    bones = list(obj.data.bones)
    names = [b.name for b in bones]
    index = {n: i for i, n in enumerate(names)}
    # Blender lists bones parents-first; sort defensively anyway
    order, seen = [], set()

    def visit(b):
        if b.name in seen:
            return
        if b.parent is not None:
            visit(b.parent)
        seen.add(b.name)
        order.append(b)
    for b in bones:
        visit(b)
    names = [b.name for b in order]
    index = {n: i for i, n in enumerate(names)}
    parents = np.array([index[b.parent.name] if b.parent else -1 for b in order], dtype=np.int64)
    rest = bone_rest_rotations(obj, names)
    heads = np.array([b.head_local[:] for b in order], dtype=np.float64).reshape(-1, 3)
    tails = np.array([b.tail_local[:] for b in order], dtype=np.float64).reshape(-1, 3)
    mw = np.array([[obj.matrix_world[r][c] for c in range(4)] for r in range(4)])
    return names, parents, rest, heads, tails, mw
