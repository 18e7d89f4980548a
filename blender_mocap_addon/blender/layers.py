"""Animation layers (thin bpy glue): the raw capture stays as a muted NLA strip under the
actions made on top of it (key reduction; retargeting keeps the user's action the same way),
so nothing is overwritten and the original is one click away in the NLA editor.
"""
from __future__ import annotations

import numpy as np

from . import keys as keys_bpy
from ..core import key_reduce
from ..errors import MocapError

#: NLA track holding the capture as imported.
RAW_TRACK = "Mocap raw capture"


def stash(obj, action, track_name: str):
    """``action`` as a strip on a new muted NLA track of ``obj`` (kept, shown, not playing);
    returns the track. A track of that name already holding ``action`` is reused."""
    ad = obj.animation_data or obj.animation_data_create()
    for tr in ad.nla_tracks:
        if tr.name == track_name and any(s.action == action for s in tr.strips):
            return tr
    track = ad.nla_tracks.new()
    track.name = track_name
    start = int(action.frame_range[0])
    strip = track.strips.new(action.name, start, action)
    slot = getattr(ad, "action_slot", None)
    if slot is not None and hasattr(strip, "action_slot") and strip.action_slot is None:
        try:
            strip.action_slot = slot
        except (TypeError, RuntimeError):       # a slot of another ID type: leave Blender's choice
            pass
    track.mute = True
    action.use_fake_user = True
    return track


def _groups(curves):
    """{(data_path): [fcurve by array index]} for quaternions / locations; others apart."""
    grouped, other = {}, []
    for fc in curves:
        if fc.data_path.endswith((".rotation_quaternion", ".location")):
            grouped.setdefault(fc.data_path, []).append(fc)
        else:
            other.append(fc)
    return grouped, other


def reduce_keys(obj, tolerance_deg: float = 0.5, tolerance_mm: float = 2.0) -> tuple:
    """A new action on ``obj`` with keys only where the curves depart from linear
    interpolation by more than the tolerances (rotations per bone in degrees, locations in mm);
    the action it had goes to the muted NLA track RAW_TRACK. Returns (keys before, keys after,
    new action name). Raises MocapError when ``obj`` has no action."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        raise MocapError(f"{obj.name!r} has no action to reduce")
    raw = ad.action
    curves = keys_bpy.fcurves_of(obj)
    grouped, other = _groups(curves)
    chans, before, after = [], 0, 0
    for path, fcs in grouped.items():
        fcs = sorted(fcs, key=lambda fc: fc.array_index)
        data = [keys_bpy.read_channel(fc) for fc in fcs]
        frames = data[0][0]
        if any(len(d[0]) != len(frames) or not np.array_equal(d[0], frames) for d in data):
            for fc, (f, v) in zip(fcs, data):      # keyed apart: copy as they are
                chans.append(keys_bpy.Channel(path, fc.array_index, f, v, fc.group.name if fc.group else ""))
            continue
        values = np.stack([d[1] for d in data], 1)
        if path.endswith(".rotation_quaternion") and len(fcs) == 4:
            keep = key_reduce.reduce(frames, values, tolerance_deg, key_reduce.quat_error_deg)
        else:
            keep = key_reduce.reduce(frames, values, tolerance_mm, key_reduce.location_error_mm)
        before += len(frames) * len(fcs)
        after += len(keep) * len(fcs)
        for fc, col in zip(fcs, values.T):
            chans.append(keys_bpy.Channel(path, fc.array_index, frames[keep], col[keep],
                                          fc.group.name if fc.group else ""))
    for fc in other:             # confidence, colours, visibility: as they are
        f, v = keys_bpy.read_channel(fc)
        const = len(fc.keyframe_points) > 0 and fc.keyframe_points[0].interpolation == 'CONSTANT'
        chans.append(keys_bpy.Channel(fc.data_path, fc.array_index, f, v,
                                      fc.group.name if fc.group else "", constant=const))
    stash(obj, raw, RAW_TRACK)
    action = keys_bpy.new_action(f"{raw.name}_reduced")
    keys_bpy.write_channels(obj, action, chans)
    return before, after, action.name
