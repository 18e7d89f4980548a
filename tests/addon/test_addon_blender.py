"""Add-on glue under real bpy (the bpy 5.0 wheel): import, retarget, export, errors.

Each test starts from an empty factory scene with BLENDER_USER_RESOURCES in a
temporary folder.  Synthetic pose files have constant bone lengths, so the
imported armature must land on the true joints.
"""
import math
import os
import tempfile

import numpy as np
import pytest

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="mocap_bur_"))
bpy = pytest.importorskip("bpy")
import mathutils  # noqa: E402  (bpy first)

from blender_mocap_addon.blender import export as export_bpy, import_posefile, keys as keys_bpy, retarget as retarget_bpy  # noqa: E402
from blender_mocap_addon.core import axes, bonemap as bm, synthetic
import posefile  # noqa: E402
from blender_mocap_addon.core import skeleton as sk  # noqa: E402
from blender_mocap_addon.errors import MocapError  # noqa: E402

pytestmark = pytest.mark.blender
JN = posefile.JOINT_NAMES


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene


def write_pose(path, P=2, F=60, gaps=False, seed=0, **kw):
    arr = synthetic.pose_arrays(P, F, gaps=gaps, seed=seed)
    arr.update(kw)
    posefile.write_posefile(str(path), **arr)
    return arr


def snapshot():
    """Everything an import could touch."""
    s = bpy.context.scene
    return (sorted(bpy.data.objects.keys()), sorted(bpy.data.armatures.keys()),
            sorted(bpy.data.actions.keys()), sorted(bpy.data.cameras.keys()),
            sorted(bpy.data.collections.keys()), sorted(bpy.data.movieclips.keys()),
            s.render.fps, s.render.fps_base, s.frame_start, s.frame_end, s.frame_current,
            s.render.resolution_x, s.render.resolution_y, s.camera)


def world_joints(ob):
    """dict joint name -> world position (3,) of the evaluated armature at the current frame."""
    out = {}
    mw = ob.matrix_world
    for b in sk.BONES:
        pb = ob.pose.bones[b.name]
        out[b.head] = np.array((mw @ pb.head)[:])
        out[b.tail] = np.array((mw @ pb.tail)[:])
    return out


# --------------------------------------------------------------------------- import
def test_import_lands_on_true_joints_within_1mm(tmp_path):
    arr = write_pose(tmp_path / "a.npz", P=2, F=90, gaps=True, seed=3)
    res = import_posefile.load(str(tmp_path / "a.npz"), import_posefile.ImportOptions(frame_offset=1))
    scene = bpy.context.scene
    worst, checked = 0.0, 0
    for p, name in enumerate(res.armatures):
        ob = bpy.data.objects[name]
        for f in (0, 7, 31, 44, 80, 89):
            if not arr["valid"][p, f]:
                continue
            scene.frame_set(f + 1)
            truth = axes.cam_to_blender(arr["joints3d"][p, f].astype(np.float64))
            got = world_joints(ob)
            for j, n in enumerate(JN):
                worst = max(worst, np.linalg.norm(got[n] - truth[j]))
            checked += 1
    assert checked >= 10
    assert worst < 1e-3, f"worst joint error {worst * 1000:.3f} mm"


def test_one_armature_per_person_with_own_action(tmp_path):
    arr = write_pose(tmp_path / "three.npz", P=3, F=30, fps=25.0)
    res = import_posefile.load(str(tmp_path / "three.npz"))
    ids = arr["person_ids"].tolist()
    assert res.armatures == [f"Mocap_P{i}" for i in ids]
    obs = [bpy.data.objects[n] for n in res.armatures]
    assert all(o.type == 'ARMATURE' and set(sk.BONE_NAMES) <= set(o.data.bones.keys()) for o in obs)
    actions = {o.animation_data.action.name for o in obs}
    assert len(actions) == 3
    s = bpy.context.scene
    assert (s.render.fps / s.render.fps_base) == pytest.approx(25.0)
    assert (s.frame_start, s.frame_end) == (1, 30)
    # people are apart, so their armatures are too
    s.frame_set(5)
    roots = [np.array((o.matrix_world @ o.pose.bones["spine"].head)[:]) for o in obs]
    assert np.linalg.norm(roots[0] - roots[1]) > 0.05


def test_keys_are_bulk_linear_and_sign_continuous(tmp_path):
    arr = write_pose(tmp_path / "k.npz", P=1, F=80, gaps=True)
    res = import_posefile.load(str(tmp_path / "k.npz"))
    ob = bpy.data.objects[res.armatures[0]]
    curves = [fc for fc in keys_bpy.fcurves_of(ob) if keys_bpy.is_motion(fc)]   # not confidence
    assert len(curves) == 3 + 4 * len(sk.BONES)
    n_valid = int(arr["valid"][0].sum())
    for fc in curves:
        assert len(fc.keyframe_points) == n_valid
        assert fc.keyframe_points[1].interpolation == 'LINEAR'
    for name in sk.BONE_NAMES:
        q = np.stack([keys_bpy.read_channel(fc)[1] for fc in curves
                      if fc.data_path == f'pose.bones["{name}"].rotation_quaternion'], 1)
        assert np.all(np.sum(q[1:] * q[:-1], 1) > 0), name


def test_camera_option(tmp_path):
    write_pose(tmp_path / "c.npz", P=1, F=10)
    res = import_posefile.load(str(tmp_path / "c.npz"),
                               import_posefile.ImportOptions(add_camera=True, video_path=str(tmp_path / "none.mp4")))
    cam = bpy.data.objects[res.camera]
    assert cam.data.lens == pytest.approx(1000 / 1280 * 36, rel=1e-5)
    assert bpy.context.scene.camera == cam
    assert any("not found" in w for w in res.warnings)


# --------------------------------------------------------------------------- bad input
def _newer_version(path):
    write_pose(path, P=1, F=5)
    with np.load(str(path)) as z:
        d = dict(z)
    d["format_version"] = np.array(posefile.FORMAT_VERSION + 1)
    np.savez(str(path), **d)


def _corrupt(path):
    write_pose(path, P=1, F=20)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def _zero_people(path):
    posefile.save(str(path), posefile.empty(0, 10))


def _nobody_valid(path):
    arr = synthetic.pose_arrays(2, 10)
    arr["valid"][:] = False
    arr["joints3d"][:] = np.nan
    arr["joints2d"][:] = np.nan
    arr["scores"][:] = 0
    posefile.write_posefile(str(path), **arr)


@pytest.mark.parametrize("make, match", [
    (_newer_version, "format_version"), (_corrupt, "corrupt|cannot read"),
    (_zero_people, "no people"), (_nobody_valid, "usable frames"),
    (None, "no such file"),
])
def test_bad_pose_files_leave_scene_untouched(tmp_path, make, match):
    p = tmp_path / "bad.npz"
    if make:
        make(p)
    before = snapshot()
    with pytest.raises(MocapError, match=match):
        import_posefile.load(str(p))
    assert snapshot() == before


def test_failure_midway_rolls_back(tmp_path, monkeypatch):
    write_pose(tmp_path / "two.npz", P=2, F=20)
    with pytest.raises(MocapError, match="simulated camera"):   # the very last step fails
        monkeypatch.setattr(import_posefile.axes, "camera_lens_from_K",
                            lambda *a: (_ for _ in ()).throw(ValueError("simulated camera failure")))
        before = snapshot()
        import_posefile.load(str(tmp_path / "two.npz"), import_posefile.ImportOptions(add_camera=True))
    assert snapshot() == before
    monkeypatch.undo()
    real = keys_bpy.write_channels
    calls = []

    def flaky(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("simulated failure while keying person 2")
        return real(*a, **k)

    monkeypatch.setattr(keys_bpy, "write_channels", flaky)
    before = snapshot()
    with pytest.raises(MocapError, match="simulated"):
        import_posefile.load(str(tmp_path / "two.npz"))
    assert snapshot() == before


def test_operator_and_menu(tmp_path):
    import blender_mocap_addon as addon
    write_pose(tmp_path / "op.npz", P=1, F=12)
    addon.register()
    try:
        assert bpy.ops.mocap.import_posefile(filepath=str(tmp_path / "op.npz")) == {'FINISHED'}
        assert "Mocap_P1" in bpy.data.objects
        before = snapshot()
        with pytest.raises(RuntimeError, match="no such file"):      # ERROR report -> CANCELLED
            bpy.ops.mocap.import_posefile(filepath=str(tmp_path / "missing.npz"))
        assert snapshot() == before
        assert bpy.context.scene.mocap.pose_path.endswith("op.npz")
        # The panel starts on the engine's default preset (the add-on cannot import the engine).
        from inference.pipeline import DEFAULT_PRESET
        assert bpy.context.scene.mocap.preset.lower() == DEFAULT_PRESET
    finally:
        addon.unregister()
    assert not hasattr(bpy.types.Scene, "mocap")


# --------------------------------------------------------------------------- retarget
RIGIFY_LIKE = [  # name, head, tail, parent (metres, Z up, facing -Y, arms sloping down)
    ("spine", (0, 0.02, 1.00), (0, 0.03, 1.10), None),
    ("spine.001", (0, 0.03, 1.10), (0, 0.03, 1.25), "spine"),
    ("spine.002", (0, 0.03, 1.25), (0, 0.02, 1.38), "spine.001"),
    ("spine.003", (0, 0.02, 1.38), (0, 0.02, 1.50), "spine.002"),
    ("spine.004", (0, 0.02, 1.50), (0, 0.0, 1.58), "spine.003"),
    ("spine.005", (0, 0.0, 1.58), (0, 0.0, 1.64), "spine.004"),
    ("spine.006", (0, 0.0, 1.64), (0, 0.0, 1.85), "spine.005"),
]
for _s, _n in ((1, "L"), (-1, "R")):
    RIGIFY_LIKE += [
        (f"shoulder.{_n}", (_s * 0.02, -0.02, 1.45), (_s * 0.18, 0.02, 1.46), "spine.003"),
        (f"upper_arm.{_n}", (_s * 0.19, 0.03, 1.44), (_s * 0.40, 0.05, 1.25), f"shoulder.{_n}"),
        (f"forearm.{_n}", (_s * 0.40, 0.05, 1.25), (_s * 0.58, -0.02, 1.08), f"upper_arm.{_n}"),
        (f"hand.{_n}", (_s * 0.58, -0.02, 1.08), (_s * 0.65, -0.04, 1.01), f"forearm.{_n}"),
        (f"pelvis.{_n}", (0, 0.02, 1.00), (_s * 0.12, -0.05, 1.08), "spine"),
        (f"thigh.{_n}", (_s * 0.10, 0.01, 0.98), (_s * 0.11, -0.01, 0.52), "spine"),
        (f"shin.{_n}", (_s * 0.11, -0.01, 0.52), (_s * 0.11, 0.03, 0.08), f"thigh.{_n}"),
        (f"foot.{_n}", (_s * 0.11, 0.03, 0.08), (_s * 0.11, -0.10, 0.02), f"shin.{_n}"),
    ]


def _mixamo_like():
    """Y-up centimetres as an FBX import leaves them; the object gets rot X 90 and scale 0.01."""
    def P(x, y, z):
        return (x * 100, z * 100, -y * 100)
    B = [("Hips", (0, 0, 1.0), (0, 0, 1.1), None), ("Spine", (0, 0, 1.1), (0, 0, 1.22), "Hips"),
         ("Spine1", (0, 0, 1.22), (0, 0, 1.34), "Spine"), ("Spine2", (0, 0, 1.34), (0, 0, 1.48), "Spine1"),
         ("Neck", (0, 0, 1.48), (0, 0, 1.58), "Spine2"), ("Head", (0, 0, 1.58), (0, 0, 1.78), "Neck")]
    for s, side in ((1, "Left"), (-1, "Right")):
        B += [(side + "Shoulder", (s * 0.05, 0, 1.44), (s * 0.17, 0, 1.45), "Spine2"),
              (side + "Arm", (s * 0.17, 0, 1.45), (s * 0.45, 0, 1.45), side + "Shoulder"),
              (side + "ForeArm", (s * 0.45, 0, 1.45), (s * 0.70, 0, 1.45), side + "Arm"),
              (side + "Hand", (s * 0.70, 0, 1.45), (s * 0.80, 0, 1.45), side + "ForeArm"),
              (side + "UpLeg", (s * 0.09, 0, 0.95), (s * 0.09, 0, 0.52), "Hips"),
              (side + "Leg", (s * 0.09, 0, 0.52), (s * 0.09, 0, 0.09), side + "UpLeg"),
              (side + "Foot", (s * 0.09, 0, 0.09), (s * 0.09, -0.12, 0.02), side + "Leg")]
    return [("mixamorig:" + n, P(*h), P(*t), "mixamorig:" + p if p else None) for n, h, t, p in B]


def build_rig(name, bones, matrix=None):
    arm = bpy.data.armatures.new(name)
    ob = bpy.data.objects.new(name, arm)
    bpy.context.scene.collection.objects.link(ob)
    if matrix is not None:
        ob.matrix_world = matrix
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.mode_set(mode='EDIT')
    for n, h, t, p in bones:
        eb = arm.edit_bones.new(n)
        eb.head, eb.tail = h, t
        if p:
            eb.parent = arm.edit_bones[p]
    bpy.ops.object.mode_set(mode='OBJECT')
    return ob


def _direction(ob, bone):
    pb = ob.pose.bones[bone]
    return (ob.matrix_world @ pb.tail - ob.matrix_world @ pb.head).normalized()


@pytest.mark.parametrize("kind", ["rigify", "mixamo"])
def test_retarget_moves_the_right_bones(tmp_path, kind):
    write_pose(tmp_path / "r.npz", P=1, F=40, seed=5)
    src = bpy.data.objects[import_posefile.load(str(tmp_path / "r.npz")).armatures[0]]
    if kind == "rigify":
        tgt, pid, unmapped = build_rig("RigifyLike", RIGIFY_LIKE), "RIGIFY_METARIG", "hand.L"
    else:
        m = mathutils.Matrix.LocRotScale(None, mathutils.Euler((math.pi / 2, 0, 0)), (0.01, 0.01, 0.01))
        tgt, pid, unmapped = build_rig("MixamoLike", _mixamo_like(), m), "MIXAMO", "mixamorig:LeftHand"
    # a user action on the target must survive
    user_action = bpy.data.actions.new("UserAction")
    tgt.animation_data_create()
    tgt.animation_data.action = user_action
    bone_map = bm.preset(pid)
    # every mapped bone as the mocap bone points (planting the feet would bend the legs)
    rep = retarget_bpy.retarget(src, tgt, bone_map, report=lambda m: None, plant_feet=False)
    assert rep.action.startswith(src.animation_data.action.name)
    assert tgt.animation_data.action.name == rep.action
    assert "UserAction" in bpy.data.actions and bpy.data.actions["UserAction"].use_fake_user
    scene = bpy.context.scene
    moved = []
    for f in (1, 17, 33):
        scene.frame_set(f)
        for ours, theirs in bone_map.bones.items():
            if ours == "spine":
                continue
            ang = math.degrees(_direction(src, ours).angle(_direction(tgt, theirs)))
            assert ang < 0.5, (f, ours, theirs, ang)
        moved.append(np.array((tgt.matrix_world @ tgt.pose.bones[bone_map.bones["forearm.L"]].tail)[:]))
        # an unmapped child follows its parent rigidly
        hand = tgt.pose.bones[unmapped]
        assert (hand.head - hand.parent.tail).length < 1e-4
        assert hand.matrix_basis == mathutils.Matrix.Identity(4)
    assert np.linalg.norm(moved[0] - moved[1]) > 0.05
    # the root follows the mocap pelvis (scaled by hip height) in world space
    scene.frame_set(1)
    a = tgt.matrix_world @ tgt.pose.bones[bone_map.root].head
    scene.frame_set(33)
    b = tgt.matrix_world @ tgt.pose.bones[bone_map.root].head
    sa = src.matrix_world @ src.pose.bones["spine"].head
    scene.frame_set(1)
    sb = src.matrix_world @ src.pose.bones["spine"].head
    assert (b - a).length > 0.01
    assert (b - a).normalized().angle(sa - sb) < 0.05


def test_retarget_onto_rig_with_missing_bones(tmp_path):
    write_pose(tmp_path / "m.npz", P=1, F=10)
    src = bpy.data.objects[import_posefile.load(str(tmp_path / "m.npz")).armatures[0]]
    bones = [(n, h, t, p.replace("forearm", "upper_arm") if p else p)
             for n, h, t, p in RIGIFY_LIKE if not n.startswith("forearm")]
    tgt = build_rig("Broken", bones)
    n_actions = len(bpy.data.actions)
    with pytest.raises(MocapError, match="forearm"):
        retarget_bpy.retarget(src, tgt, bm.preset("RIGIFY_METARIG"))
    assert len(bpy.data.actions) == n_actions and tgt.animation_data is None


# --------------------------------------------------------------------------- export
def _closest_frame_error(ob, bone, ref, frames):
    best = 1e9
    for f in frames:
        bpy.context.scene.frame_set(f)
        best = min(best, (ob.matrix_world @ ob.pose.bones[bone].head - ref).length)
    return best


@pytest.mark.parametrize("fmt", ["bvh", "fbx", "glb"])
def test_export_reads_back(tmp_path, fmt):
    write_pose(tmp_path / "e.npz", P=2, F=30)
    res = import_posefile.load(str(tmp_path / "e.npz"))
    objs = [bpy.data.objects[n] for n in res.armatures]
    objs[1].select_set(True)
    bpy.context.view_layer.objects.active = objs[1]
    out = export_bpy.export(objs, str(tmp_path / f"out.{fmt}"), fmt, report=lambda m: None)
    assert [o.name for o in bpy.context.selected_objects] == [objs[1].name]   # selection given back
    assert bpy.context.view_layer.objects.active == objs[1]
    assert len(out) == (2 if fmt == "bvh" else 1) and all(os.path.getsize(p) > 0 for p in out)
    scene = bpy.context.scene
    scene.frame_set(12)
    ref = {b: (objs[0].matrix_world @ objs[0].pose.bones[b].head).copy() for b in ("forearm.L", "shin.R")}
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.scene.render.fps = 30
    if fmt == "bvh":
        bpy.ops.import_anim.bvh(filepath=out[0], axis_forward='Y', axis_up='Z')
    elif fmt == "fbx":
        bpy.ops.import_scene.fbx(filepath=out[0])
    else:
        bpy.ops.import_scene.gltf(filepath=out[0])
    arms = [o for o in bpy.data.objects if o.type == 'ARMATURE']
    assert len(arms) == (1 if fmt == "bvh" else 2)
    ob = [o for o in arms if "P1" in o.name][0]
    assert set(sk.BONE_NAMES) <= set(ob.data.bones.keys())
    assert ob.animation_data is not None and ob.animation_data.action is not None
    for bone, r in ref.items():   # importers may shift time by one frame
        assert _closest_frame_error(ob, bone, r, range(10, 15)) < 1e-3, bone


def test_panel_operators_bonemap_retarget_export(tmp_path):
    import blender_mocap_addon as addon
    write_pose(tmp_path / "p.npz", P=1, F=15)
    addon.register()
    try:
        s = bpy.context.scene.mocap
        s.pose_path = str(tmp_path / "p.npz")
        assert bpy.ops.mocap.import_from_panel() == {'FINISHED'}
        assert s.source_rig.name == "Mocap_P1"
        s.target_rig = build_rig("RigifyLike", RIGIFY_LIKE)
        s.bonemap_preset = 'AUTO'
        assert bpy.ops.mocap.bonemap_fill() == {'FINISHED'}
        items = {it.source: it.target for it in s.bone_map}
        assert items["forearm.L"] == "forearm.L" and items["neck"] == "spine.004"
        # edit one entry in the list, save, clear, load back
        next(it for it in s.bone_map if it.source == "head").target = "spine.005"
        preset = str(tmp_path / "map.json")
        assert bpy.ops.mocap.bonemap_save(filepath=preset) == {'FINISHED'}
        s.bone_map.clear()
        assert bpy.ops.mocap.bonemap_load(filepath=preset) == {'FINISHED'}
        assert {it.source: it.target for it in s.bone_map}["head"] == "spine.005"
        assert bpy.ops.mocap.retarget() == {'FINISHED'}
        assert s.target_rig.animation_data.action.name.startswith("Mocap_P1")
        s.export_format = 'BVH'
        s.export_path = str(tmp_path / "exp" / "take")
        bpy.ops.object.select_all(action='DESELECT')
        s.source_rig.select_set(True)
        assert bpy.ops.mocap.export() == {'FINISHED'}
        assert (tmp_path / "exp" / "take.bvh").exists()
        # Convert (modal; needs a window, so its preparation is called directly)
        from blender_mocap_addon.ui import operators
        s.video_path = str(tmp_path / "missing.mp4")
        with pytest.raises(MocapError, match="video not found"):
            operators.prepare_convert(bpy.context)
        (tmp_path / "clip.mp4").write_bytes(b"x")
        s.video_path = str(tmp_path / "clip.mp4")
        s.pose_path = ""
        s.max_people, s.use_range, s.range_start, s.range_end = 2, True, 3, 9
        task = operators.prepare_convert(bpy.context)
        argv = task.job.argv
        assert argv[1:4] == ["-m", "inference", str(tmp_path / "clip.mp4")]
        assert argv[argv.index("-o") + 1] == task.tmp_path
        assert task.out_path == str(tmp_path / "clip_mocap.npz")
        assert argv[argv.index("--max-people") + 1] == "2" and argv[argv.index("--end") + 1] == "9"
    finally:
        addon.unregister()


def test_user_bonemap_presets_listed_and_used(tmp_path):
    import blender_mocap_addon as addon
    addon.register()
    try:
        from blender_mocap_addon.ui import properties
        folder = properties.user_preset_dir()
        assert folder.startswith(os.environ["BLENDER_USER_RESOURCES"])
        m = bm.preset("MIXAMO")
        m.bones["head"] = "mixamorig:HeadTop_End"
        bm.save_json(os.path.join(folder, "my_mixamo.json"), m)
        s = bpy.context.scene.mocap
        items = properties._bonemap_items(s, bpy.context)
        user = [it for it in items if it[1] == "my_mixamo"]
        assert user and user[0][0].startswith("USER:")
        s.bonemap_preset = user[0][0]
        assert bpy.ops.mocap.bonemap_fill() == {'FINISHED'}
        assert {it.source: it.target for it in s.bone_map}["head"] == "mixamorig:HeadTop_End"
    finally:
        addon.unregister()
