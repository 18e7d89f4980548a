"""What an animator can trust: per-joint confidence on the bones, weak / interpolated / lost
spans, when a person exists, and a colour per confidence level (pure numpy).

The pose file gives a confidence (0..1) per person, frame and joint. On the armature each
joint belongs to the pose bone whose tail it is (the pelvis, the only joint that is no bone's
tail, to the root bone's head). The glue (``blender/confidence.py``) keys these values as custom
properties, keys the bone colours by level and the object's visibility, and adds markers.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import skeleton as sk

#: Custom property on a pose bone: confidence of its tail joint; the root bone also carries
#: its head joint's (the pelvis).
PROP_TAIL = "mocap_conf"
PROP_HEAD = "mocap_conf_head"

#: Mean joint confidence of a frame below which the person is "weak" there.
WEAK = 0.4
#: Shortest weak span (frames) worth a marker; weak runs closer than this join.
MIN_SPAN = 3
#: Levels for the bone colours: below LOW red, below HIGH yellow, else green.
LOW, HIGH = 0.3, 0.6
LEVEL_RGB = np.array([(0.9, 0.1, 0.1), (0.95, 0.75, 0.1), (0.15, 0.8, 0.2)], np.float32)


def joint_props(joint_names) -> list:
    """[(bone name, property name, joint index)] for every joint of the contract."""
    index = {n: i for i, n in enumerate(joint_names)}
    out = [(b.name, PROP_TAIL, index[b.tail]) for b in sk.BONES]
    out.append((sk.ROOT_BONE, PROP_HEAD, index[sk.ROOT_JOINT]))
    return out


def levels(conf: np.ndarray) -> np.ndarray:
    """Colour level per value: 0 low, 1 middle, 2 high (int8, same shape)."""
    conf = np.asarray(conf)
    return ((conf >= LOW).astype(np.int8) + (conf >= HIGH).astype(np.int8))


def level_changes(frames: np.ndarray, conf: np.ndarray):
    """(frames, levels) at the first frame and wherever the level changes: keys for a
    constant-interpolated colour. frames (K,) increasing, conf (K,)."""
    lv = levels(conf)
    keep = np.ones(len(lv), bool)
    keep[1:] = lv[1:] != lv[:-1]
    return np.asarray(frames)[keep], lv[keep]


@dataclass(frozen=True)
class Span:
    """Frames ``start..end`` (inclusive, pose-file indices) of one kind: "weak" (present, mean
    confidence below WEAK), "interpolated" (frames the engine filled across a short dropout, or a
    short dropout the keys bridge), "lost" (a longer dropout: the armature is hidden)."""
    kind: str
    start: int
    end: int


def _runs(mask: np.ndarray):
    """(start, end inclusive) of each run of True."""
    m = np.concatenate([[False], np.asarray(mask, bool), [False]])
    d = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(d[::2].tolist(), (d[1::2] - 1).tolist()))


def spans(valid: np.ndarray, scores: np.ndarray, max_gap: int, weak: float = WEAK,
          filled: np.ndarray | None = None) -> list:
    """Spans of one person, in frame order. valid (F,) bool; scores (F, J); max_gap: dropouts of
    at most this many frames count as interpolated, longer ones as lost; filled (F,) bool or
    None: the pose file's frames the engine interpolated (valid, but not seen), marked
    interpolated and never weak (their scores are the guess's, lowered on purpose). Frames
    before the first and after the last valid frame are outside the track: no span."""
    valid = np.asarray(valid, bool)
    filled = np.zeros_like(valid) if filled is None else np.asarray(filled, bool) & valid
    out = []
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return out
    first, last = int(idx[0]), int(idx[-1])
    inside = np.zeros_like(valid)
    inside[first:last + 1] = True
    gap = inside & ~valid
    lost = _long_runs(gap, max_gap)
    out += [Span("lost", a, b) for a, b in _runs(lost)]
    # a dropout the keys bridge and frames the engine filled next to it read as one span
    out += [Span("interpolated", a, b) for a, b in _runs(filled | (gap & ~lost))]
    seen = valid & ~filled
    mean = np.asarray(scores, np.float64).mean(axis=1)
    low = seen & (mean < weak)
    # a score flickering about the threshold must not give one marker per frame: weak runs
    # closer than MIN_SPAN frames join, and shorter ones are dropped
    for a, b in _runs(~low):
        if a > 0 and b < len(low) - 1 and b - a + 1 < MIN_SPAN:
            low[a:b + 1] = seen[a:b + 1]
    for a, b in _runs(low):
        if b - a + 1 >= MIN_SPAN:
            out.append(Span("weak", a, b))
    return sorted(out, key=lambda s: (s.start, s.kind))


def _long_runs(mask: np.ndarray, max_gap: int) -> np.ndarray:
    """mask restricted to its runs longer than max_gap."""
    out = np.zeros_like(mask)
    for a, b in _runs(mask):
        if b - a + 1 > max_gap:
            out[a:b + 1] = True
    return out


def visibility(valid: np.ndarray, max_gap: int):
    """(frames, hidden) keys, constant interpolation, for one person: hidden (1.0) before the
    first valid frame, during lost dropouts (longer than max_gap) and after the last valid
    frame; shown (0.0) elsewhere. Frames are pose-file indices; F = len(valid)."""
    valid = np.asarray(valid, bool)
    idx = np.flatnonzero(valid)
    if idx.size == 0:
        return np.zeros(1), np.ones(1)
    shown = np.zeros_like(valid)
    shown[idx[0]:idx[-1] + 1] = True
    for a, b in _runs(shown & ~valid):
        if b - a + 1 > max_gap:
            shown[a:b + 1] = False
    hidden = (~shown).astype(np.float64)
    change = np.flatnonzero(hidden[1:] != hidden[:-1]) + 1
    frames = np.concatenate([[0], change])
    return frames.astype(np.float64), hidden[frames]


def mean_confidence(valid: np.ndarray, scores: np.ndarray) -> float:
    """Mean joint confidence over a person's valid frames (0 when none)."""
    valid = np.asarray(valid, bool)
    return float(np.asarray(scores)[valid].mean()) if valid.any() else 0.0
