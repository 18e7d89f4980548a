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
    # the FK controls follow the mocap bones exactly through Rigify's own parenting (FK arm
    # parents and the head copy the root / torso rotation; ORG- bones copy the controls)
    m = bm.preset("RIGIFY_CONTROLS")
    rep = rb.retarget(src, rig, m, report=lambda m: None, plant_feet=False)
    assert len(rep.bones) == 13 and rig.animation_data.action is not None
    worst = {}
    for f in (1, 7, 14, 20):
        bpy.context.scene.frame_set(f)
        for ours, theirs in m.bones.items():
            if ours == "spine":                  # the torso control: the rotation as is, no direction
                continue
            org = {"neck": "neck", "head": "head"}.get(ours, "ORG-" + ours)   # what the DEF bones copy
            for bone in (theirs, org):
                a = src.matrix_world @ src.pose.bones[ours].tail - src.matrix_world @ src.pose.bones[ours].head
                b = rig.matrix_world @ rig.pose.bones[bone].tail - rig.matrix_world @ rig.pose.bones[bone].head
                worst[bone] = max(worst.get(bone, 0.0), np.degrees(a.angle(b)))
    assert max(worst.values()) < 2.0, worst
