"""Clean layers (issue 28, item 3): key reduction keeps keys only where the curve departs
from linear interpolation by more than the tolerance, in a new action; the raw capture stays
as a muted NLA strip; retargeting keeps the user's action on an NLA track too."""
import numpy as np
import pytest

import posefile
from blender_mocap_addon.core import key_reduce, rotations as rot, synthetic


def test_reduce_keeps_error_within_tolerance():
    t = np.arange(300, dtype=float)
    pos = np.stack([0.1 * np.sin(t / 20), 0.1 * np.cos(t / 35), 0.01 * t], 1)   # metres
    keep = key_reduce.reduce(t, pos, 2.0)
    assert keep[0] == 0 and keep[-1] == 299 and len(keep) < 100
    approx = np.stack([np.interp(t, t[keep], pos[keep, i]) for i in range(3)], 1)
    assert key_reduce.location_error_mm(approx, pos).max() <= 2.0
    line = np.stack([t, 2 * t], 1) * 0.001
    assert key_reduce.reduce(t, line, 0.01).tolist() == [0, 299]               # a straight line: 2 keys
    ang = t / 50.0
    q = np.stack([np.cos(ang / 2), np.sin(ang / 2), 0 * t, 0 * t], 1)
    keep = key_reduce.reduce(t, q, 0.5, key_reduce.quat_error_deg)
    approx = np.stack([np.interp(t, t[keep], q[keep, i]) for i in range(4)], 1)
    assert key_reduce.quat_error_deg(approx, q).max() <= 0.5 and len(keep) < 60
    assert np.allclose(rot.normalize_quat(q), q)


@pytest.mark.blender
def test_reduce_keys_operator_new_action_over_raw_strip(bpy_factory, tmp_path):
    bpy = bpy_factory
    import blender_mocap_addon as addon
    from blender_mocap_addon.blender import keys as keys_bpy, layers
    posefile.write_posefile(str(tmp_path / "r.npz"), **synthetic.pose_arrays(1, 120, seed=2))
    addon.register()
    try:
        assert bpy.ops.mocap.import_posefile(filepath=str(tmp_path / "r.npz")) == {'FINISHED'}
        ob = bpy.data.objects["Mocap_P1"]
        raw = ob.animation_data.action
        bpy.context.view_layer.objects.active = ob
        ob.select_set(True)
        frames = [1, 33, 77, 120]

        def dirs():
            out = []
            for f in frames:
                bpy.context.scene.frame_set(f)
                out.append([np.array((pb.tail - pb.head).normalized()) for pb in ob.pose.bones])
            return np.array(out)
        before = dirs()
        n_raw = sum(len(fc.keyframe_points) for fc in keys_bpy.fcurves_of(ob) if keys_bpy.is_motion(fc))
        assert bpy.ops.mocap.reduce_keys(tolerance_deg=0.5, tolerance_mm=2.0) == {'FINISHED'}
        act = ob.animation_data.action
        assert act is not raw and act.name.endswith("_reduced") and raw.name in bpy.data.actions
        n_new = sum(len(fc.keyframe_points) for fc in keys_bpy.fcurves_of(ob) if keys_bpy.is_motion(fc))
        assert n_new < 0.6 * n_raw
        track = ob.animation_data.nla_tracks[layers.RAW_TRACK]
        assert track.mute and track.strips[0].action == raw
        # each bone within about the rotation tolerance of the capture (errors add up a chain)
        ang = np.degrees(np.arccos(np.clip(np.sum(dirs() * before, -1), -1, 1)))
        assert ang.max() < 2.0, ang.max()
        assert any("mocap_conf" in fc.data_path for fc in keys_bpy.fcurves_of(ob))    # confidence kept
    finally:
        addon.unregister()
