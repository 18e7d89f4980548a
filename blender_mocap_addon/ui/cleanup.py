"""The "Clean Up" sub-panel: key reduction onto a new action, the raw capture kept as a muted
NLA strip (``blender/layers.py``)."""
from __future__ import annotations

import bpy

from ..blender import layers
from ..errors import MocapError


def _targets(context) -> list:
    obs = [o for o in (context.selected_objects or []) if o.type == 'ARMATURE']
    ob = context.active_object
    if ob is not None and ob.type == 'ARMATURE' and ob not in obs:
        obs.append(ob)
    return obs


class MOCAP_OT_reduce_keys(bpy.types.Operator):
    """Keep keys only where the motion departs from a straight line between keys by more than
    the tolerances, in a new action; the capture stays as a muted NLA strip"""
    bl_idname = "mocap.reduce_keys"
    bl_label = "Reduce Keys"
    bl_options = {'REGISTER', 'UNDO'}

    tolerance_deg: bpy.props.FloatProperty(name="Rotation (deg)", default=0.5, min=0.001, max=45.0)
    tolerance_mm: bpy.props.FloatProperty(name="Location (mm)", default=2.0, min=0.001, max=1000.0)

    def execute(self, context):
        obs = _targets(context)
        if not obs:
            self.report({'ERROR'}, "select the armatures to reduce")
            return {'CANCELLED'}
        try:
            for ob in obs:
                before, after, name = layers.reduce_keys(ob, self.tolerance_deg, self.tolerance_mm)
                self.report({'INFO'}, f"{ob.name}: {before} -> {after} pose keys in {name!r} "
                                      f"(raw capture on NLA track {layers.RAW_TRACK!r})")
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        return {'FINISHED'}


class MOCAP_PT_cleanup(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"
    bl_label = "Clean Up"
    bl_parent_id = "MOCAP_PT_convert"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        self.layout.operator("mocap.reduce_keys", icon='ACTION')


CLASSES = (MOCAP_OT_reduce_keys, MOCAP_PT_cleanup)
