"""3D Viewport > Sidebar (N) > Mocap: the panels. They read ``scene.mocap`` (``properties``)
and start operators by id; the one thing taken from ``operators`` is whether a convert runs."""
from __future__ import annotations

import bpy

from .operators import MOCAP_OT_convert


class MOCAP_UL_bonemap(bpy.types.UIList):
    def draw_item(self, context, layout, data, item, icon, active_data, active_propname, index):
        row = layout.split(factor=0.4)
        row.label(text=item.source, icon='BONE_DATA')
        tgt = context.scene.mocap.target_rig
        if tgt is not None:
            row.prop_search(item, "target", tgt.data, "bones", text="")
        else:
            row.prop(item, "target", text="")


class _Base:
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"


class MOCAP_PT_convert(_Base, bpy.types.Panel):
    bl_label = "Video Mocap"

    def draw(self, context):
        s = context.scene.mocap
        layout = self.layout
        layout.prop(s, "video_path")
        col = layout.column(align=True)
        col.prop(s, "preset")
        col.prop(s, "device")
        col.prop(s, "runtime")
        col.prop(s, "max_people")
        col.prop(s, "focal")
        row = layout.row(align=True)
        row.prop(s, "use_range")
        sub = row.row(align=True)
        sub.enabled = s.use_range
        sub.prop(s, "range_start")
        sub.prop(s, "range_end")
        layout.prop(s, "smoothing")
        layout.prop(s, "add_camera")
        if MOCAP_OT_convert.running is None:
            layout.operator("mocap.convert", icon='PLAY')
        else:
            layout.label(text=s.job_status or "Converting...")
            layout.prop(s, "job_progress", text="Progress", slider=True)
            layout.operator("mocap.cancel_convert", icon='CANCEL')
        box = layout.box()          # another detector's 2D (docs/keypoints.md)
        box.prop(s, "keypoints_path")
        if s.keypoints_path:
            box.prop(s, "keypoints_format")
            row = box.row(align=True)
            row.prop(s, "keypoints_fps")
            row.prop(s, "keypoints_width")
            row.prop(s, "keypoints_height")
            if MOCAP_OT_convert.running is None:
                box.operator("mocap.convert_keypoints", icon='PLAY')
        layout.separator()
        layout.prop(s, "pose_path")
        layout.prop(s, "import_smoothing")
        row = layout.row(align=True)
        row.prop(s, "use_floor")
        row.prop(s, "foot_lock")
        layout.operator("mocap.import_from_panel", icon='IMPORT')


class MOCAP_PT_retarget(_Base, bpy.types.Panel):
    bl_label = "Retarget"
    bl_parent_id = "MOCAP_PT_convert"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        s = context.scene.mocap
        layout = self.layout
        layout.prop(s, "source_rig")
        layout.prop(s, "target_rig")
        row = layout.row(align=True)
        row.prop(s, "bonemap_preset", text="")
        row.operator("mocap.bonemap_fill", text="", icon='FILE_REFRESH')
        row.operator("mocap.bonemap_load", text="", icon='FILEBROWSER')
        row.operator("mocap.bonemap_save", text="", icon='FILE_TICK')
        layout.template_list("MOCAP_UL_bonemap", "", s, "bone_map", s, "bone_map_index", rows=6)
        if s.target_rig is not None:
            layout.prop_search(s, "bone_map_root", s.target_rig.data, "bones")
            if "hand_ik.L" in s.target_rig.data.bones:     # a generated Rigify rig: FK or IK
                layout.prop(s, "rigify_limbs", expand=True)
        else:
            layout.prop(s, "bone_map_root")
        layout.operator("mocap.retarget", icon='ARMATURE_DATA')


class MOCAP_PT_export(_Base, bpy.types.Panel):
    bl_label = "Export"
    bl_parent_id = "MOCAP_PT_convert"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        s = context.scene.mocap
        layout = self.layout
        layout.prop(s, "export_format")
        layout.prop(s, "export_path")
        layout.operator("mocap.export", icon='EXPORT')
