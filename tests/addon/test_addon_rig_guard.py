"""Retargeting refuses bones that constraints drive (issue 28): keys on them would not move the
rig, e.g. the 'Rigify DEF-' preset on a generated Rigify rig. The slow test generates the rig
with Rigify itself (it ships with bpy)."""
import numpy as np
import pytest

import posefile
from blender_mocap_addon.core import bonemap as bm, synthetic

pytestmark = pytest.mark.blender


def _mocap(bpy, tmp_path):
    from blender_mocap_addon.blender import import_posefile
    posefile.write_posefile(str(tmp_path / "r.npz"), **synthetic.pose_arrays(1, 20))
    res = import_posefile.load(str(tmp_path / "r.npz"), report=lambda m: None)
    return bpy.data.objects[res.armatures[0]]


def test_constraint_driven_bones_are_found(bpy_factory):
    bpy = bpy_factory
    from blender_mocap_addon.blender import retarget as rb
    arm = bpy.data.armatures.new("R")
    ob = bpy.data.objects.new("R", arm)
    bpy.context.scene.collection.objects.link(ob)
    bpy.context.view_layer.objects.active = ob
    bpy.ops.object.mode_set(mode='EDIT')
    for name in ("ORG-a", "DEF-a", "free"):
        arm.edit_bones.new(name).tail = (0, 0, 1)
    bpy.ops.object.mode_set(mode='OBJECT')
    c = ob.pose.bones["DEF-a"].constraints.new('COPY_TRANSFORMS')
    c.target, c.subtarget = ob, "ORG-a"
    m = bm.BoneMap(name="t", bones={"spine": "DEF-a", "neck": "free"})
    assert rb.constraint_driven(ob, m) == [("DEF-a", "COPY_TRANSFORMS")]
    c.influence = 0.5                                   # a partial constraint leaves the keys some say
    assert rb.constraint_driven(ob, m) == []


@pytest.mark.slow
def test_rigify_def_preset_refuses_on_a_generated_rig_and_fk_controls_work(bpy_factory, tmp_path):
    bpy = bpy_factory
    import addon_utils
    from blender_mocap_addon.blender import retarget as rb
    from blender_mocap_addon.errors import MocapError
    addon_utils.enable("rigify", default_set=True)
    bpy.ops.object.armature_human_metarig_add()
    meta = bpy.context.active_object
    bpy.ops.pose.rigify_generate()
    rig = next(o for o in bpy.data.objects if o.type == 'ARMATURE' and o is not meta)
    src = _mocap(bpy, tmp_path)
    for preset in ("RIGIFY_DEF", "RIGIFY_ORG"):
        with pytest.raises(MocapError, match="follow constraints.*FK controls"):
            rb.retarget(src, rig, bm.preset(preset), report=lambda m: None)
        assert rig.animation_data is None or rig.animation_data.action is None   # nothing keyed
    rep = rb.retarget(src, rig, bm.preset("RIGIFY_CONTROLS"), report=lambda m: None)
    assert len(rep.bones) >= 10 and rig.animation_data.action is not None
    assert np.isfinite(rep.frames)
