"""Interpolated spans from the pose file's ``filled`` frames (the engine's own gap filling): the
pure span logic, track edits carrying ``filled``, and timeline markers over filled frames under
real bpy, through a track edit and a save/reload of the stored take."""
import numpy as np
import pytest

from blender_mocap_addon.core import confidence as conf, synthetic, track_edit
import posefile


def test_filled_frames_are_interpolated_spans_not_weak():
    F = 60
    valid = np.zeros(F, bool)
    valid[5:55] = True
    valid[40:43] = False                   # a dropout the file left open: bridged by the keys
    filled = np.zeros(F, bool)
    filled[20:26] = True                   # the engine filled 20..25 (scores halved: weak-looking)
    filled[43:45] = True                   # ... and 43..44, right after the open dropout
    scores = np.full((F, 16), 0.9)
    scores[20:26] = 0.2
    scores[43:45] = 0.2
    got = [(s.kind, s.start, s.end) for s in conf.spans(valid, scores, max_gap=5, filled=filled)]
    assert got == [("interpolated", 20, 25), ("interpolated", 40, 44)]
    # without 'filled' (older files) the same frames read as weak, as before
    old = [(s.kind, s.start, s.end) for s in conf.spans(valid, scores, max_gap=5)]
    assert old == [("weak", 20, 25), ("interpolated", 40, 42)]
    # filled outside valid frames is ignored
    assert conf.spans(valid, scores, 5, filled=~valid) == conf.spans(valid, scores, 5)


def _two_people(F=80):
    arr = synthetic.pose_arrays(2, F, gaps=False)
    arr["filled"] = np.zeros((2, F), bool)
    arr["filled"][0, 30:36] = True          # person 0: frames 30..35 interpolated
    arr["filled"][1, 60:64] = True          # person 1: frames 60..63 interpolated
    arr["scores"][arr["filled"]] *= 0.4     # as the engine lowers a guess's scores
    return arr


def test_track_edits_carry_filled(tmp_path):
    d = posefile.write_posefile(tmp_path / "f.npz", **_two_people())
    a, b = (int(i) for i in d.person_ids)
    split, _ = track_edit.split(d, a, 33)
    assert split.filled[0].nonzero()[0].tolist() == [30, 31, 32]
    assert split.filled[2].nonzero()[0].tolist() == [33, 34, 35]
    merged, _ = track_edit.merge(split, a, int(split.person_ids[2]))
    np.testing.assert_array_equal(merged.filled, d.filled)
    gone, _ = track_edit.delete(d, a)
    assert gone.filled.shape == (1, 80) and gone.filled[0, 60:64].all()
    swapped, _ = track_edit.swap_sides(d, b, 10, 20)
    np.testing.assert_array_equal(swapped.filled, d.filled)
    # data without 'filled' stays without it
    d.filled = None
    assert track_edit.split(d, a, 33)[0].filled is None


@pytest.mark.blender
def test_markers_over_filled_frames(bpy_factory, tmp_path):
    bpy = bpy_factory
    from blender_mocap_addon.blender import import_posefile, track_edit_bpy

    path = tmp_path / "filled.npz"
    arr = _two_people()
    posefile.write_posefile(path, **arr)
    res = import_posefile.load(str(path), import_posefile.ImportOptions(frame_offset=1), report=lambda m: None)
    s = bpy.context.scene
    p0, p1 = res.person_ids
    names = sorted(m.name for m in s.timeline_markers)
    # scene frames = pose-file frames + 1; nothing weak although the filled frames' scores are low
    assert names == sorted([f"P{p0} interpolated 31-36", f"P{p1} interpolated 61-64"])
    assert {m.frame for m in s.timeline_markers if m.name.startswith(f"P{p0} ")} == {31}
    # the armature is shown over its filled frames
    s.frame_set(33)
    assert not bpy.data.objects[res.armatures[0]].hide_viewport

    # a split inside the filled span: each part keeps its own filled frames' marker
    take = res.take
    after = track_edit_bpy.apply_edits(s, take, [{"op": "split", "person": p0, "frame": 33}],
                                       report=lambda m: None)
    new_id = max(after.person_ids)
    names = sorted(m.name for m in s.timeline_markers)
    assert names == sorted([f"P{p0} interpolated 31-33", f"P{new_id} interpolated 34-36",
                            f"P{p1} interpolated 61-64"])

    # the stored take keeps 'filled' through save and reload
    blend = str(tmp_path / "f.blend")
    bpy.ops.wm.save_as_mainfile(filepath=blend)
    bpy.ops.wm.open_mainfile(filepath=blend)
    s = bpy.context.scene
    data, _, _ = track_edit_bpy.current(s, take)
    assert data.filled is not None and data.filled.sum() == 10
    track_edit_bpy.undo_last(s, take, report=lambda m: None)
    assert sorted(m.name for m in s.timeline_markers) == sorted(
        [f"P{p0} interpolated 31-36", f"P{p1} interpolated 61-64"])
