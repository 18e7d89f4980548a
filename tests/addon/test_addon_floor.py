"""Floor, camera, feet on the floor, foot locking and retargeting about the floor, under real
bpy (the bpy 5.0 wheel) on a real scene.

Pose files are synthetic walkers (``synthetic.walkers_arrays``): people walking on the floor
z = 0 with known foot contacts, seen by a tilted camera. Version-2 files carry the world
frame and the contacts; "version-1" files carry the same people in camera coordinates only.
"""
import math
import os
import shutil

import numpy as np
import pytest

bpy = pytest.importorskip("bpy")
import mathutils  # noqa: E402  (bpy first)

from blender_mocap_addon.blender import import_posefile, retarget as retarget_bpy  # noqa: E402
from blender_mocap_addon.core import bonemap as bm, floor, foot_lock as fk, synthetic  # noqa: E402
from blender_mocap_addon.core import skeleton as sk  # noqa: E402
from blender_mocap_addon.core.contract import posefile  # noqa: E402
from test_addon_blender import RIGIFY_LIKE, _mixamo_like, build_rig  # noqa: E402  (same folder)

pytestmark = pytest.mark.blender
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SAMPLE_VIDEO = os.path.join(ROOT, "examples", "sports2d_demo.mp4")
CAMERA = dict(height=1.7, pitch_deg=14.0, roll_deg=-3.0)


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene


def walkers(path, P=2, F=90, world_frame=True, jitter=0.0, drift=0.0, lift=(0.0, 0.06), seed=0,
            camera=CAMERA, ankle=0.0, **meta):
    """Write a pose file of P walkers; person p's world joints are lifted by lift[p] (the
    engine's per-person height error) and seen through noise. ``ankle``: the ankles' height
    above the floor when standing (the engine's floor lies ``meta["floor"]["ankle_height_m"]``
    below the resting ankles). Returns (world truth (P, F, J, 3), contacts (P, F, 2))."""
    T = synthetic.look_at_floor(**camera)
    arr, world, contacts = synthetic.walkers_arrays(P, F, T, seed=seed, world_frame=world_frame)
    world = world + [0.0, 0.0, ankle]
    if world_frame and ankle:
        arr["meta"]["floor"]["ankle_height_m"] = ankle
    rng = np.random.default_rng(seed)
    seen = world.copy()
    for p in range(P):
        seen[p] += [0.0, 0.0, lift[p % len(lift)]]
        seen[p] += np.cumsum(rng.normal(0, drift, (F, 3)), 0)[:, None, :] if drift else 0.0
        seen[p] += rng.normal(0, jitter, seen[p].shape) if jitter else 0.0
    Ti = np.linalg.inv(T)
    arr["joints3d"] = (seen @ Ti[:3, :3].T + Ti[:3, 3]).astype(np.float32)
    arr["meta"].update(meta)
    posefile.write_posefile(str(path), **arr)
    return world, contacts


def ankles(ob, frames):
    """(len(frames), 2, 3) world positions of the armature's ankles (shin tails: right, left)."""
    out = []
    for f in frames:
        bpy.context.scene.frame_set(int(f))
        mw = ob.matrix_world
        out.append([np.array((mw @ ob.pose.bones[b].tail)[:]) for b in ("shin.R", "shin.L")])
    return np.array(out)


def messages():
    lines = []
    return lines, lines.append


# --------------------------------------------------------------------------- import
def test_version_1_file_imports_in_camera_coordinates_and_says_there_is_no_floor(tmp_path):
    world, _ = walkers(tmp_path / "v1.npz", world_frame=False)
    lines, report = messages()
    res = import_posefile.load(str(tmp_path / "v1.npz"), report=report)
    assert not res.world and res.floor is None and "Mocap_Floor" not in bpy.data.objects
    assert any("no floor in the pose file" in m for m in lines)
    assert "camera coordinates" in res.floor_note
    # today's placement: camera at the origin, joints through x_b = x, y_b = z, z_b = -y
    ob = bpy.data.objects[res.armatures[0]]
    cam = posefile.load(str(tmp_path / "v1.npz")).joints3d[0, 10].astype(np.float64)
    bpy.context.scene.frame_set(11)
    got = np.array((ob.matrix_world @ ob.pose.bones["spine"].head)[:])
    assert np.allclose(got, [cam[6, 0], cam[6, 2], -cam[6, 1]], atol=1e-4)


def test_version_2_file_imports_onto_the_floor_with_camera_and_video(tmp_path):
    shutil.copy(SAMPLE_VIDEO, tmp_path / "clip.mp4")
    world, contacts = walkers(tmp_path / "v2.npz", ankle=0.09, source="clip.mp4", source_kind="video")
    lines, report = messages()
    res = import_posefile.load(str(tmp_path / "v2.npz"),
                               import_posefile.ImportOptions(foot_lock=False), report=report)
    assert res.world and res.floor == "Mocap_Floor"
    assert any("floor from the pose file (camera 1.70 m above the floor" in m for m in lines)
    assert any("person 2: moved -6.0 cm" in m for m in lines)
    # ground plane: a grid at z = 0 under everyone and the camera
    plane = bpy.data.objects["Mocap_Floor"]
    v = np.array([plane.matrix_world @ p.co for p in plane.data.vertices])
    assert np.abs(v[:, 2]).max() < 1e-9
    for xy in [(0.0, 0.0)] + [tuple(w) for w in world[:, :, 6, :2].reshape(-1, 2)]:
        assert v[:, 0].min() < xy[0] < v[:, 0].max() and v[:, 1].min() < xy[1] < v[:, 1].max()
    # the camera at its height and tilt, with the video behind it
    cam = bpy.data.objects[res.camera]
    assert bpy.context.scene.camera == cam
    assert np.allclose(cam.matrix_world.translation, (0, 0, 1.7), atol=1e-6)
    fwd = cam.matrix_world.to_3x3() @ mathutils.Vector((0, 0, -1))
    assert math.degrees(math.asin(-fwd.z)) == pytest.approx(14.0, abs=1e-4)
    assert cam.data.show_background_images and cam.data.background_images[0].clip is not None
    assert os.path.basename(cam.data.background_images[0].clip.filepath) == "clip.mp4"
    # each armature's contact feet on the floor (ankles 9 cm above it, within 2 cm), and the
    # people where they walk
    for p, name in enumerate(res.armatures):
        ob = bpy.data.objects[name]
        assert ob["mocap_world"] and ob["mocap_floor_z"] == pytest.approx(0.09)
        frames = np.arange(0, 90, 3)
        a = ankles(ob, frames + 1)
        c = contacts[p, frames]
        assert np.abs(a[..., 2][c] - 0.09).max() < 0.02
        assert np.abs(a - world[p, frames][:, [0, 5]]).max() < 1e-3


def test_floor_rolls_back_on_failure_and_can_be_turned_off(tmp_path, monkeypatch):
    walkers(tmp_path / "v2.npz")
    before = sorted(bpy.data.objects.keys()), sorted(bpy.data.meshes.keys())

    def boom(*a, **k):
        raise RuntimeError("simulated camera failure")
    monkeypatch.setattr(import_posefile, "_add_camera", boom)
    with pytest.raises(import_posefile.MocapError, match="simulated"):
        import_posefile.load(str(tmp_path / "v2.npz"))
    assert (sorted(bpy.data.objects.keys()), sorted(bpy.data.meshes.keys())) == before
    monkeypatch.undo()
    res = import_posefile.load(str(tmp_path / "v2.npz"), import_posefile.ImportOptions(use_floor=False),
                               report=lambda m: None)
    assert not res.world and "option off" in res.floor_note and "Mocap_Floor" not in bpy.data.objects


# --------------------------------------------------------------------------- foot locking
def test_foot_lock_keeps_a_contact_foot_still_to_1mm_through_the_operator(tmp_path):
    """Noisy joints (1 cm jitter, 4 mm/frame drift) make the feet slide; Import with Lock Feet
    (the File > Import operator) keeps each contact foot still to 1 mm."""
    import blender_mocap_addon as addon
    _, contacts = walkers(tmp_path / "noisy.npz", P=1, F=120, jitter=0.01, drift=0.004, lift=(0.0,))
    addon.register()
    try:
        slides = {}
        for lock in (False, True):
            bpy.ops.wm.read_factory_settings(use_empty=True)
            assert bpy.ops.mocap.import_posefile(filepath=str(tmp_path / "noisy.npz"), foot_lock=lock) == {'FINISHED'}
            ob = bpy.data.objects["Mocap_P1"]
            a = ankles(ob, np.arange(120) + 1)
            slides[lock] = fk.foot_slide(a, contacts[0])
            if lock:
                for k in range(2):
                    for s, e in fk.intervals(contacts[0, :, k]):
                        assert np.abs(a[s:e + 1, k] - a[s, k]).max() < 1e-3, (k, s, e)
                        assert np.abs(a[s:e + 1, k, 2]).max() < 1e-3
    finally:
        addon.unregister()
    assert slides[False] > 0.01 and slides[True] < 1e-4


# --------------------------------------------------------------------------- retarget
def _target(kind):
    if kind == "rigify":
        return build_rig("RigifyLike", RIGIFY_LIKE), bm.preset("RIGIFY_METARIG")
    m = mathutils.Matrix.LocRotScale(None, mathutils.Euler((math.pi / 2, 0, 0)), (0.01, 0.01, 0.01))
    return build_rig("MixamoLike", _mixamo_like(), m), bm.preset("MIXAMO")


def _rig_floor_and_ankle(tgt, bone_map):
    mw = tgt.matrix_world
    z = [(mw @ b.head_local).z for b in tgt.data.bones] + [(mw @ b.tail_local).z for b in tgt.data.bones]
    ankle = {s: (mw @ tgt.data.bones[bone_map.bones[f"shin.{s}"]].tail_local).z for s in ("R", "L")}
    return min(z), ankle


@pytest.mark.parametrize("kind", ["rigify", "mixamo"])
@pytest.mark.parametrize("world_frame", [True, False], ids=["v2", "v1"])
def test_retarget_keeps_contact_feet_on_the_rigs_floor(tmp_path, kind, world_frame):
    """Feet of a noisy walker on the target rig's floor during contacts (within 3 cm) and
    still: from a version-2 import (world frame, tilted camera, feet locked) and from a
    version-1 import (camera coordinates, level camera: before, the rig's feet landed 1.9-2.1 m
    below its floor). A version-1 file from a tilted camera has a tilted floor the add-on
    does not know."""
    camera = CAMERA if world_frame else dict(height=1.7, pitch_deg=0.0, roll_deg=0.0)
    _, contacts = walkers(tmp_path / "w.npz", P=1, F=90, world_frame=world_frame, lift=(0.0,), camera=camera,
                          jitter=0.01 if world_frame else 0.0, drift=0.004 if world_frame else 0.0,
                          ankle=0.09 if world_frame else 0.0)
    src = bpy.data.objects[import_posefile.load(str(tmp_path / "w.npz"), report=lambda m: None).armatures[0]]
    tgt, bone_map = _target(kind)
    floor_z, rest_ankle = _rig_floor_and_ankle(tgt, bone_map)
    retarget_bpy.retarget(src, tgt, bone_map, report=lambda m: None)
    a = np.empty((90, 2, 3))
    for f in range(90):
        bpy.context.scene.frame_set(f + 1)
        for k, s in enumerate(("R", "L")):
            a[f, k] = (tgt.matrix_world @ tgt.pose.bones[bone_map.bones[f"shin.{s}"]].tail)[:]
    rest = np.array([rest_ankle["R"], rest_ankle["L"]])
    worst = np.abs(a[..., 2] - rest)[contacts[0]].max()
    assert worst < 0.03, f"contact ankle {worst * 100:.1f} cm off its rest height above the rig's floor"
    assert min(rest_ankle.values()) - floor_z < 0.12
    if world_frame:   # locked on import, planted on the rig: still to a few mm per frame
        assert fk.foot_slide(a, contacts[0]) < 0.005


def test_batch_flags_turn_floor_and_foot_lock_off(tmp_path):
    from blender_mocap_addon.runner import batch
    walkers(tmp_path / "take.npz", P=1, F=30)
    args = batch.parse_args(["--pose-file", "x.npz", "--output", "o"])
    assert args.use_floor and args.foot_lock
    args = batch.parse_args(["--pose-file", "x.npz", "--output", "o", "--no-foot-lock", "--no-floor"])
    assert not args.use_floor and not args.foot_lock
    assert batch.main(["--pose-file", str(tmp_path / "take.npz"), "--output", str(tmp_path / "out"),
                       "--format", "blend"]) == 0
    assert "Mocap_Floor" in bpy.data.objects                  # the scene batch saved
    assert (tmp_path / "out" / "take.blend").stat().st_size > 0
    assert batch.main(["--pose-file", str(tmp_path / "take.npz"), "--output", str(tmp_path / "out2"),
                       "--format", "blend", "--no-floor"]) == 0
    assert "Mocap_Floor" not in bpy.data.objects


def test_a_person_off_the_floor_is_left_where_the_engine_put_them(tmp_path):
    """Someone standing on a wall gets no contacts from the engine (and is listed in
    meta["floor"]["people_off_the_floor"]): not pulled down to the floor."""
    T = synthetic.look_at_floor(**CAMERA)
    arr, world, contacts = synthetic.walkers_arrays(2, 60, T)
    world[0] += [0.0, 0.0, 1.2]                      # person row 0 walks on a 1.2 m wall
    arr["contacts"][0] = False
    arr["meta"]["floor"]["people_off_the_floor"] = [0]
    Ti = np.linalg.inv(T)
    arr["joints3d"] = (world @ Ti[:3, :3].T + Ti[:3, 3]).astype(np.float32)
    posefile.write_posefile(str(tmp_path / "wall.npz"), **arr)
    lines, report = messages()
    res = import_posefile.load(str(tmp_path / "wall.npz"), report=report)
    assert any("person 1: no foot contact in the pose file; left where the engine put it (ankles 1.20 m" in m
               for m in lines)
    assert not any("WARNING" in m and "moved" in m for m in lines)
    on_wall, on_floor = (bpy.data.objects[n] for n in res.armatures)
    a = ankles(on_wall, [11])
    assert np.allclose(a[0], world[0, 10][[0, 5]], atol=1e-3)
    assert on_wall["mocap_floor_z"] == pytest.approx(1.2, abs=1e-3)
    assert np.abs(ankles(on_floor, [11])[0] - world[1, 10][[0, 5]]).max() < 1e-3


def _real_rigify(generated):
    """Blender's own Rigify human metarig (the bundled rigify add-on), or the rig generated
    from it; (rig, bone map, the bones whose tails are the ankles)."""
    import addon_utils
    if not addon_utils.enable("rigify", default_set=True):
        pytest.skip("the rigify add-on is not bundled with this Blender")
    bpy.ops.object.select_all(action='DESELECT')
    bpy.ops.object.armature_human_metarig_add()
    rig = bpy.context.active_object
    if not generated:
        return rig, bm.preset("RIGIFY_METARIG"), {"R": "shin.R", "L": "shin.L"}
    bpy.ops.pose.rigify_generate()
    return bpy.data.objects["rig"], bm.preset("RIGIFY_CONTROLS"), {"R": "ORG-shin.R", "L": "ORG-shin.L"}


@pytest.mark.parametrize("generated", [False, pytest.param(True, marks=pytest.mark.slow)],
                         ids=["metarig", "generated"])
def test_retarget_onto_real_rigify_keeps_contact_feet_on_its_floor(tmp_path, generated):
    """The rigs the issue tried: Blender's Rigify metarig and a generated Rigify rig (FK
    controls; its ORG- shins carry the result through the rig's constraints)."""
    _, contacts = walkers(tmp_path / "w.npz", P=1, F=60, lift=(0.0,), ankle=0.09, jitter=0.005, drift=0.002)
    src = bpy.data.objects[import_posefile.load(str(tmp_path / "w.npz"), report=lambda m: None).armatures[0]]
    tgt, bone_map, shins = _real_rigify(generated)
    mw = tgt.matrix_world
    rest = np.array([(mw @ tgt.data.bones[shins[s]].tail_local).z for s in ("R", "L")])
    retarget_bpy.retarget(src, tgt, bone_map, report=lambda m: None)
    a = np.empty((60, 2, 3))
    for f in range(60):
        bpy.context.scene.frame_set(f + 1)
        a[f] = [(tgt.matrix_world @ tgt.pose.bones[shins[s]].tail)[:] for s in ("R", "L")]
    assert np.abs(a[..., 2] - rest)[contacts[0]].max() < 0.03
    assert fk.foot_slide(a, contacts[0]) < 0.005


def test_retarget_from_an_armature_imported_before_the_floor_existed(tmp_path):
    """A mocap armature without ``mocap_floor_z`` (imported by an older add-on): its floor is
    where its ankles stand, so the rig's feet still land on the rig's floor."""
    _, contacts = walkers(tmp_path / "old.npz", P=1, F=90, world_frame=False, lift=(0.0,),
                          camera=dict(height=1.6, pitch_deg=0.0, roll_deg=0.0))
    src = bpy.data.objects[import_posefile.load(str(tmp_path / "old.npz"), report=lambda m: None).armatures[0]]
    del src["mocap_floor_z"]
    tgt, bone_map = _target("rigify")
    _, rest_ankle = _rig_floor_and_ankle(tgt, bone_map)
    retarget_bpy.retarget(src, tgt, bone_map, report=lambda m: None)
    worst = 0.0
    for f in range(0, 90, 3):
        bpy.context.scene.frame_set(f + 1)
        for k, s in enumerate(("R", "L")):
            if contacts[0, f, k]:
                z = (tgt.matrix_world @ tgt.pose.bones[bone_map.bones[f"shin.{s}"]].tail).z
                worst = max(worst, abs(z - rest_ankle[s]))
    assert worst < 0.03
