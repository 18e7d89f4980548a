"""BVH motion-capture reader and forward kinematics (pure numpy).

Conventions (BVH as written by CMU/DAZ/Bandai exporters; see shared/data/README.md section 2):

* Each joint has an OFFSET (3,) from its parent and a list of CHANNELS.  Rotation channels are
  Euler angles in degrees, applied in the order listed: ``Zrotation Yrotation Xrotation`` means
  ``p_parent = Rz @ Ry @ Rx @ p_local + t`` (intrinsic order as written).
* Position channels (any joint, not only the root) *replace* the matching OFFSET component for
  that frame; a joint without position channels is translated by its OFFSET.
* ``End Site`` blocks become extra joints without channels, named ``<parent>_End``.

Nothing here knows which skeleton the file uses; the project mapping lives in ``mocap.py``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


class BVHError(ValueError):
    """Raised for a BVH text that cannot be parsed."""


_ROT = {"Xrotation": 0, "Yrotation": 1, "Zrotation": 2}
_POS = {"Xposition": 0, "Yposition": 1, "Zposition": 2}


@dataclass
class BVH:
    """A parsed BVH file.

    names: (J,) joint names in file order (End Sites included, named ``<parent>_End``).
    parents: (J,) int, parent index or -1 for the root.
    offsets: (J, 3) float64 offsets in file units.
    channels: per joint a list of channel names (empty for End Sites).
    channel_start: (J,) int, index of the joint's first channel in a motion row.
    motion: (F, C) float64 channel values.
    frame_time: seconds per frame.
    """

    names: list[str]
    parents: np.ndarray
    offsets: np.ndarray
    channels: list[list[str]]
    channel_start: np.ndarray
    motion: np.ndarray
    frame_time: float
    is_end_site: np.ndarray = field(default=None)

    @property
    def n_frames(self) -> int:
        return int(self.motion.shape[0])

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError as e:
            raise BVHError(f"joint {name!r} not in BVH") from e


def parse_bvh(text: str) -> BVH:
    """Parse BVH text (LF or CRLF line ends) into a :class:`BVH`."""
    tokens = text.replace("\r", " ").split()
    if not tokens or tokens[0] != "HIERARCHY":
        raise BVHError("missing HIERARCHY")
    names: list[str] = []
    parents: list[int] = []
    offsets: list[list[float]] = []
    channels: list[list[str]] = []
    end_site: list[bool] = []
    stack: list[int] = []
    i = 1
    n = len(tokens)
    pending = None  # index of the joint whose '{' we expect

    def add_joint(name: str, parent: int, is_end: bool) -> int:
        names.append(name)
        parents.append(parent)
        offsets.append([0.0, 0.0, 0.0])
        channels.append([])
        end_site.append(is_end)
        return len(names) - 1

    try:
        while i < n:
            t = tokens[i]
            if t in ("ROOT", "JOINT"):
                if t == "ROOT" and stack:
                    raise BVHError("ROOT inside another joint")
                pending = add_joint(tokens[i + 1], stack[-1] if stack else -1, False)
                i += 2
            elif t == "End":
                if tokens[i + 1] != "Site" or not stack:
                    raise BVHError("bad End Site")
                pending = add_joint(names[stack[-1]] + "_End", stack[-1], True)
                i += 2
            elif t == "{":
                if pending is None:
                    raise BVHError("unexpected '{'")
                stack.append(pending)
                pending = None
                i += 1
            elif t == "}":
                if not stack:
                    raise BVHError("unbalanced '}'")
                stack.pop()
                i += 1
            elif t == "OFFSET":
                offsets[stack[-1]] = [float(tokens[i + 1]), float(tokens[i + 2]), float(tokens[i + 3])]
                i += 4
            elif t == "CHANNELS":
                k = int(tokens[i + 1])
                ch = tokens[i + 2:i + 2 + k]
                for c in ch:
                    if c not in _ROT and c not in _POS:
                        raise BVHError(f"unknown channel {c!r}")
                channels[stack[-1]] = list(ch)
                i += 2 + k
            elif t == "MOTION":
                i += 1
                break
            else:
                raise BVHError(f"unexpected token {t!r} in HIERARCHY")
        else:
            raise BVHError("missing MOTION section")
        if stack:
            raise BVHError("unbalanced braces in HIERARCHY")
        if tokens[i] != "Frames:":
            raise BVHError("missing 'Frames:'")
        n_frames = int(tokens[i + 1])
        if tokens[i + 2] != "Frame" or tokens[i + 3] != "Time:":
            raise BVHError("missing 'Frame Time:'")
        frame_time = float(tokens[i + 4])
        i += 5
    except (IndexError, ValueError) as e:
        if isinstance(e, BVHError):
            raise
        raise BVHError(f"malformed BVH header: {e}") from e
    n_ch = sum(len(c) for c in channels)
    values = tokens[i:]
    if len(values) < n_frames * n_ch:
        raise BVHError(f"expected {n_frames}x{n_ch} motion values, got {len(values)}")
    motion = np.asarray(values[: n_frames * n_ch], dtype=np.float64).reshape(n_frames, n_ch)
    starts = np.cumsum([0] + [len(c) for c in channels[:-1]]).astype(np.int64)
    if frame_time <= 0:
        raise BVHError("non-positive frame time")
    return BVH(names, np.asarray(parents, np.int64), np.asarray(offsets, np.float64), channels,
               starts, motion, frame_time, np.asarray(end_site, bool))


def read_bvh(path) -> BVH:
    with open(path, "rb") as f:
        return parse_bvh(f.read().decode("ascii", errors="replace"))


def axis_rotation(axis: int, angle_rad: np.ndarray) -> np.ndarray:
    """Rotation matrices about one axis (0=x, 1=y, 2=z). angle_rad (F,) -> (F, 3, 3)."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    R = np.zeros(angle_rad.shape + (3, 3))
    a, b = [(1, 2), (2, 0), (0, 1)][axis]
    R[..., axis, axis] = 1.0
    R[..., a, a] = c
    R[..., b, b] = c
    R[..., a, b] = -s
    R[..., b, a] = s
    return R


def local_transforms(bvh: BVH, frames=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-joint local rotation (F, J, 3, 3) and translation (F, J, 3) in file units."""
    motion = bvh.motion if frames is None else bvh.motion[frames]
    F, J = motion.shape[0], len(bvh.names)
    R = np.broadcast_to(np.eye(3), (F, J, 3, 3)).copy()
    T = np.broadcast_to(bvh.offsets, (F, J, 3)).copy()
    for j, chans in enumerate(bvh.channels):
        s = bvh.channel_start[j]
        for k, c in enumerate(chans):
            v = motion[:, s + k]
            if c in _POS:
                T[:, j, _POS[c]] = v
            else:
                R[:, j] = R[:, j] @ axis_rotation(_ROT[c], np.deg2rad(v))
    return R, T


def forward_kinematics(bvh: BVH, frames=None) -> tuple[np.ndarray, np.ndarray]:
    """World joint positions (F, J, 3) and world rotations (F, J, 3, 3), in file units.

    Vectorised over frames; joints are visited in file order (parents come first).
    """
    R, T = local_transforms(bvh, frames)
    F, J = R.shape[:2]
    Rg = np.empty_like(R)
    P = np.empty_like(T)
    for j in range(J):
        p = bvh.parents[j]
        if p < 0:
            Rg[:, j] = R[:, j]
            P[:, j] = T[:, j]
        else:
            Rg[:, j] = Rg[:, p] @ R[:, j]
            P[:, j] = P[:, p] + np.einsum("fab,fb->fa", Rg[:, p], T[:, j])
    return P, Rg
