"""Confidence in the scene (issue 28, item 1): per-joint confidence curves on the pose bones,
bone colours by level, span markers, visibility keyed to the person's track; the scene takes
the video's size, rate and frames. Pure-numpy spans first, then the import under real bpy."""
import numpy as np
import pytest

from blender_mocap_addon.core import confidence as conf, synthetic
import posefile

JN = posefile.JOINT_NAMES


def test_spans_and_visibility_pure():
    F = 60
    valid = np.zeros(F, bool)
    valid[5:50] = True
    valid[20:24] = False          # 4 frames: bridged (interpolated)
    valid[30:40] = False          # 10 frames: lost
    scores = np.full((F, 16), 0.9)
    scores[10:15] = 0.1           # weak
    scores[42] = 0.1              # one weak frame: no marker
    spans = conf.spans(valid, scores, max_gap=5)
    assert [(s.kind, s.start, s.end) for s in spans] == [
        ("weak", 10, 14), ("interpolated", 20, 23), ("lost", 30, 39)]
    frames, hidden = conf.visibility(valid, max_gap=5)
    assert frames.tolist() == [0, 5, 30, 40, 50] and hidden.tolist() == [1, 0, 1, 0, 1]
    f, lv = conf.level_changes(np.arange(6), np.array([0.9, 0.9, 0.5, 0.1, 0.1, 0.9]))
    assert f.tolist() == [0, 2, 3, 5] and lv.tolist() == [2, 1, 0, 2]


@pytest.fixture
def bpy_scene(bpy_factory):
    return bpy_factory


@pytest.mark.blender
def test_confidence_curves_colours_markers_visibility(bpy_scene, tmp_path):
    bpy = bpy_scene
    from blender_mocap_addon.blender import import_posefile, keys as keys_bpy

    arr = synthetic.pose_arrays(2, 90, gaps=False, image_size=(1768, 994))
    rng = np.random.default_rng(0)
    arr["scores"][:] = rng.uniform(0.5, 1.0, arr["scores"].shape).astype(np.float32)
    arr["scores"][0, 10:20] = 0.1                       # person 0 weak on 10..19
    arr["valid"][0, 40:46] = False                      # bridged dropout (6 frames < 15)
    arr["valid"][1, :30] = False                        # person 1 enters at 30 ...
    arr["valid"][1, 70:] = False                        # ... and leaves after 69
    for k in ("joints3d", "joints2d"):
        arr[k][~arr["valid"]] = np.nan
    arr["scores"][~arr["valid"]] = 0
    posefile.write_posefile(str(tmp_path / "c.npz"), **arr)
    res = import_posefile.load(str(tmp_path / "c.npz"), import_posefile.ImportOptions(frame_offset=1),
                               report=lambda m: None)
    s = bpy.context.scene
    # the scene is the video: size, frames (all of them, not only where people are), rate
    assert (s.render.resolution_x, s.render.resolution_y) == (1768, 994)
    assert (s.frame_start, s.frame_end) == (1, 90)
    assert s.render.fps / s.render.fps_base == pytest.approx(30.0)
    p0, p1 = (bpy.data.objects[n] for n in res.armatures)
    pid0, pid1 = res.person_ids

    # one confidence curve per joint with the file's values at the keyed frames
    curves = {(fc.data_path, fc.array_index): fc for fc in keys_bpy.fcurves_of(p0)}
    for bone, prop, j in conf.joint_props(JN):
        fr, val = keys_bpy.read_channel(curves[(f'pose.bones["{bone}"]["{prop}"]', 0)])
        want = np.flatnonzero(arr["valid"][0])
        assert fr.tolist() == (want + 1).tolist()
        np.testing.assert_allclose(val, arr["scores"][0, want, j], atol=1e-6)
    s.frame_set(15)
    pb = p0.pose.bones["forearm.L"]
    assert pb["mocap_conf"] == pytest.approx(0.1, abs=1e-6)
    assert tuple(pb.color.custom.normal) == pytest.approx(tuple(conf.LEVEL_RGB[0]), abs=3e-3)   # red (stored in 8 bits)
    s.frame_set(60)
    level = conf.levels(arr["scores"][0, 59, JN.index("l_wrist")])
    assert tuple(pb.color.custom.normal) == pytest.approx(tuple(conf.LEVEL_RGB[level]), abs=3e-3)

    # markers over the weak span and the bridged dropout, in scene frames
    names = sorted(m.name for m in s.timeline_markers)
    assert f"P{pid0} weak 11-20" in names and f"P{pid0} interpolated 41-46" in names
    assert {m.frame for m in s.timeline_markers if m.name == f"P{pid0} weak 11-20"} == {11}

    # visibility: person 1 exists on scene frames 31..70 only
    for f, hidden in ((1, True), (30, True), (31, False), (50, False), (70, False), (71, True), (90, True)):
        s.frame_set(f)
        assert p1.hide_viewport is hidden and p1.hide_render is hidden, f
    s.frame_set(43)                                       # person 0 in its bridged dropout: shown
    assert not p0.hide_viewport


@pytest.mark.blender
def test_zero_length_bones_say_so(bpy_scene, tmp_path):
    from blender_mocap_addon.blender import import_posefile
    from blender_mocap_addon.errors import MocapError

    arr = synthetic.pose_arrays(1, 20)
    arr["joints3d"][:] = arr["joints3d"][:, :, :1]        # every joint at the ankle
    posefile.write_posefile(str(tmp_path / "z.npz"), **arr)
    with pytest.raises(MocapError, match="zero-length bones"):
        import_posefile.load(str(tmp_path / "z.npz"), report=lambda m: None)



@pytest.mark.blender
def test_float64_pose_file_is_cast_not_refused(bpy_scene, tmp_path):
    from blender_mocap_addon.blender import import_posefile
    d = posefile.write_posefile(str(tmp_path / "a.npz"), **synthetic.pose_arrays(1, 20))
    arrays = posefile.to_arrays(d)
    for k in ("joints3d", "joints2d", "scores", "camera_K"):
        arrays[k] = arrays[k].astype(np.float64)
    np.savez(str(tmp_path / "f64.npz"), **arrays)
    with pytest.raises(posefile.PoseFileError, match="float32"):     # the contract stays strict ...
        posefile.load(str(tmp_path / "f64.npz"))
    res = import_posefile.load(str(tmp_path / "f64.npz"), report=lambda m: None)   # ... the importer casts
    assert len(res.armatures) == 1
