"""Export mocap armatures: BVH (one file per armature), FBX, glTF binary (thin bpy glue).

Uses Blender's bundled exporters (io_anim_bvh, io_scene_fbx, io_scene_gltf2),
enabling them if needed.  ``export(objects, path, fmt)`` returns the files written.
"""
from __future__ import annotations

import os

import bpy

from . import keys as keys_bpy
from ..errors import MocapError

FORMATS = ("bvh", "fbx", "glb")
_MODULES = {"bvh": "io_anim_bvh", "fbx": "io_scene_fbx", "glb": "io_scene_gltf2"}


def _ensure_exporter(fmt):
    ops = {"bvh": (bpy.ops.export_anim, "bvh"), "fbx": (bpy.ops.export_scene, "fbx"),
           "glb": (bpy.ops.export_scene, "gltf")}[fmt]
    if hasattr(ops[0], ops[1]):
        try:
            getattr(ops[0], ops[1]).get_rna_type()
            return getattr(ops[0], ops[1])
        except (KeyError, AttributeError):
            pass
    import addon_utils
    addon_utils.enable(_MODULES[fmt], default_set=True)
    return getattr(ops[0], ops[1])


def _frame_range(objects, scene):
    lo, hi = None, None
    for ob in objects:
        rng = keys_bpy.motion_frame_range(ob)     # the person's track, not its visibility keys
        if rng is not None:
            a, b = rng
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    if lo is None:
        return scene.frame_start, scene.frame_end
    return int(lo), int(hi)


def _show_all(objects) -> list:
    """Mute the keyed visibility of ``objects`` and show them (a hidden object cannot be
    selected, and the exporters take the selection). Returns the muted F-curves."""
    muted = []
    for ob in objects:
        for fc in keys_bpy.fcurves_of(ob):
            if fc.data_path in ("hide_viewport", "hide_render") and not fc.mute:
                fc.mute = True
                muted.append(fc)
        ob.hide_viewport = ob.hide_render = False
    return muted


def _select_only(objects, scene):
    vl = bpy.context.view_layer
    for ob in vl.objects:
        ob.select_set(False)
    for ob in objects:
        ob.select_set(True)
    vl.objects.active = objects[0]


def export(objects, path: str, fmt: str, scene=None, report=print) -> list:
    """Write ``objects`` (armatures) to ``path`` in ``fmt``; returns the paths written.

    BVH holds one skeleton, so with several armatures each goes to
    ``<stem>_<object name>.bvh``.
    """
    scene = scene or bpy.context.scene
    fmt = fmt.lower().lstrip(".")
    if fmt not in FORMATS:
        raise MocapError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    objects = [ob for ob in objects if ob is not None and ob.type == 'ARMATURE']
    if not objects:
        raise MocapError("nothing to export: no armature given")
    folder = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as ex:
        raise MocapError(f"cannot create {folder}: {ex}") from ex
    op = _ensure_exporter(fmt)
    if bpy.context.view_layer.objects.active and bpy.context.view_layer.objects.active.mode != 'OBJECT':
        bpy.ops.object.mode_set(mode='OBJECT')
    written = []
    fs, fe = _frame_range(objects, scene)
    shown = _show_all(objects)
    vl = bpy.context.view_layer
    prev_active = vl.objects.active
    prev_selected = [o for o in vl.objects if o.select_get()]
    try:
        if fmt == "bvh":
            stem, _ = os.path.splitext(path)
            for ob in objects:
                out = path if len(objects) == 1 else f"{stem}_{bpy.path.clean_name(ob.name)}.bvh"
                _select_only([ob], scene)
                with bpy.context.temp_override(active_object=ob, object=ob, selected_objects=[ob]):
                    op(filepath=out, frame_start=fs, frame_end=fe, rotate_mode='NATIVE',
                       root_transform_only=False)
                written.append(out)
        elif fmt == "fbx":
            _select_only(objects, scene)
            op(filepath=path, use_selection=True, object_types={'ARMATURE'}, add_leaf_bones=False,
               bake_anim=True, bake_anim_use_all_actions=False, bake_anim_use_nla_strips=False,
               bake_anim_simplify_factor=0.0)
            written.append(path)
        else:
            _select_only(objects, scene)
            op(filepath=path, export_format='GLB', use_selection=True, export_animations=True)
            written.append(path)
    except RuntimeError as ex:
        raise MocapError(f"{fmt.upper()} export to {path} failed: {ex}") from ex
    finally:   # give the user back their selection and the keyed visibility
        for fc in shown:
            fc.mute = False
        scene.frame_set(scene.frame_current)
        for ob in vl.objects:
            ob.select_set(ob in prev_selected)
        vl.objects.active = prev_active
    for out in written:
        if not os.path.isfile(out):
            raise MocapError(f"{fmt.upper()} exporter wrote nothing to {out}")
        report(f"wrote {out}")
    return written
