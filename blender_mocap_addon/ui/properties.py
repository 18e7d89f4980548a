"""Settings stored on the scene (``scene.mocap``) and where the user's bone-map presets live.

Panels and operators both import this module; it imports neither."""
from __future__ import annotations

import bpy

from ..core import bonemap as bm


def _is_armature(self, obj):
    return obj.type == 'ARMATURE'


def user_preset_dir() -> str:
    """Folder of the user's bone-map presets (JSON), in Blender's config folder."""
    return bpy.utils.user_resource('CONFIG', path="video_mocap_bonemaps", create=True)


_ENUM_CACHE = []   # Blender needs the strings of dynamic enum items to stay alive


def _bonemap_items(self, context):
    items = [('AUTO', "Auto", "Best preset for the target rig, else match bone names")]
    for pid, make in bm.PRESETS.items():
        items.append((pid, make().name, ""))
    try:
        for name, path in bm.list_user_presets(user_preset_dir()):
            items.append(("USER:" + path, name, f"User preset {path}"))
    except (OSError, ValueError):
        pass
    _ENUM_CACHE[:] = items
    return _ENUM_CACHE


class MocapBoneMapItem(bpy.types.PropertyGroup):
    source: bpy.props.StringProperty(name="Mocap Bone")
    target: bpy.props.StringProperty(name="Target Bone")


class MocapSettings(bpy.types.PropertyGroup):
    video_path: bpy.props.StringProperty(name="Video", subtype='FILE_PATH')
    pose_path: bpy.props.StringProperty(name="Pose File", subtype='FILE_PATH',
                                        description="Pose file (.npz) to import, or where Convert writes it")
    keypoints_path: bpy.props.StringProperty(
        name="Keypoints", subtype='FILE_PATH',
        description="Another detector's 2D instead of the video's: an OpenPose *_keypoints.json (its folder "
                    "is read), COCO keypoint results .json, or a .npz / .csv table (docs/keypoints.md)")
    keypoints_format: bpy.props.EnumProperty(name="Format", items=[
        ('AUTO', "Auto", "From the path and contents"), ('OPENPOSE', "OpenPose", ""),
        ('COCO', "COCO Results", ""), ('TABLE', "Table", "")])
    keypoints_fps: bpy.props.FloatProperty(name="Frame Rate", min=0.0, default=0.0,
                                           description="0: from the video or the keypoint file")
    keypoints_width: bpy.props.IntProperty(name="Width", min=0, default=0,
                                           description="Picture width (px); 0: from the video or the file")
    keypoints_height: bpy.props.IntProperty(name="Height", min=0, default=0,
                                            description="Picture height (px); 0: from the video or the file")
    preset: bpy.props.EnumProperty(name="Preset", items=[
        ('FAST', "Fast", "The smallest networks: about 30% quicker, less accurate"),
        ('BALANCED', "Balanced", "A wider pose network: the most accurate shipped (default)"),
        ('ACCURATE', "Accurate", "8-stack networks (need a GPU; not shipped yet)")], default='BALANCED')
    device: bpy.props.EnumProperty(name="Device", items=[
        ('AUTO', "Auto", "GPU if available"), ('CPU', "CPU", ""), ('CUDA', "CUDA", "")])
    runtime: bpy.props.EnumProperty(name="Runtime", items=[
        ('AUTO', "Auto", "ONNX Runtime on the CPU when the engine's Python has it, else PyTorch"),
        ('ONNX', "ONNX Runtime", "Faster on the CPU (about 2x the networks' speed); CPU only"),
        ('ONNX-INT8', "ONNX Runtime int8", "As ONNX Runtime, with the int8 balanced pose network: faster "
                      "(about 1.4x a balanced run), up to about a point less accurate; CPU only"),
        ('TORCH', "PyTorch", "PyTorch, on the CPU or a CUDA GPU")])
    max_people: bpy.props.IntProperty(name="Max People", min=0, default=0, description="0: no limit")
    focal: bpy.props.FloatProperty(name="Focal (px)", min=0.0, default=0.0,
                                   description="Focal length in pixels (people's distances scale with it); "
                                               "0: assume a 60 degree field of view across the long side. "
                                               "A phone's 35 mm-equivalent F mm gives about F / 36 x the long side")
    smoothing: bpy.props.FloatProperty(name="Smoothing", min=0.0, max=10.0, default=1.0,
                                       description="Temporal smoothing done by inference: 0 off, 1 default, "
                                                   "larger is smoother")
    import_smoothing: bpy.props.FloatProperty(name="Import Smoothing", min=0.0, max=20.0, default=0.0,
                                              description="Extra Gaussian smoothing of the joints when "
                                                          "importing (sigma in frames; 0 off)")
    use_range: bpy.props.BoolProperty(name="Frame Range", default=False)
    range_start: bpy.props.IntProperty(name="Start", min=0, default=0)
    range_end: bpy.props.IntProperty(name="End", min=0, default=250)
    add_camera: bpy.props.BoolProperty(name="Camera with Video", default=True)
    use_floor: bpy.props.BoolProperty(name="Use Floor", default=True,
                                      description="When the pose file has a floor: import onto it (ground "
                                                  "plane at z = 0, camera at its height and tilt, feet on the floor)")
    foot_lock: bpy.props.BoolProperty(name="Lock Feet", default=True,
                                      description="Keep a foot still while the pose file says it is on the "
                                                  "floor (moves the root and legs; needs contacts in the file); "
                                                  "Retarget then plants the rig's feet on its floor too")
    source_rig: bpy.props.PointerProperty(name="Mocap Armature", type=bpy.types.Object, poll=_is_armature)
    target_rig: bpy.props.PointerProperty(name="Target Rig", type=bpy.types.Object, poll=_is_armature)
    rigify_limbs: bpy.props.EnumProperty(name="Rigify Limbs", default='FK', items=[
        ('FK', "FK Controls", "Key the limbs' FK controls (IK_FK = 1)"),
        ('IK', "IK Targets", "Key the FK controls, then hand_ik / foot_ik and the pole targets placed so the "
                             "IK gives the same pose, and switch the limbs to IK (IK_FK = 0)")])
    bonemap_preset: bpy.props.EnumProperty(name="Bone Map", items=_bonemap_items)
    bone_map: bpy.props.CollectionProperty(type=MocapBoneMapItem)
    bone_map_index: bpy.props.IntProperty()
    bone_map_root: bpy.props.StringProperty(name="Root Bone", description="Target bone that gets the root location")
    export_format: bpy.props.EnumProperty(name="Format", items=[
        ('BVH', "BVH", ""), ('FBX', "FBX", ""), ('GLB', "glTF (.glb)", "")])
    export_path: bpy.props.StringProperty(name="Export File", subtype='FILE_PATH')
    job_status: bpy.props.StringProperty(default="", options={'SKIP_SAVE'})
    job_progress: bpy.props.FloatProperty(default=0.0, min=0.0, max=1.0, subtype='FACTOR',
                                          options={'SKIP_SAVE'})
