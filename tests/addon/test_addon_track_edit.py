"""Track edits (issue 28, item 2): delete, merge, split, swap left/right on the pose data, the
armatures re-solved from it (joints within 1 mm), through the panel's operator, surviving save
and reload, taken back; the same edits from batch ``--edits``."""
import json

import numpy as np
import pytest

import posefile
from blender_mocap_addon.core import axes, synthetic, track_edit
from blender_mocap_addon.core import skeleton as sk

JN = posefile.JOINT_NAMES
F = 60


def two_people_file(path):
    """Person A seen as two tracks (id 1 on frames 0..29, id 2 on 30..59: one person, same size)
    and person B (id 4) all along. Returns the arrays written and A's true joints (F, J, 3)."""
    base = synthetic.pose_arrays(2, F, seed=5)
    rows = [0, 0, 1]
    arr = {k: np.array(base[k])[rows] for k in ("joints3d", "joints2d", "scores", "valid")}
    arr["valid"][0, 30:] = False
    arr["valid"][1, :30] = False
    for k in ("joints3d", "joints2d"):
        arr[k][~arr["valid"]] = np.nan
    arr["scores"][~arr["valid"]] = 0
    arr.update(person_ids=[1, 2, 4], fps=base["fps"], image_size=base["image_size"], camera_K=base["camera_K"],
               meta=base["meta"])
    posefile.write_posefile(str(path), **arr)
    return arr, np.array(base["joints3d"][0], np.float64), np.array(base["joints3d"][1], np.float64)


# --------------------------------------------------------------------------- pure numpy
def test_edits_on_pose_data(tmp_path):
    arr, a_true, _ = two_people_file(tmp_path / "t.npz")
    data = posefile.load(str(tmp_path / "t.npz"))
    merged, note = track_edit.merge(data, 1, 2)
    assert merged.person_ids.tolist() == [1, 4] and merged.valid[0].all() and "30 frames" in note
    np.testing.assert_allclose(merged.joints3d[0], a_true, atol=1e-6)
    split, _ = track_edit.split(merged, 1, 45)
    assert split.person_ids.tolist() == [1, 4, 5]
    assert np.flatnonzero(split.valid[0]).tolist() == list(range(45))
    assert np.flatnonzero(split.valid[2]).tolist() == list(range(45, F))
    swapped, _ = track_edit.swap_sides(merged, 1, 10, 19)
    np.testing.assert_array_equal(swapped.joints3d[0, 10:20], merged.joints3d[0, 10:20][:, posefile.FLIP_PERM])
    np.testing.assert_array_equal(swapped.joints3d[0, 20:], merged.joints3d[0, 20:])
    gone, _ = track_edit.delete(data, 4)
    assert gone.person_ids.tolist() == [1, 2]
    for bad, msg in (({"op": "delete", "person": 9}, "no person 9"), ({"op": "split", "person": 1, "frame": 40},
                     "both sides"), ({"op": "merge", "person": 1}, "missing"), ({"op": "swap_sides", "person": 1,
                     "start": 5, "end": 99}, "outside")):
        with pytest.raises(track_edit.EditError, match=msg):
            track_edit.apply_all(data, [bad])
    assert track_edit.parse_edits('{"edits": [{"op": "delete", "person": 4}]}') == [{"op": "delete", "person": 4}]
    with pytest.raises(track_edit.EditError, match="JSON"):
        track_edit.parse_edits("[{")


# --------------------------------------------------------------------------- in Blender
def world_joints(ob, frames, flip=False):
    """(len(frames), J, 3) evaluated joints of a mocap armature at scene frames, contract order
    (flip: the armature's left joints read as right)."""
    import bpy
    out = np.zeros((len(frames), len(JN), 3))
    for i, f in enumerate(frames):
        bpy.context.scene.frame_set(int(f))
        mw = ob.matrix_world
        for b in sk.BONES:
            pb = ob.pose.bones[b.name]
            out[i, JN.index(b.head)] = (mw @ pb.head)[:]
            out[i, JN.index(b.tail)] = (mw @ pb.tail)[:]
    return out[:, posefile.FLIP_PERM] if flip else out


def worst_mm(ob, frames, truth_cam, flip=False):
    got = world_joints(ob, np.asarray(frames) + 1, flip)
    return 1000 * np.linalg.norm(got - axes.cam_to_blender(truth_cam[frames]), axis=-1).max()


@pytest.mark.blender
def test_track_edits_in_blender_round_trip_save_reload_and_take_back(bpy_factory, tmp_path):
    bpy = bpy_factory
    import blender_mocap_addon as addon
    from blender_mocap_addon.blender import take_store

    arr, a_true, b_true = two_people_file(tmp_path / "t.npz")
    addon.register()
    try:
        assert bpy.ops.mocap.import_posefile(filepath=str(tmp_path / "t.npz")) == {'FINISHED'}
        scene = bpy.context.scene
        take = bpy.data.objects["Mocap_P1"]["mocap_take"]
        assert [p[0] for p in take_store.people(scene, take)] == [1, 2, 4]

        # delete the "false" person, merge A's two tracks
        assert bpy.ops.mocap.track_edit(op='DELETE', take=take, person=4) == {'FINISHED'}
        assert "Mocap_P4" not in bpy.data.objects
        assert bpy.ops.mocap.track_edit(op='MERGE', take=take, person=1, other=2) == {'FINISHED'}
        assert sorted(o.name for o in scene.objects if o.type == 'ARMATURE') == ["Mocap_P1"]
        ob = bpy.data.objects["Mocap_P1"]
        assert worst_mm(ob, [0, 15, 29, 30, 44, 59], a_true) < 1.0
        for f in (1, 60):                                 # shown over the whole merged track
            scene.frame_set(f)
            assert not ob.hide_viewport

        # swap left and right on scene frames 11..20, split at scene frame 41 (pose frame 40)
        assert bpy.ops.mocap.track_edit(op='SWAP', take=take, person=1, start=11, end=20) == {'FINISHED'}
        ob = bpy.data.objects["Mocap_P1"]
        assert worst_mm(ob, [10, 15, 19], a_true, flip=True) < 1.0
        assert worst_mm(ob, [9, 20, 40], a_true) < 1.0
        scene.frame_set(41)
        assert bpy.ops.mocap.track_edit(op='SPLIT', take=take, person=1) == {'FINISHED'}
        p1, p2 = bpy.data.objects["Mocap_P1"], bpy.data.objects["Mocap_P2"]
        assert worst_mm(p2, [40, 50, 59], a_true) < 1.0 and worst_mm(p1, [0, 39], a_true) < 1.0
        scene.frame_set(50)
        assert p1.hide_viewport and not p2.hide_viewport
        assert [e["op"] for e in take_store.edits(scene, take)] == ["delete", "merge", "swap_sides", "split"]

        # save, reload: the edited armatures and the stored data come back; take back the split
        path = str(tmp_path / "edited.blend")
        bpy.ops.wm.save_as_mainfile(filepath=path)
        bpy.ops.wm.read_factory_settings(use_empty=True)
        bpy.ops.wm.open_mainfile(filepath=path)
        scene = bpy.context.scene
        assert [p[0] for p in take_store.people(scene, take)] == [1, 2]
        assert worst_mm(bpy.data.objects["Mocap_P2"], [45], a_true) < 1.0
        assert bpy.ops.mocap.track_edit(op='UNDO', take=take) == {'FINISHED'}
        assert "Mocap_P2" not in bpy.data.objects
        assert worst_mm(bpy.data.objects["Mocap_P1"], [0, 50], a_true) < 1.0
        assert worst_mm(bpy.data.objects["Mocap_P1"], [12], a_true, flip=True) < 1.0

        # markers follow the edits: the take's own are replaced, nobody else's
        scene.timeline_markers.new("P1 weak 3-4", frame=3)        # same name pattern, not the take's
        assert bpy.ops.mocap.track_edit(op='SPLIT', take=take, person=1, frame=31) == {'FINISHED'}
        assert "P1 weak 3-4" in scene.timeline_markers
        assert bpy.ops.mocap.track_edit(op='UNDO', take=take) == {'FINISHED'}

        # a failing edit changes nothing
        before = sorted(bpy.data.objects.keys())
        with pytest.raises(RuntimeError, match="leave nobody"):          # the operator's error report
            bpy.ops.mocap.track_edit(op='DELETE', take=take, person=1)
        assert sorted(bpy.data.objects.keys()) == before
    finally:
        addon.unregister()


@pytest.mark.blender
def test_batch_npz_input_with_edit_list(bpy_factory, tmp_path, capsys):
    bpy = bpy_factory
    from blender_mocap_addon.blender import take_store
    from blender_mocap_addon.runner import batch

    _, a_true, _ = two_people_file(tmp_path / "t.npz")
    (tmp_path / "edits.json").write_text(json.dumps(
        {"edits": [{"op": "delete", "person": 4}, {"op": "merge", "person": 1, "with": 2}]}))
    out = tmp_path / "out"
    rc = batch.main(["--input", str(tmp_path / "t.npz"), "--output", str(out), "--edits",
                     str(tmp_path / "edits.json")])
    assert rc == 0, capsys.readouterr().err
    bpy.ops.wm.open_mainfile(filepath=str(out / "t.blend"))
    names = sorted(o.name for o in bpy.data.objects if o.type == 'ARMATURE')
    assert names == ["Mocap_P1"]
    assert worst_mm(bpy.data.objects["Mocap_P1"], [5, 35], a_true) < 1.0
    take = bpy.data.objects["Mocap_P1"]["mocap_take"]
    assert len(take_store.edits(bpy.context.scene, take)) == 2
    assert sorted(take_store.fetch(bpy.context.scene, take)[0].person_ids.tolist()) == [1, 2, 4]   # original kept

    (tmp_path / "bad.json").write_text('[{"op": "delete", "person": 9}]')
    rc = batch.main(["--pose-file", str(tmp_path / "t.npz"), "--output", str(out), "--edits",
                     str(tmp_path / "bad.json")])
    assert rc == 1 and "no person 9" in capsys.readouterr().err
