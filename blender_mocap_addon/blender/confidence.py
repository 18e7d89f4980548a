"""Confidence in the scene (thin bpy glue over ``core/confidence.py``).

Per armature: one animated custom property per joint on its pose bone (F-curves in the Graph
Editor), bone colours keyed by confidence level (Blender 4.0+ bone colours; older Blender
has none and the import says so), visibility keyed so the armature exists only while its
person does. Per scene: timeline markers over weak, interpolated and lost spans.
"""
from __future__ import annotations

import numpy as np

from . import keys as keys_bpy
from ..core import confidence as conf

#: Timeline markers the import made start with this (re-solving removes them by it).
MARKER_PREFIX = "P"


def channels(obj, scores: np.ndarray, valid: np.ndarray, frames: np.ndarray, frame_offset: int,
             joint_names, max_gap: int) -> list:
    """keys_bpy.Channel list for one person: confidence properties (created here on the pose
    bones), bone colours, visibility. scores (F, J), valid (F,); frames (K,) the keyed frames."""
    out = []
    f = np.asarray(frames, np.float64) + frame_offset
    has_colour = hasattr(obj.pose.bones[0], "color") if len(obj.pose.bones) else False
    for bone, prop, j in conf.joint_props(joint_names):
        pb = obj.pose.bones[bone]
        values = scores[frames, j]
        pb[prop] = float(values[0]) if len(values) else 0.0
        pb.id_properties_ui(prop).update(min=0.0, max=1.0, soft_min=0.0, soft_max=1.0,
                                         description="Joint confidence from the video (0..1)")
        out.append(keys_bpy.Channel(f'pose.bones["{bone}"]["{prop}"]', 0, f, values, bone))
        if has_colour and prop == conf.PROP_TAIL:
            pb.color.palette = 'CUSTOM'
            kf, lv = conf.level_changes(f, values)
            rgb = conf.LEVEL_RGB[lv]
            for i in range(3):
                out.append(keys_bpy.Channel(f'pose.bones["{bone}"].color.custom.normal', i, kf,
                                            rgb[:, i], bone, constant=True))
            pb.color.custom.select = (0.35, 0.6, 1.0)
            pb.color.custom.active = (0.6, 0.9, 1.0)
    kf, hidden = conf.visibility(valid, max_gap)
    kf = kf + frame_offset
    for path in ("hide_viewport", "hide_render"):
        out.append(keys_bpy.Channel(path, 0, kf, hidden, "Visibility", constant=True))
    obj.hide_viewport = obj.hide_render = bool(hidden[0])
    return out


def add_markers(scene, person_id: int, spans: list, frame_offset: int) -> list:
    """One timeline marker at the start of each span, named "P<id> <kind> <first>-<last>"
    (scene frames). Returns the markers."""
    out = []
    for s in spans:
        a, b = s.start + frame_offset, s.end + frame_offset
        out.append(scene.timeline_markers.new(f"{MARKER_PREFIX}{person_id} {s.kind} {a}-{b}", frame=a))
    return out


def is_mocap_marker(name: str) -> bool:
    head, _, rest = name.partition(" ")
    return (head.startswith(MARKER_PREFIX) and head[len(MARKER_PREFIX):].isdigit()
            and rest.split(" ")[0] in ("weak", "interpolated", "lost"))
