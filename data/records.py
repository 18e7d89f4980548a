"""One row per annotated person, shared by the multi-person readers (MPII, COCO) and the crop
cache in ``lsp``; what makes a person usable for training."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_JOINTS = 6            # fewer labelled joints than this: the person is skipped
MIN_PERSON_SIZE = 48.0    # person box (longer side, image px) below this: skipped


class DatasetError(ValueError):
    """Missing or malformed annotations or images of a training data set."""


@dataclass
class PersonRecords:
    """One row per annotated person.

    images (N,) str image paths; joints (N, 16, 2) float32 image px in our joint order;
    visible (N, 16) bool (the joint is labelled: trained on, else masked out of the loss);
    boxes (N, 3) float32 person box (cx, cy, size) in image px that the crop is cut around;
    is_test (N,) bool held out; names (N,) str, e.g. "015601864.jpg#1" (image # person).
    """
    images: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    boxes: np.ndarray
    is_test: np.ndarray
    names: np.ndarray

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, idx) -> "PersonRecords":
        return PersonRecords(self.images[idx], self.joints[idx], self.visible[idx], self.boxes[idx],
                             self.is_test[idx], self.names[idx])

    @staticmethod
    def from_rows(rows: list[tuple]) -> "PersonRecords":
        """rows of (image path, joints (16, 2), visible (16,), box (3,), is_test, name)."""
        if not rows:
            return PersonRecords(np.zeros(0, str), np.zeros((0, 16, 2), np.float32), np.zeros((0, 16), bool),
                                 np.zeros((0, 3), np.float32), np.zeros(0, bool), np.zeros(0, str))
        img, j, v, b, t, n = zip(*rows)
        return PersonRecords(np.array(img), np.stack(j).astype(np.float32), np.stack(v).astype(bool),
                             np.stack(b).astype(np.float32), np.array(t, bool), np.array(n))

    @staticmethod
    def concat(parts: list["PersonRecords"]) -> "PersonRecords":
        parts = [p for p in parts if len(p)]
        if not parts:
            return PersonRecords.from_rows([])
        return PersonRecords(*(np.concatenate([getattr(p, f) for p in parts])
                               for f in ("images", "joints", "visible", "boxes", "is_test", "names")))


def usable_person(visible: np.ndarray, box, min_joints: int = MIN_JOINTS,
                  min_size: float = MIN_PERSON_SIZE) -> bool:
    """visible (16,) labelled joints; box (3,) or None -> keep this person for training?"""
    return box is not None and int(np.sum(visible)) >= min_joints and float(box[2]) >= min_size
