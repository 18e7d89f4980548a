"""Keypoint files into armatures under real bpy: File > Import runs the engine's keypoint run in a
subprocess (the add-on never imports inference) and imports its pose file; bad files leave the
scene as it was; the panel builds the same command."""
import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="mocap_bur_"))
bpy = pytest.importorskip("bpy")

import posefile  # noqa: E402
from keypoint_files import coco_results, H, openpose_folder, W  # noqa: E402

pytestmark = pytest.mark.blender


@pytest.fixture
def addon():
    import blender_mocap_addon as addon
    bpy.ops.wm.read_factory_settings(use_empty=True)
    addon.register()
    yield addon
    addon.unregister()


def _armatures():
    return sorted(o.name for o in bpy.data.objects if o.type == 'ARMATURE')


def test_openpose_folder_imports_into_armatures(addon, tmp_path):
    folder = openpose_folder(tmp_path / "clip_openpose", F=24)
    first = sorted(folder.iterdir())[0]           # the user picks any frame's file: the folder is read
    assert bpy.ops.mocap.import_keypoints(filepath=str(first), fps=25.0, image_width=W,
                                          image_height=H) == {'FINISHED'}
    arms = _armatures()
    assert len(arms) == 2
    pose = tmp_path / "clip_openpose_mocap.npz"
    d = posefile.load(pose)
    assert d.num_people == 2 and d.meta["keypoints"]["joint_set"] == "body25"
    s = bpy.context.scene
    assert s.mocap.pose_path == str(pose) and s.render.fps == 25
    for name in arms:               # animated: the pelvis moves across the picture (people walk)
        ob = bpy.data.objects[name]
        assert ob.animation_data is not None and ob.animation_data.action is not None
        xs = []
        for f in (2, 20):
            s.frame_set(s.frame_start + f)
            xs.append(np.array(ob.matrix_world.translation[:]) + np.array(ob.pose.bones[0].head[:]))
        assert np.linalg.norm(xs[1] - xs[0]) > 0.05, name


def test_coco_results_and_bad_files(addon, tmp_path):
    res = coco_results(tmp_path / "yolo.json", F=20)
    assert bpy.ops.mocap.import_keypoints(filepath=str(res), fps=30.0, image_width=W,
                                          image_height=H) == {'FINISHED'}
    assert len(_armatures()) == 2 and (tmp_path / "yolo_mocap.npz").is_file()
    before = (sorted(bpy.data.objects.keys()), sorted(bpy.data.actions.keys()))
    with pytest.raises(RuntimeError, match="does not say the picture's size"):     # ERROR -> CANCELLED
        bpy.ops.mocap.import_keypoints(filepath=str(res))
    (tmp_path / "junk.json").write_text('{"foo": 1}')
    with pytest.raises(RuntimeError, match="neither OpenPose"):
        bpy.ops.mocap.import_keypoints(filepath=str(tmp_path / "junk.json"), fps=30.0, image_width=W,
                                       image_height=H)
    with pytest.raises(RuntimeError, match="not found"):
        bpy.ops.mocap.import_keypoints(filepath=str(tmp_path / "missing.json"))
    assert (sorted(bpy.data.objects.keys()), sorted(bpy.data.actions.keys())) == before
    assert not (tmp_path / "junk_mocap.npz").exists()
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part.npz")]


def test_panel_builds_the_keypoint_command(addon, tmp_path):
    from blender_mocap_addon.ui import keypoints
    s = bpy.context.scene.mocap
    res = coco_results(tmp_path / "r.json", F=10)
    s.keypoints_path = str(res)
    s.keypoints_fps, s.keypoints_width, s.keypoints_height = 24.0, W, H
    s.keypoints_format = 'COCO'
    s.max_people = 3
    task = keypoints._panel_task(bpy.context)
    argv = task.job.argv
    assert argv[1:5] == ["-m", "inference", "--keypoints", str(res)]
    assert argv[argv.index("--image-size") + 1] == f"{W}x{H}" and argv[argv.index("--fps") + 1] == "24.0"
    assert argv[argv.index("--format") + 1] == "coco" and argv[argv.index("--max-people") + 1] == "3"
    assert argv[argv.index("-o") + 1] == task.tmp_path and task.out_path == str(tmp_path / "r_mocap.npz")
    # both Convert operators stay usable side by side (a registered operator class subclassed by
    # another registered one loses its Python class: its poll failed)
    assert bpy.ops.mocap.convert.poll() and bpy.ops.mocap.convert_keypoints.poll()
