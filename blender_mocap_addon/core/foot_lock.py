"""Foot locking (pure numpy): during a foot contact the ankle stays put.

Works on one person's joints in Blender world axes, on the frames that are keyed, before
the bone rotations are solved, so that the armature (bone lengths fixed to the medians)
shows the locked feet exactly. No IK rig is needed on the user's side: the result is plain
FK keys. Letters: K keyed frames, J joints, B bones.

1. Conform: rebuild the joints from the observed bone directions and the armature's bone
   lengths (this is what the armature shows, so positions below are exact for it).
2. Per foot (contacts column 0 = right ankle, 1 = left ankle, as in the pose file) and
   contact interval (consecutive frames in contact): the pin is the ankle's mean position
   over the interval (its height set to the floor when one is given). Inside the interval
   the ankle must move by ``D = pin - ankle``; D is interpolated linearly across the frames
   between intervals, and its weight ``W`` falls from 1 to 0 over ``blend`` frames on either
   side (half cosine), so a foot eases into and out of its pin.
3. Root: the whole body moves by C, the W-weighted mean of the feet's D (interpolated over
   frames where no foot has weight), lightly smoothed. One planted foot is then locked by
   the root alone; with both planted the legs take the rest.
4. Legs: two-bone IK from the moved hip to ``ankle + C + W (D - C)``, the knee kept in the
   plane of the observed knee (lengths exact). Where a target is out of reach the body moves
   the rest of the way (a few passes).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import rotations as rot
from . import skeleton as sk

#: Frames over which a foot eases into / out of its pin.
DEFAULT_BLEND = 4
#: Gaussian sigma (frames) of the root correction.
DEFAULT_ROOT_SMOOTHING = 1.5

LEGS = (("r_hip", "r_knee", "r_ankle", "thigh.R", "shin.R"),
        ("l_hip", "l_knee", "l_ankle", "thigh.L", "shin.L"))


@dataclass
class LockResult:
    """joints: (K, J, 3) locked joints (world, bone lengths as given); root_offset: (K, 3) C;
    intervals: per foot a list of (first, last) indices into the K frames; unreachable:
    frames where a target was out of the leg's reach before the body moved."""
    joints: np.ndarray
    root_offset: np.ndarray
    intervals: list
    unreachable: int = 0
    notes: list = field(default_factory=list)


def conform_lengths(joints: np.ndarray, lengths: np.ndarray, joint_names) -> np.ndarray:
    """(K, J, 3) joints -> (K, J, 3): each bone keeps its direction and gets ``lengths[b]``
    (B,), walking the tree from the pelvis (which stays where it is)."""
    joints = np.asarray(joints, dtype=np.float64)
    ji = sk.joint_indices(joint_names)
    out = joints.copy()
    for i, b in enumerate(sk.BONES):
        h, t = ji[b.head], ji[b.tail]
        d = rot.normalize(joints[:, t] - joints[:, h])
        out[:, t] = out[:, h] + lengths[i] * d
    return out


def intervals(contact: np.ndarray, frames: np.ndarray | None = None) -> list:
    """(first, last) index pairs (inclusive) of runs of True in ``contact`` (K,); a run also
    ends where ``frames`` (K,) jumps by more than one (a gap in the track)."""
    c = np.asarray(contact, dtype=bool)
    K = len(c)
    if frames is None:
        frames = np.arange(K)
    frames = np.asarray(frames)
    out, start = [], None
    for k in range(K):
        if c[k] and start is not None and frames[k] != frames[k - 1] + 1:
            out.append((start, k - 1))
            start = None
        if c[k] and start is None:
            start = k
        if not c[k] and start is not None:
            out.append((start, k - 1))
            start = None
    if start is not None:
        out.append((start, K - 1))
    return out


def _half_cosine(dist: np.ndarray, blend: float) -> np.ndarray:
    """1 at distance 0, 0 from ``blend + 1`` frames on, smooth in between."""
    x = np.clip(np.asarray(dist, float) / (blend + 1.0), 0.0, 1.0)
    return 0.5 * (1.0 + np.cos(np.pi * x))


def foot_targets(ankle: np.ndarray, runs: list, frames: np.ndarray, blend: float,
                 floor_z: float | None = None):
    """Offset D (K, 3) and weight W (K,) of one foot (see the module docstring)."""
    K = len(ankle)
    D = np.zeros((K, 3))
    W = np.zeros(K)
    if not runs:
        return D, W
    inside = np.zeros(K, bool)
    for s, e in runs:
        pin = ankle[s:e + 1].mean(axis=0)
        if floor_z is not None:
            pin[2] = floor_z
        D[s:e + 1] = pin - ankle[s:e + 1]
        inside[s:e + 1] = True
    f = np.asarray(frames, dtype=np.float64)
    fc = f[inside]
    for a in range(3):
        D[~inside, a] = np.interp(f[~inside], fc, D[inside, a])
    pos = np.searchsorted(fc, f)
    dist = np.minimum(np.abs(f - fc[np.clip(pos - 1, 0, len(fc) - 1)]),
                      np.abs(fc[np.clip(pos, 0, len(fc) - 1)] - f))
    W = _half_cosine(dist, blend)
    W[inside] = 1.0
    return D, W


def _smooth(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0 or len(x) < 2:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.concatenate([np.repeat(x[:1], r, 0), x, np.repeat(x[-1:], r, 0)], 0)
    out = np.zeros_like(x)
    for i, w in enumerate(k):
        out += w * pad[i:i + len(x)]
    return out


def two_bone_ik(hip, knee, target, l1, l2, forward):
    """Knee and ankle (K, 3) each: thigh ``l1`` and shin ``l2`` long from ``hip`` towards
    ``target``, the knee on the side of the observed ``knee`` (``forward`` (K, 3) when the
    leg is straight). Also returns the distance by which each target is out of reach (K,)."""
    v = target - hip
    d = np.linalg.norm(v, axis=-1)
    u = v / np.maximum(d, 1e-12)[:, None]
    lo, hi = abs(l1 - l2) + 1e-9, (l1 + l2) * (1.0 - 1e-9)
    excess = np.maximum(d - hi, 0.0)
    dc = np.clip(d, lo, hi)
    a = (l1 * l1 - l2 * l2 + dc * dc) / (2.0 * dc)
    h = np.sqrt(np.maximum(l1 * l1 - a * a, 0.0))
    pole = knee - hip
    pole = pole - np.sum(pole * u, -1, keepdims=True) * u
    n = np.linalg.norm(pole, axis=-1)
    fwd = forward - np.sum(forward * u, -1, keepdims=True) * u
    pole = np.where((n > 1e-6)[:, None], pole, fwd)
    pole = rot.normalize(pole)
    new_knee = hip + a[:, None] * u + h[:, None] * pole
    new_ankle = hip + dc[:, None] * u
    return new_knee, new_ankle, excess


def lock_feet(joints: np.ndarray, contacts: np.ndarray, lengths: np.ndarray, joint_names,
              frames: np.ndarray | None = None, floor_z: float | None = None,
              blend: float = DEFAULT_BLEND, root_smoothing: float = DEFAULT_ROOT_SMOOTHING,
              passes: int = 3) -> LockResult:
    """Lock the contact feet of one person.

    joints: (K, J, 3) world joints (Blender axes, Z up) of the keyed frames; contacts: (K, 2)
    bool (right, left ankle); lengths: (B,) the armature's bone lengths; frames: (K,) frame
    numbers (a jump splits a contact interval); floor_z: pin height (None: the mean ankle
    height of each interval). Returns a LockResult; joints outside the legs only move by the
    root offset.
    """
    j = conform_lengths(joints, lengths, joint_names)
    K = j.shape[0]
    contacts = np.asarray(contacts, dtype=bool)
    assert contacts.shape == (K, 2), (contacts.shape, K)
    frames = np.arange(K) if frames is None else np.asarray(frames)
    ji = sk.joint_indices(joint_names)
    names = list(sk.BONE_NAMES)
    runs = [intervals(contacts[:, k], frames) for k in range(2)]
    if not any(runs):
        return LockResult(joints=j, root_offset=np.zeros((K, 3)), intervals=runs)
    DW = [foot_targets(j[:, ji[LEGS[k][2]]], runs[k], frames, blend, floor_z) for k in range(2)]
    wsum = DW[0][1] + DW[1][1]
    C = np.zeros((K, 3))
    has = wsum > 1e-9
    C[has] = (DW[0][0][has] * DW[0][1][has, None] + DW[1][0][has] * DW[1][1][has, None]) / wsum[has, None]
    f = frames.astype(np.float64)
    for a in range(3):
        C[~has, a] = np.interp(f[~has], f[has], C[has, a])
    C = _smooth(C, root_smoothing)
    targets = []
    for k in range(2):
        D, W = DW[k]
        targets.append(j[:, ji[LEGS[k][2]]] + C + W[:, None] * (D - C))
    out = j + C[:, None, :]
    forward = np.cross(out[:, ji["l_hip"]] - out[:, ji["r_hip"]], np.array([0.0, 0.0, 1.0]))
    forward = rot.normalize(forward + 1e-9 * np.array([0.0, -1.0, 0.0]))
    unreachable = 0
    for it in range(passes):
        push = np.zeros((K, 3))
        pushed_w = np.zeros(K)
        for k, (hip, knee, ankle, thigh, shin) in enumerate(LEGS):
            l1, l2 = lengths[names.index(thigh)], lengths[names.index(shin)]
            H = out[:, ji[hip]]
            nk, na, excess = two_bone_ik(H, out[:, ji[knee]], targets[k], l1, l2, forward)
            out[:, ji[knee]] = nk
            out[:, ji[ankle]] = na
            W = DW[k][1]
            far = (excess > 1e-7) & (W > pushed_w)
            if far.any():
                u = rot.normalize(targets[k][far] - H[far])
                push[far] = excess[far, None] * u
                pushed_w[far] = W[far]
        moved = pushed_w > 0
        if it == 0:
            unreachable = int(moved.sum())
        if not moved.any():
            break
        C[moved] += push[moved]
        for k in range(2):   # a foot that is not pinned rides along with the body
            targets[k] = targets[k] + (1.0 - DW[k][1])[:, None] * push
        legs = {ji[n] for leg in LEGS for n in leg[1:3]}
        body = [i for i in range(j.shape[1]) if i not in legs]
        out[:, body] += push[:, None, :]
        # knee and ankle are redone by the next pass's IK from the moved hips
    notes = []
    if unreachable:
        notes.append(f"{unreachable} frames: a pinned foot was out of the leg's reach; the body moved")
    return LockResult(joints=out, root_offset=C, intervals=runs, unreachable=unreachable, notes=notes)


def foot_slide(ankles: np.ndarray, contacts: np.ndarray, frames: np.ndarray | None = None) -> float:
    """Mean ankle travel (m per frame) between consecutive frames where the same foot is in
    contact in both. ankles: (K, 2, 3) (right, left); contacts: (K, 2). NaN when no pair."""
    a = np.asarray(ankles, dtype=np.float64)
    c = np.asarray(contacts, dtype=bool)
    K = len(a)
    frames = np.arange(K) if frames is None else np.asarray(frames)
    step = (np.diff(frames) == 1)[:, None] & c[1:] & c[:-1]             # (K-1, 2)
    if not step.any():
        return float("nan")
    travel = np.linalg.norm(a[1:] - a[:-1], axis=-1)                     # (K-1, 2)
    return float(travel[step].mean())
