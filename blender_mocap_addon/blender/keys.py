"""Bulk keyframes (thin bpy glue).

One F-curve per channel, filled with ``keyframe_points.add(n)`` and
``foreach_set('co', ...)`` - never one ``keyframe_insert`` per frame.  Works with
Blender 4.4+ layered ("slotted") actions, where F-curves live in a channelbag
of the action's slot, and with older Blender where they live in Action.fcurves.
"""
from __future__ import annotations

from dataclasses import dataclass

import bpy
import numpy as np

_INTERP = {}


@dataclass
class Channel:
    """data_path + array index; frames (K,) and values (K,) (float); group: F-curve group;
    constant: hold each key's value until the next (visibility, colour levels)."""
    data_path: str
    index: int
    frames: np.ndarray
    values: np.ndarray
    group: str = ""
    constant: bool = False


def is_layered(action) -> bool:
    return hasattr(action, "slots") and hasattr(action, "layers")


def new_action(name: str):
    """A new action; Blender suffixes the name (.001) if it is taken, never overwrites."""
    return bpy.data.actions.new(name)


def assign_action(obj, action):
    """Make ``action`` the active action of ``obj``; returns the slot (None before 4.4)."""
    ad = obj.animation_data or obj.animation_data_create()
    if is_layered(action):
        slot = None
        for s in action.slots:
            if s.target_id_type == 'OBJECT':
                slot = s
                break
        if slot is None:
            slot = action.slots.new(id_type='OBJECT', name=obj.name)
        ad.action = action
        if ad.action_slot != slot:
            ad.action_slot = slot
        return slot
    ad.action = action
    return None


def _fcurve_container(action, slot):
    """Object with ``fcurves.new`` and ``groups``: the slot's channelbag, or the action."""
    if not is_layered(action):
        return action
    try:
        from bpy_extras import anim_utils
        ensure = getattr(anim_utils, "action_ensure_channelbag_for_slot", None)
    except ImportError:          # pragma: no cover
        ensure = None
    if ensure is not None:
        return ensure(action, slot)
    layer = action.layers[0] if len(action.layers) else action.layers.new("Layer")
    strip = layer.strips[0] if len(layer.strips) else layer.strips.new(type='KEYFRAME')
    return strip.channelbag(slot, ensure=True)


def _interp_value(name: str = "LINEAR") -> int:
    if name not in _INTERP:
        items = bpy.types.Keyframe.bl_rna.properties["interpolation"].enum_items
        _INTERP[name] = items[name].value
    return _INTERP[name]


def write_channels(obj, action, channels, linear: bool = True) -> int:
    """Create and fill F-curves for ``channels`` on ``action`` (assigned to ``obj``).

    Existing F-curves with the same data path and index are replaced.  Frames
    must be increasing.  linear=True keys with LINEAR interpolation (what dense
    mocap wants); otherwise Bezier with handles recalculated.  Returns the
    number of keyframes written.
    """
    slot = assign_action(obj, action)
    bag = _fcurve_container(action, slot)
    groups = {}
    total = 0
    for ch in channels:
        frames = np.asarray(ch.frames, dtype=np.float32).ravel()
        values = np.asarray(ch.values, dtype=np.float32).ravel()
        assert frames.shape == values.shape, (frames.shape, values.shape)
        old = bag.fcurves.find(ch.data_path, index=ch.index)
        if old is not None:
            bag.fcurves.remove(old)
        if is_layered(action):
            fc = bag.fcurves.new(ch.data_path, index=ch.index)
            if ch.group:
                grp = groups.get(ch.group)
                if grp is None:
                    grp = bag.groups.get(ch.group) if hasattr(bag.groups, "get") else None
                    grp = grp or bag.groups.new(ch.group)
                    groups[ch.group] = grp
                fc.group = grp
        else:
            fc = bag.fcurves.new(ch.data_path, index=ch.index, action_group=ch.group)
        n = frames.size
        if n == 0:
            continue
        kp = fc.keyframe_points
        kp.add(n)
        co = np.empty((n, 2), dtype=np.float32)
        co[:, 0] = frames
        co[:, 1] = values
        flat = co.ravel()
        kp.foreach_set("co", flat)
        if linear or ch.constant:
            # keys arrive sorted; linear / constant segments need no handles, so the costly
            # fc.update() (sort + handle recalculation) is skipped
            mode = _interp_value("CONSTANT" if ch.constant else "LINEAR")
            kp.foreach_set("interpolation", np.full(n, mode, dtype=np.int32))
        else:
            fc.update()
        total += n
    return total


def fcurves_of(obj):
    """F-curves driving ``obj`` through its active action (and slot); [] if none."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        return []
    action = ad.action
    if not is_layered(action):
        return list(action.fcurves)
    slot = getattr(ad, "action_slot", None)
    if slot is None:
        return []
    for layer in action.layers:
        for strip in layer.strips:
            bag = strip.channelbag(slot)
            if bag is not None:
                return list(bag.fcurves)
    return []


def is_motion(fc) -> bool:
    """A pose channel (bone rotation / location), not confidence, colour or visibility."""
    return fc.data_path.endswith((".rotation_quaternion", ".location", ".rotation_euler", ".scale"))


def motion_frame_range(obj):
    """(first, last) key frame of ``obj``'s motion curves, None without any."""
    lo = hi = None
    for fc in fcurves_of(obj):
        if is_motion(fc) and len(fc.keyframe_points):
            a, b = fc.range()
            lo = a if lo is None else min(lo, a)
            hi = b if hi is None else max(hi, b)
    return None if lo is None else (lo, hi)


def read_channel(fc):
    """(frames (K,), values (K,)) float64 keyframe coordinates of one F-curve."""
    n = len(fc.keyframe_points)
    co = np.empty(2 * n, dtype=np.float32)
    fc.keyframe_points.foreach_get("co", co)
    co = co.reshape(n, 2).astype(np.float64)
    return co[:, 0], co[:, 1]
