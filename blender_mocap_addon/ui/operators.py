"""Operators: Convert video (modal, subprocess), Import pose file, Retarget, Export, bone maps.

Each ``execute`` turns properties into options and calls one plain function
(import_posefile.load, retarget_bpy.retarget, export_bpy.export) that raises
MocapError; the operator reports it and returns CANCELLED.
"""
from __future__ import annotations

import os
import sys
import time

import bpy
from bpy_extras.io_utils import ExportHelper, ImportHelper

from ..blender import export as export_bpy, import_posefile, retarget as retarget_bpy
from ..runner import jobs
from . import prefs
from .properties import user_preset_dir
from ..core import bonemap as bm
from ..core import skeleton as sk
from ..errors import MocapError


def _reporter(op):
    def report(msg):
        if msg.startswith("WARNING: "):
            op.report({'WARNING'}, msg[len("WARNING: "):])
        else:
            print(msg)
    return report


def finish_import(op, context, res, pose_path: str, message: str):
    """After an import: the panel remembers the pose file and offers the first armature as the
    retarget source; the operator reports message."""
    s = settings_of(context)
    s.pose_path = pose_path
    if res.armatures:
        s.source_rig = bpy.data.objects.get(res.armatures[0])
    op.report({'INFO'}, message)
    return {'FINISHED'}


def settings_of(context):
    return context.scene.mocap


def import_options_from(s) -> import_posefile.ImportOptions:
    return import_posefile.ImportOptions(smoothing=s.import_smoothing, add_camera=s.add_camera,
                                         video_path=bpy.path.abspath(s.video_path) if s.add_camera else "",
                                         use_floor=s.use_floor, foot_lock=s.foot_lock)


def default_pose_path(video: str) -> str:
    stem, _ = os.path.splitext(video)
    return stem + "_mocap.npz"


# --------------------------------------------------------------------------- convert
class ConvertTask:
    """One video -> pose file -> import, driven by ``step()`` (no bpy event loop needed).

    The job writes to a temporary file beside ``out_path``; only a finished job's
    file is moved into place and imported.  ``cancel()`` stops the process and
    removes the temporary file; nothing in the scene was touched before import.
    """

    def __init__(self, argv_for, out_path, options, cwd=None, report=print):
        folder, name = os.path.split(os.path.abspath(out_path))
        self.out_path = os.path.abspath(out_path)
        self.tmp_path = os.path.join(folder, "." + name + ".part.npz")
        self.job = jobs.Job(argv_for(self.tmp_path), cwd=cwd)
        self.options = options
        self.report = report
        self.result = None

    def start(self):
        try:
            os.makedirs(os.path.dirname(self.out_path), exist_ok=True)
        except OSError as ex:
            raise MocapError(f"cannot create output folder: {ex}") from ex
        self._remove_tmp()
        self.job.start()
        return self

    def step(self) -> str:
        """Poll; on success import and return FINISHED.  Raises MocapError on failure."""
        state = self.job.poll()
        if state == jobs.FAILED:
            self._remove_tmp()
            raise MocapError(f"inference failed: {self.job.error}")
        if state == jobs.FINISHED:
            if not os.path.isfile(self.tmp_path):
                raise MocapError("inference finished but wrote no pose file")
            os.replace(self.tmp_path, self.out_path)
            self.result = import_posefile.load(self.out_path, self.options, report=self.report)
            for w in self.job.warnings:
                self.result.warnings.append(f"inference: {w}")
                self.report(f"WARNING: inference: {w}")
        return state

    def cancel(self):
        self.job.cancel()
        self._remove_tmp()

    def _remove_tmp(self):
        try:
            os.remove(self.tmp_path)
        except OSError:
            pass


def prepare_convert(context, report=print) -> ConvertTask:
    """A ConvertTask from the panel settings and preferences (not started yet).

    Raises MocapError for a missing video or project root.
    """
    s = settings_of(context)
    video = bpy.path.abspath(s.video_path)
    if not video or not os.path.isfile(video):
        raise MocapError(f"video not found: {video or '(none chosen)'}")
    python, root = prefs.resolve_paths(context)
    if root is None:
        raise MocapError("project root (folder with inference/) not found; run install_deps.py in the "
                         "checkout (it records where the engine is) or set it in the add-on preferences")
    out = bpy.path.abspath(s.pose_path) if s.pose_path else default_pose_path(video)
    opts = jobs.InferenceOptions(preset=s.preset.lower(), device=s.device.lower(), runtime=s.runtime.lower(),
                                 max_people=s.max_people, focal=s.focal,
                                 start=s.range_start if s.use_range else None,
                                 end=s.range_end if s.use_range else None, smoothing=s.smoothing)
    return ConvertTask(lambda tmp: jobs.inference_argv(python, video, tmp, opts),
                       out, import_options_from(s), cwd=root, report=report)


class ConvertOperatorBase:
    """What Convert Video and Convert Keypoints share (modal with a timer; EXEC from scripts).
    Not a bpy class itself: a registered operator class must not be subclassed by another
    registered one (Blender then loses the first's Python class: its poll fails)."""
    bl_options = {'REGISTER', 'UNDO'}

    _task = None
    _timer = None
    running = None          # class attribute: the running operator, for the panel
    prepare = staticmethod(prepare_convert)   # context -> ConvertTask (keypoints.py: another source)

    @classmethod
    def poll(cls, context):
        return MOCAP_OT_convert.running is None

    def invoke(self, context, event):
        try:
            self._task = type(self).prepare(context, report=_reporter(self)).start()
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.progress_begin(0, 100)
        wm.modal_handler_add(self)
        MOCAP_OT_convert.running = self
        self._cancel_requested = False
        self._status(context, "Mocap: starting inference (Esc to cancel)")
        return {'RUNNING_MODAL'}

    def execute(self, context):
        """From a script or in background mode (no window to run modal in): convert here and
        now, printing progress, then import. Blocks until inference ends (Ctrl+C cancels)."""
        try:
            task = type(self).prepare(context, report=_reporter(self)).start()
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        shown = None
        try:
            while True:
                state = task.step()
                if state == jobs.FINISHED:
                    break
                line = f"Mocap: {task.job.stage or 'running'} {task.job.fraction * 100:.0f}%"
                if line != shown:
                    print(line, flush=True)
                    shown = line
                time.sleep(0.2)
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        except BaseException:         # Ctrl+C or a bug: stop the engine, leave no partial file
            task.cancel()
            raise
        settings_of(context).pose_path = task.out_path
        r = task.result
        self.report({'INFO'}, f"Imported {len(r.armatures)} people, frames {r.frame_start}-{r.frame_end}")
        return {'FINISHED'}

    def _status(self, context, text):
        ws = getattr(context, "workspace", None)
        if ws is not None:
            ws.status_text_set(text)
        settings_of(context).job_status = text or ""

    def _finish(self, context):
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        self._status(context, None)
        MOCAP_OT_convert.running = None
        for area in context.screen.areas if context.screen else []:
            area.tag_redraw()

    def request_cancel(self):
        self._cancel_requested = True

    def modal(self, context, event):
        if event.type == 'ESC' or self._cancel_requested:
            self._task.cancel()
            self._finish(context)
            self.report({'WARNING'}, "Mocap conversion cancelled; scene unchanged")
            return {'CANCELLED'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        try:
            state = self._task.step()
        except MocapError as ex:
            self._finish(context)
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        job = self._task.job
        context.window_manager.progress_update(int(job.fraction * 100))
        settings_of(context).job_progress = job.fraction
        if state == jobs.FINISHED:
            self._finish(context)
            r = self._task.result
            settings_of(context).pose_path = self._task.out_path
            self.report({'INFO'}, f"Imported {len(r.armatures)} people, frames {r.frame_start}-{r.frame_end}")
            return {'FINISHED'}
        self._status(context, f"Mocap: {job.stage or 'running'} {job.fraction * 100:.0f}%"
                              f"{' - ' + job.message if job.message else ''} (Esc to cancel)")
        return {'PASS_THROUGH'}


class MOCAP_OT_convert(ConvertOperatorBase, bpy.types.Operator):
    """Run video motion capture in a background process, then import the result (Esc cancels)"""
    bl_idname = "mocap.convert"
    bl_label = "Convert Video"


class MOCAP_OT_cancel_convert(bpy.types.Operator):
    """Stop the running conversion; the scene is left as it was"""
    bl_idname = "mocap.cancel_convert"
    bl_label = "Cancel Conversion"

    @classmethod
    def poll(cls, context):
        return MOCAP_OT_convert.running is not None

    def execute(self, context):
        MOCAP_OT_convert.running.request_cancel()
        return {'FINISHED'}


# --------------------------------------------------------------------------- import
class MOCAP_OT_import_posefile(bpy.types.Operator, ImportHelper):
    """Import a video-mocap pose file (.npz): one animated armature per person"""
    bl_idname = "mocap.import_posefile"
    bl_label = "Import Video Mocap"
    bl_options = {'REGISTER', 'UNDO'}

    filename_ext = ".npz"
    filter_glob: bpy.props.StringProperty(default="*.npz", options={'HIDDEN'})
    smoothing: bpy.props.FloatProperty(name="Smoothing", min=0.0, max=20.0, default=0.0,
                                       description="Gaussian smoothing of joints over time (sigma, frames)")
    frame_offset: bpy.props.IntProperty(name="Start Frame", default=1,
                                        description="Scene frame of the pose file's first frame")
    set_scene: bpy.props.BoolProperty(name="Set Scene FPS and Range", default=True)
    add_camera: bpy.props.BoolProperty(name="Add Camera", default=False)
    use_floor: bpy.props.BoolProperty(name="Use Floor", default=True,
                                      description="When the file has a floor: import onto it (ground plane, "
                                                  "camera at its height and tilt, feet on the floor)")
    foot_lock: bpy.props.BoolProperty(name="Lock Feet", default=True,
                                      description="Keep a foot still while the file says it is on the floor")
    video_path: bpy.props.StringProperty(name="Background Video", subtype='FILE_PATH', default="")

    def execute(self, context):
        opts = import_posefile.ImportOptions(smoothing=self.smoothing, frame_offset=self.frame_offset,
                                             set_scene=self.set_scene, add_camera=self.add_camera,
                                             video_path=bpy.path.abspath(self.video_path),
                                             use_floor=self.use_floor, foot_lock=self.foot_lock)
        try:
            res = import_posefile.load(self.filepath, opts, report=_reporter(self))
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        return finish_import(self, context, res, self.filepath,
                             f"Imported {len(res.armatures)} people ({res.keys} keys); {res.floor_note}")


class MOCAP_OT_import_from_panel(bpy.types.Operator):
    """Import the pose file chosen in the Mocap panel"""
    bl_idname = "mocap.import_from_panel"
    bl_label = "Import Pose File"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        s = settings_of(context)
        try:
            res = import_posefile.load(bpy.path.abspath(s.pose_path), import_options_from(s),
                                       report=_reporter(self))
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        if res.armatures:
            s.source_rig = bpy.data.objects.get(res.armatures[0])
        self.report({'INFO'}, f"Imported {len(res.armatures)} people; {res.floor_note}")
        return {'FINISHED'}


def menu_import(self, context):
    self.layout.operator(MOCAP_OT_import_posefile.bl_idname, text="Video motion capture (.npz)")


# --------------------------------------------------------------------------- bone map
def bone_map_from_settings(s) -> bm.BoneMap | None:
    """The panel's editable map (None when empty: retarget then picks a preset)."""
    bones = {it.source: it.target for it in s.bone_map if it.target}
    if not bones:
        return None
    root = s.bone_map_root or bones.get(sk.ROOT_BONE)
    return bm.BoneMap("Panel", bones, root=root)


def fill_settings_map(s, bone_map: bm.BoneMap):
    s.bone_map.clear()
    for name in sk.BONE_NAMES:
        it = s.bone_map.add()
        it.source = name
        it.target = bone_map.bones.get(name, "")
    s.bone_map_root = bone_map.root or ""


class MOCAP_OT_bonemap_fill(bpy.types.Operator):
    """Fill the bone map from the chosen preset (Auto: best preset or name matching)"""
    bl_idname = "mocap.bonemap_fill"
    bl_label = "Fill Bone Map"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        s = settings_of(context)
        tgt = s.target_rig
        try:
            if s.bonemap_preset == 'AUTO':
                if tgt is None:
                    raise MocapError("choose a target rig first")
                m = bm.best_map([b.name for b in tgt.data.bones])
            elif s.bonemap_preset.startswith("USER:"):
                m = bm.load_json(s.bonemap_preset[len("USER:"):])
            else:
                m = bm.preset(s.bonemap_preset)
        except (MocapError, bm.BoneMapError) as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        fill_settings_map(s, m)
        if tgt is not None:
            missing = m.missing([b.name for b in tgt.data.bones])
            if missing:
                self.report({'WARNING'}, f"{len(missing)} mapped bones are not in {tgt.name}: "
                                         f"{', '.join(missing[:5])}")
        self.report({'INFO'}, f"Bone map: {m.name} ({len(m.bones)} bones)")
        return {'FINISHED'}


class MOCAP_OT_bonemap_save(bpy.types.Operator, ExportHelper):
    """Save the bone map as a JSON preset"""
    bl_idname = "mocap.bonemap_save"
    bl_label = "Save Bone Map"
    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={'HIDDEN'})

    def invoke(self, context, event):
        if not self.filepath:
            self.filepath = os.path.join(user_preset_dir(), "my_rig.json")
        context.window_manager.fileselect_add(self)
        return {'RUNNING_MODAL'}

    def execute(self, context):
        m = bone_map_from_settings(settings_of(context))
        try:
            if m is None:
                raise MocapError("the bone map is empty")
            m.name = os.path.splitext(os.path.basename(self.filepath))[0]
            bm.save_json(self.filepath, m)
        except (MocapError, bm.BoneMapError) as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        self.report({'INFO'}, f"Saved {self.filepath}")
        return {'FINISHED'}


class MOCAP_OT_bonemap_load(bpy.types.Operator, ImportHelper):
    """Load a JSON bone-map preset"""
    bl_idname = "mocap.bonemap_load"
    bl_label = "Load Bone Map"
    bl_options = {'REGISTER', 'UNDO'}
    filename_ext = ".json"
    filter_glob: bpy.props.StringProperty(default="*.json", options={'HIDDEN'})

    def execute(self, context):
        try:
            m = bm.load_json(self.filepath)
        except bm.BoneMapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        fill_settings_map(settings_of(context), m)
        return {'FINISHED'}


# --------------------------------------------------------------------------- retarget / export
def _source_rig(context):
    s = settings_of(context)
    ob = context.active_object
    if retarget_bpy.is_mocap_armature(ob):
        return ob
    return s.source_rig


class MOCAP_OT_retarget(bpy.types.Operator):
    """Retarget the mocap armature's motion onto the target rig (new action)"""
    bl_idname = "mocap.retarget"
    bl_label = "Retarget"
    bl_options = {'REGISTER', 'UNDO'}

    def execute(self, context):
        s = settings_of(context)
        try:
            src = _source_rig(context)
            if src is None:
                raise MocapError("select a mocap armature (Mocap_P*) or set the source in the panel")
            r = retarget_bpy.retarget(src, s.target_rig, bone_map_from_settings(s),
                                      report=_reporter(self), plant_feet=s.foot_lock,
                                      rigify_ik=s.rigify_limbs == 'IK' and s.target_rig is not None
                                      and "hand_ik.L" in s.target_rig.data.bones)   # as the panel shows it
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        self.report({'INFO'}, f"Retargeted {r.frames} frames onto {len(r.bones)} bones: {r.action}")
        return {'FINISHED'}


class MOCAP_OT_export(bpy.types.Operator):
    """Export the selected mocap armatures (all of them if none is selected)"""
    bl_idname = "mocap.export"
    bl_label = "Export"

    def execute(self, context):
        s = settings_of(context)
        objs = [o for o in context.selected_objects if o.type == 'ARMATURE']
        if not objs:
            objs = [o for o in context.scene.objects if retarget_bpy.is_mocap_armature(o)]
        path = bpy.path.abspath(s.export_path)
        fmt = s.export_format.lower()
        try:
            if not s.export_path:
                raise MocapError("choose an export file")
            if not path.lower().endswith("." + fmt):
                path += "." + fmt
            written = export_bpy.export(objs, path, fmt, report=_reporter(self))
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        self.report({'INFO'}, f"Wrote {len(written)} file(s)")
        return {'FINISHED'}


# --------------------------------------------------------------------------- dependencies
class MOCAP_OT_check_dependencies(bpy.types.Operator):
    """Run install_deps.py (dry run, or install) for the configured Python and this Blender,
    in a background process, and show what is missing"""
    bl_idname = "mocap.check_dependencies"
    bl_label = "Check Dependencies"

    install: bpy.props.BoolProperty(name="Install", default=False,
                                    description="Install what is missing instead of only listing it")
    _job = None
    _timer = None

    def invoke(self, context, event):
        python, root = prefs.resolve_paths(context)
        p = prefs.get_prefs(context)
        try:
            if root is None or not os.path.isfile(os.path.join(root, "install_deps.py")):
                raise MocapError("install_deps.py not found; set the project root in the preferences")
            runner = python if os.path.isfile(python) else sys.executable
            argv = jobs.install_deps_argv(runner, root, bpy.app.binary_path or None, self.install)
            self._job = jobs.Job(argv, cwd=root).start()
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        if p is not None:
            p.deps_report = f"running {os.path.basename(python)} install_deps.py --blender ..."
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.5, window=context.window)
        wm.modal_handler_add(self)
        return {'RUNNING_MODAL'}

    def modal(self, context, event):
        if event.type == 'ESC':
            self._job.cancel()
            self._end(context, "cancelled")
            return {'CANCELLED'}
        if event.type != 'TIMER':
            return {'PASS_THROUGH'}
        state = self._job.poll()
        if state == jobs.RUNNING:
            return {'PASS_THROUGH'}
        lines = list(self._job.log) + list(self._job.stderr_tail)
        missing = jobs.missing_from_install_log(lines)
        summary = ("OK: all dependencies present" if state == jobs.FINISHED and not missing
                   else f"{state}: " + ("; ".join(missing) if missing else self._job.error))
        self._end(context, "\n".join(lines[-12:] + [summary]))
        self.report({'INFO'} if state == jobs.FINISHED else {'ERROR'}, summary[:200])
        return {'FINISHED'} if state == jobs.FINISHED else {'CANCELLED'}

    def _end(self, context, text):
        context.window_manager.event_timer_remove(self._timer)
        p = prefs.get_prefs(context)
        if p is not None:
            p.deps_report = text
