"""What one stage hands the next: small typed records instead of tuples (numpy only).

    detect   -> Detections  per frame      (boxes + scores)
    pose2d   -> FramePoses  per frame      (one pose per box)
    tracking -> PersonTrack2D per person   (dense over the run's frames, gaps filled)
    lifting  -> PersonMotion per person    (3D + 2D), which smoothing post-processes

A box is (cx, cy, size) in frame pixels (``inference.core.crops``). Letters: N people in a
frame, F frames, J joints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Detections:
    """People found in one frame, best first: boxes (N, 3) float32 (cx, cy, size) px,
    scores (N,) float32 in 0..1."""

    boxes: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 3)
        self.scores = np.asarray(self.scores, np.float32).reshape(-1)
        assert len(self.boxes) == len(self.scores), (self.boxes.shape, self.scores.shape)

    def __len__(self) -> int:
        return len(self.boxes)

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 3), np.float32), np.zeros(0, np.float32))

    def __add__(self, other: "Detections") -> "Detections":
        """Both lists, self's first (e.g. learned detections before the fallback's)."""
        return Detections(np.concatenate([self.boxes, other.boxes]), np.concatenate([self.scores, other.scores]))


@dataclass
class FramePoses:
    """The 2D poses of one frame's crops: joints (N, J, 2) float32 frame px (NaN for a box that
    could not be cropped), scores (N, J) float32 in 0..1."""

    joints: np.ndarray
    scores: np.ndarray

    def __post_init__(self):
        assert self.joints.ndim == 3 and self.joints.shape[-1] == 2, self.joints.shape
        assert self.scores.shape == self.joints.shape[:2], (self.joints.shape, self.scores.shape)

    def __len__(self) -> int:
        return len(self.joints)


@dataclass
class PersonTrack2D:
    """One tracked person's 2D over F frames: joints (F, J, 2) px (NaN where unseen),
    scores (F, J) (0 where unseen), valid (F,) bool, filled (F,) bool (interpolated frames)."""

    joints: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    filled: np.ndarray

    def __post_init__(self):
        F = len(self.valid)
        assert self.joints.shape[:1] == (F,) and self.joints.shape[-1] == 2, self.joints.shape
        assert self.scores.shape == self.joints.shape[:2] and self.filled.shape == (F,)


@dataclass
class PersonMotion:
    """One person's 3D sequence: joints3d (F, J, 3) m camera frame, joints2d (F, J, 2) px or
    None (3D only, e.g. evaluation), valid (F,) bool."""

    joints3d: np.ndarray
    joints2d: np.ndarray | None
    valid: np.ndarray

    def __post_init__(self):
        F = len(self.valid)
        assert self.joints3d.ndim == 3 and self.joints3d.shape[0] == F and self.joints3d.shape[-1] == 3, \
            (self.joints3d.shape, F)
        assert self.joints2d is None or self.joints2d.shape == self.joints3d.shape[:2] + (2,), \
            (self.joints2d.shape, self.joints3d.shape)
