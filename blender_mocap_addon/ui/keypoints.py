"""Keypoint files (another detector's 2D: OpenPose JSON, COCO results, tables) into armatures.

Like Convert, the engine runs in a subprocess (``python -m inference --keypoints``; the add-on
never imports it), writes a pose file beside the keypoints and the result is imported. File >
Import runs it to the end at once (a keypoint run only lifts: seconds); the panel's button runs
it like Convert (modal, Esc cancels). docs/keypoints.md lists the formats.
"""
from __future__ import annotations

import os
import re
import time

import bpy
from bpy_extras.io_utils import ImportHelper

from ..blender import import_posefile
from ..errors import MocapError
from ..runner import jobs
from . import prefs
from .operators import _reporter, ConvertOperatorBase, ConvertTask, finish_import, import_options_from, settings_of

FORMAT_ITEMS = [('AUTO', "Auto", "From the path and contents"),
                ('OPENPOSE', "OpenPose", "Per-frame *_keypoints.json (BODY_25 or COCO-18)"),
                ('COCO', "COCO Results", "COCO keypoint results JSON (MMPose, Detectron2, YOLO-pose)"),
                ('TABLE', "Table", ".npz / .csv of frame, person, joint, x, y, score")]
_OPENPOSE = re.compile(r"_keypoints\.json$", re.IGNORECASE)


def keypoint_source(path: str) -> str:
    """What the engine reads for a chosen file: an OpenPose frame's whole folder, else the file."""
    if os.path.isfile(path) and _OPENPOSE.search(path):
        return os.path.dirname(os.path.abspath(path))
    return path


def default_pose_path(source: str) -> str:
    return os.path.splitext(os.path.normpath(source))[0] + "_mocap.npz"


def prepare_keypoints(context, path: str, options: jobs.KeypointJobOptions, import_options,
                      report=print) -> ConvertTask:
    """A ConvertTask (not started) that runs the engine on a keypoint file and imports the result.
    Raises MocapError for a missing file or project root."""
    source = keypoint_source(path)
    if not source or not os.path.exists(source):
        raise MocapError(f"keypoint file not found: {source or '(none chosen)'}")
    python, root = prefs.resolve_paths(context)
    if root is None:
        raise MocapError("project root (folder with inference/) not found; set it in the add-on preferences")
    return ConvertTask(lambda tmp: jobs.keypoints_argv(python, source, tmp, options),
                       default_pose_path(source), import_options, cwd=root, report=report)


def run_to_end(task: ConvertTask, timeout_s: float = 600.0):
    """Start the task and poll it until the pose file is imported; MocapError when the engine
    fails (its message) or takes longer than timeout_s (stopped, nothing imported)."""
    task.start()
    t0 = time.monotonic()
    while task.step() != jobs.FINISHED:
        if time.monotonic() - t0 > timeout_s:
            task.cancel()
            raise MocapError(f"the keypoint run took longer than {timeout_s:.0f} s; stopped")
        time.sleep(0.05)
    return task.result


class MOCAP_OT_import_keypoints(bpy.types.Operator, ImportHelper):
    """Import another detector's 2D keypoints (OpenPose JSON, COCO results, .npz/.csv table): the
    engine lifts them to 3D in a background process, then one armature per person is imported"""
    bl_idname = "mocap.import_keypoints"
    bl_label = "Import 2D Keypoints"
    bl_options = {'REGISTER', 'UNDO'}

    filter_glob: bpy.props.StringProperty(default="*.json;*.npz;*.csv", options={'HIDDEN'})
    format: bpy.props.EnumProperty(name="Format", items=FORMAT_ITEMS, default='AUTO')
    video_path: bpy.props.StringProperty(name="Video", subtype='FILE_PATH', default="",
                                         description="The clip the keypoints came from (size, frame rate, "
                                                     "frame count; camera background); optional")
    fps: bpy.props.FloatProperty(name="Frame Rate", min=0.0, default=0.0,
                                 description="Frames per second when neither the video nor the file says")
    image_width: bpy.props.IntProperty(name="Width (px)", min=0, default=0,
                                       description="Picture width when neither the video nor the file says")
    image_height: bpy.props.IntProperty(name="Height (px)", min=0, default=0,
                                        description="Picture height when neither the video nor the file says")
    use_floor: bpy.props.BoolProperty(name="Use Floor", default=True)
    foot_lock: bpy.props.BoolProperty(name="Lock Feet", default=True)

    def execute(self, context):
        video = bpy.path.abspath(self.video_path) if self.video_path else ""
        opts = jobs.KeypointJobOptions(video=video, fps=self.fps, width=self.image_width,
                                       height=self.image_height, format=self.format.lower())
        imp = import_posefile.ImportOptions(add_camera=bool(video), video_path=video,
                                            use_floor=self.use_floor, foot_lock=self.foot_lock)
        try:
            task = prepare_keypoints(context, self.filepath, opts, imp, report=_reporter(self))
            res = run_to_end(task)
        except MocapError as ex:
            self.report({'ERROR'}, str(ex))
            return {'CANCELLED'}
        return finish_import(self, context, res, task.out_path,
                             f"Imported {len(res.armatures)} people from keypoints; {res.floor_note}")


def _panel_task(context, report=print) -> ConvertTask:
    s = settings_of(context)
    video = bpy.path.abspath(s.video_path) if s.video_path else ""
    opts = jobs.KeypointJobOptions(video=video if os.path.isfile(video) else "", fps=s.keypoints_fps,
                                   width=s.keypoints_width, height=s.keypoints_height,
                                   format=s.keypoints_format.lower(), smoothing=s.smoothing,
                                   max_people=s.max_people)
    return prepare_keypoints(context, bpy.path.abspath(s.keypoints_path), opts, import_options_from(s),
                             report=report)


class MOCAP_OT_convert_keypoints(ConvertOperatorBase, bpy.types.Operator):
    """Lift the panel's keypoint file to 3D in a background process, then import it (Esc cancels)"""
    bl_idname = "mocap.convert_keypoints"
    bl_label = "Convert Keypoints"

    prepare = staticmethod(_panel_task)


def menu_import(self, context):
    self.layout.operator(MOCAP_OT_import_keypoints.bl_idname, text="2D keypoints to video mocap (.json/.npz/.csv)")


CLASSES = (MOCAP_OT_import_keypoints, MOCAP_OT_convert_keypoints)
