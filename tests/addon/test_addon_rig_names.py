"""Rig kinds found by their bone names (issue 28, item 4): Mixamo with any prefix, Unreal Engine
mannequin, VRM humanoid and VRoid names; the map used and what it matched are reported. The
bpy test builds the rigs and checks every mapped bone points as the mocap bone does."""
import math

import numpy as np
import pytest

import posefile
from blender_mocap_addon.core import bonemap as bm, synthetic


def _mixamo_names(prefix):
    return [prefix + n for n in ("Hips", "Spine", "Spine1", "Spine2", "Neck", "Head", "LeftShoulder",
                                 "LeftArm", "LeftForeArm", "LeftHand", "RightShoulder", "RightArm",
                                 "RightForeArm", "RightHand", "LeftUpLeg", "LeftLeg", "LeftFoot",
                                 "RightUpLeg", "RightLeg", "RightFoot")]


UE5 = ["root", "pelvis", "spine_01", "spine_02", "spine_03", "spine_04", "spine_05", "neck_01", "neck_02",
       "head"] + [f"{b}_{s}" for s in "lr" for b in ("clavicle", "upperarm", "lowerarm", "hand", "thigh",
                                                      "calf", "foot", "ball")]
VRM = ["hips", "spine", "chest", "upperChest", "neck", "head"] + [
    f"{s}{b}" for s in ("left", "right") for b in ("Shoulder", "UpperArm", "LowerArm", "Hand", "UpperLeg",
                                                   "LowerLeg", "Foot")]
VROID = ["Root", "J_Bip_C_Hips", "J_Bip_C_Spine", "J_Bip_C_Chest", "J_Bip_C_UpperChest", "J_Bip_C_Neck",
         "J_Bip_C_Head"] + [f"J_Bip_{s}_{b}" for s in "LR" for b in ("Shoulder", "UpperArm", "LowerArm",
                                                                    "Hand", "UpperLeg", "LowerLeg", "Foot")]


@pytest.mark.parametrize("names,label,thigh_l", [
    (_mixamo_names("mixamorig:"), "Mixamo", "mixamorig:LeftUpLeg"),
    (_mixamo_names("mixamorig12:"), "Mixamo (prefix 'mixamorig12:')", "mixamorig12:LeftUpLeg"),
    (_mixamo_names("Armature_"), "Mixamo (prefix 'Armature_')", "Armature_LeftUpLeg"),
    (_mixamo_names(""), "Mixamo (prefix '')", "LeftUpLeg"),
    (UE5, "Unreal Engine mannequin", "thigh_l"),
    (VRM, "VRM humanoid", "leftUpperLeg"),
    (VROID, "VRoid (VRM)", "J_Bip_L_UpperLeg"),
])
def test_rig_kind_detected_from_names(names, label, thigh_l):
    m = bm.best_map(names)
    assert m.name == label and m.bones["thigh.L"] == thigh_l and not m.missing(names)
    assert bm.describe(m).endswith("13 of 13 mocap bones matched")


def test_partial_rig_says_what_is_left_out():
    names = [n for n in UE5 if not n.startswith("calf")]
    m = bm.best_map(names)
    assert "shin.L" not in m.bones and "not matched: shin.R, shin.L" in bm.describe(m)


# --------------------------------------------------------------------------- in Blender
def _rig_bones(name_of):
    """A T-ish rig in metres (Z up, facing -Y), bones named by ``name_of(kind, side)``."""
    B = [("hips", None, (0, 0, 1.0), (0, 0, 1.1), None), ("spine1", None, (0, 0, 1.1), (0, 0, 1.34), "hips"),
         ("neck", None, (0, 0, 1.48), (0, 0, 1.58), "spine1"), ("head", None, (0, 0, 1.58), (0, 0, 1.78), "neck")]
    for s, side in ((1, "L"), (-1, "R")):
        B += [("shoulder", side, (s * 0.05, 0, 1.44), (s * 0.17, 0, 1.45), ("spine1", None)),
              ("upper_arm", side, (s * 0.17, 0, 1.45), (s * 0.45, 0, 1.30), ("shoulder", side)),
              ("forearm", side, (s * 0.45, 0, 1.30), (s * 0.70, 0, 1.15), ("upper_arm", side)),
              ("thigh", side, (s * 0.09, 0, 0.95), (s * 0.09, 0, 0.52), ("hips", None)),
              ("shin", side, (s * 0.09, 0, 0.52), (s * 0.09, 0, 0.09), ("thigh", side))]
    out = []
    for kind, side, h, t, parent in B:
        if isinstance(parent, str):
            parent = (parent, None)
        out.append((name_of(kind, side), h, t, name_of(*parent) if parent else None))
    return out


_MIXAMO = {"hips": "Hips", "spine1": "Spine1", "neck": "Neck", "head": "Head", "shoulder": "Shoulder",
           "upper_arm": "Arm", "forearm": "ForeArm", "thigh": "UpLeg", "shin": "Leg"}
_UE = {"hips": "pelvis", "spine1": "spine_01", "neck": "neck_01", "head": "head", "shoulder": "clavicle",
       "upper_arm": "upperarm", "forearm": "lowerarm", "thigh": "thigh", "shin": "calf"}


@pytest.mark.blender
@pytest.mark.parametrize("kind", ["mixamo_prefix", "ue"])
def test_auto_detected_rig_follows_the_mocap_bones(bpy_factory, tmp_path, kind):
    bpy = bpy_factory
    from blender_mocap_addon.blender import import_posefile, retarget as rb
    if kind == "mixamo_prefix":
        def name_of(k, side):
            return "mixamorig7:" + ({"L": "Left", "R": "Right"}.get(side, "")) + _MIXAMO[k]
    else:
        def name_of(k, side):
            return _UE[k] + (f"_{side.lower()}" if side else "")
    arm = bpy.data.armatures.new("Rig")
    tgt = bpy.data.objects.new("Rig", arm)
    bpy.context.scene.collection.objects.link(tgt)
    bpy.context.view_layer.objects.active = tgt
    bpy.ops.object.mode_set(mode='EDIT')
    for n, h, t, p in _rig_bones(name_of):
        eb = arm.edit_bones.new(n)
        eb.head, eb.tail = h, t
        if p:
            eb.parent = arm.edit_bones[p]
    bpy.ops.object.mode_set(mode='OBJECT')
    posefile.write_posefile(str(tmp_path / "r.npz"), **synthetic.pose_arrays(1, 30, seed=5))
    src = bpy.data.objects[import_posefile.load(str(tmp_path / "r.npz"), report=lambda m: None).armatures[0]]
    lines = []
    rb.retarget(src, tgt, None, report=lines.append, plant_feet=False)      # None: detect the rig
    assert any("13 of 13 mocap bones matched" in ln for ln in lines), lines
    bone_map = bm.best_map([b.name for b in arm.bones])
    worst = 0.0
    for f in (1, 15, 30):
        bpy.context.scene.frame_set(f)
        for ours, theirs in bone_map.bones.items():
            if ours in ("spine", "neck", "head"):      # the torso block takes the rotation as is
                continue
            a = src.matrix_world @ src.pose.bones[ours].tail - src.matrix_world @ src.pose.bones[ours].head
            b = tgt.matrix_world @ tgt.pose.bones[theirs].tail - tgt.matrix_world @ tgt.pose.bones[theirs].head
            worst = max(worst, math.degrees(a.angle(b)))
    assert worst < 0.5, worst
    assert np.isfinite(worst)
