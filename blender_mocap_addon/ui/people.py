"""The "People" sub-panel and its track-edit operators: delete, merge, split, swap left/right,
take back the last edit, save the edit list for batch ``--edits``. Each operator calls
``track_edit_bpy`` (edit the take's stored pose data, re-solve its armatures); they are
undoable (the data and the armatures are scene data)."""
from __future__ import annotations

import json

import bpy
from bpy_extras.io_utils import ExportHelper

from ..blender import take_store, track_edit_bpy
from ..errors import MocapError

_OPS = [('DELETE', "Delete", "Remove this person"),
        ('MERGE', "Merge", "Join another person's frames into this one (one ends, the other starts)"),
        ('SPLIT', "Split", "Frames from the current frame on become a new person"),
        ('SWAP', "Swap L/R", "Exchange left and right joints over a frame range"),
        ('UNDO', "Take Back", "Take back the last track edit (from the stored original data)")]


def _edit_dict(op: str, person: int, other: int, frame: int, start: int, end: int) -> dict:
    """The core/track_edit dict; frames are pose-file frames here."""
    if op == 'DELETE':
        return {"op": "delete", "person": person}
    if op == 'MERGE':
        return {"op": "merge", "person": person, "with": other}
    if op == 'SPLIT':
        return {"op": "split", "person": person, "frame": frame}
    return {"op": "swap_sides", "person": person, "start": start, "end": end}


class MOCAP_OT_track_edit(bpy.types.Operator):
    """Edit a captured person's track and re-solve the armatures"""
    bl_idname = "mocap.track_edit"
    bl_label = "Track Edit"
    bl_options = {'REGISTER', 'UNDO'}

    op: bpy.props.EnumProperty(name="Edit", items=_OPS)
    take: bpy.props.StringProperty(name="Take", description="Stored pose data (empty: the active armature's)")
    person: bpy.props.IntProperty(name="Person", description="Person id")
    other: bpy.props.IntProperty(name="With", description="Person id merged into Person")
    frame: bpy.props.IntProperty(name="Frame", default=-1, description="Scene frame to split at (-1: current)")
    start: bpy.props.IntProperty(name="Start", description="First scene frame to swap")
    end: bpy.props.IntProperty(name="End", description="Last scene frame to swap")

    @classmethod
    def description(cls, context, props):
        return dict((k, d) for k, _, d in _OPS).get(props.op, cls.__doc__)

    def invoke(self, context, event):
        if self.op in {'MERGE', 'SWAP'}:
            if self.op == 'SWAP' and self.end <= self.start:
                self.start = context.scene.frame_current
                self.end = self.start + 10
            return context.window_manager.invoke_props_dialog(self)
        return self.execute(context)

    def draw(self, context):
        col = self.layout.column()
        col.prop(self, "person")
        if self.op == 'MERGE':
            col.prop(self, "other")
        else:
            col.prop(self, "start")
            col.prop(self, "end")

    def execute(self, context):
        scene = context.scene
        take = self.take or track_edit_bpy.take_of(context)
        if not take:
            self.report({'ERROR'}, "no imported pose data in this scene (import a pose file first)")
            return {'CANCELLED'}
        try:
            if self.op == 'UNDO':
                track_edit_bpy.undo_last(scene, take, report=lambda m: self.report({'INFO'}, m))
                return {'FINISHED'}
            off = int(json.loads(scene[take_store.KEY][take]["options"]).get("frame_offset", 1))
            frame = (scene.frame_current if self.frame < 0 else self.frame) - off
            edit = _edit_dict(self.op, self.person, self.other, frame, self.start - off, self.end - off)
            track_edit_bpy.apply_edits(scene, take, [edit], report=lambda m: self.report({'INFO'}, m))
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        return {'FINISHED'}


class MOCAP_OT_save_edits(bpy.types.Operator, ExportHelper):
    """Save the take's track edits as a JSON edit list (batch --edits)"""
    bl_idname = "mocap.save_edits"
    bl_label = "Save Edit List"
    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={'HIDDEN'})
    take: bpy.props.StringProperty(name="Take")

    def execute(self, context):
        take = self.take or track_edit_bpy.take_of(context)
        edits = take_store.edits(context.scene, take) if take else []
        try:
            with open(self.filepath, "w", encoding="utf-8") as fh:
                json.dump({"edits": edits}, fh, indent=1)
        except OSError as ex:
            self.report({'ERROR'}, f"cannot write {self.filepath}: {ex}")
            return {'CANCELLED'}
        self.report({'INFO'}, f"{len(edits)} edits -> {self.filepath}")
        return {'FINISHED'}


class MOCAP_PT_people(bpy.types.Panel):
    bl_space_type = 'VIEW_3D'
    bl_region_type = 'UI'
    bl_category = "Mocap"
    bl_label = "People"
    bl_parent_id = "MOCAP_PT_convert"

    def draw(self, context):
        layout = self.layout
        take = track_edit_bpy.take_of(context)
        if not take:
            layout.label(text="Import a pose file to edit its people")
            return
        layout.label(text=f"Take: {take}", icon='ARMATURE_DATA')
        for pid, a, b, c in take_store.people(context.scene, take):
            row = layout.row(align=True)
            row.label(text=f"P{pid}  {a}-{b}  conf {c:.2f}")
            for op, icon in (('SPLIT', 'SCULPTMODE_HLT'), ('MERGE', 'AUTOMERGE_OFF'),
                             ('SWAP', 'ARROW_LEFTRIGHT'), ('DELETE', 'X')):
                props = row.operator("mocap.track_edit", text="", icon=icon)
                props.op, props.take, props.person = op, take, pid
        n = len(take_store.edits(context.scene, take))
        row = layout.row(align=True)
        props = row.operator("mocap.track_edit", text=f"Take Back ({n} edits)", icon='LOOP_BACK')
        props.op, props.take = 'UNDO', take
        row.enabled = n > 0
        layout.operator("mocap.save_edits", icon='FILE_TICK').take = take


CLASSES = (MOCAP_OT_track_edit, MOCAP_OT_save_edits, MOCAP_PT_people)
