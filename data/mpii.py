"""MPII Human Pose (Andriluka et al., CVPR 2014) reader: one PersonRecords row per person.

Accepted format: the widely used JSON conversion of the MPII release (a list of dicts, one
per annotated person; a top-level {"root": [...]} wrapper is accepted too). Keys read:

    "img_paths"     image file name, relative to the image folder, e.g. "015601864.jpg"
    "joint_self"    16 x 3 list: x, y (image px), visible flag
    "isValidation"  0 / 1 (or false / true): 1 rows become held-out rows (is_test)
    "people_index"  optional, used in the row's name "<img_paths>#<people_index>"

Other keys ("objpos", "scale_provided", "joint_others", ...) are ignored: the crop box
comes from the joints, as for LSP (inference/core/crops.py box_from_joints). MPII's joint order
is ours (r_ankle ... l_wrist; pelvis 6, thorax 7, upper_neck 8 = our neck, head_top 9).

Labelled joints: MPII annotates occluded joints too, with the visible flag 0 but real
coordinates; unannotated joints are written as (0, 0) or (-1, -1). A joint counts as
labelled (trained on) when x > 0 or y > 0, whatever its flag; with occluded=False the flag
must be set as well. People with fewer than MIN_JOINTS labelled joints, or a joints' box
smaller than MIN_PERSON_SIZE px, are skipped.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from inference.core import crops
from posefile.skeleton import NUM_JOINTS as J
from data.records import MIN_JOINTS, MIN_PERSON_SIZE, DatasetError, PersonRecords, usable_person


def default_images(annotations: str | os.PathLike) -> Path:
    """<annotation folder>/images when it exists, else the annotation folder."""
    a = Path(annotations).resolve().parent
    return a / "images" if (a / "images").is_dir() else a


def parse_person(entry: dict, occluded: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """One JSON entry -> joints (16, 2) float32 image px, labelled (16,) bool."""
    try:
        a = np.asarray(entry["joint_self"], np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise DatasetError(f"MPII entry without a usable 'joint_self': {e}") from None
    if a.shape != (J, 3):
        raise DatasetError(f"MPII 'joint_self' must be 16 x 3, got {a.shape}")
    xy = a[:, :2]
    labelled = np.isfinite(xy).all(1) & ((xy[:, 0] > 0) | (xy[:, 1] > 0))
    if not occluded:
        labelled &= a[:, 2] > 0
    return np.where(labelled[:, None], xy, 0.0).astype(np.float32), labelled


def read_mpii(annotations: str | os.PathLike, images: str | os.PathLike | None = None,
              min_joints: int = MIN_JOINTS, min_size: float = MIN_PERSON_SIZE,
              occluded: bool = True) -> PersonRecords:
    """MPII JSON -> PersonRecords (N rows), image paths joined to `images` (default:
    default_images). is_test = isValidation."""
    try:
        with open(annotations) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise DatasetError(f"cannot read MPII annotations {annotations}: {e}") from None
    if isinstance(data, dict):
        data = data.get("root", data.get("annolist"))
    if not isinstance(data, list):
        raise DatasetError(f"{annotations}: expected a list of per-person dicts (MPII JSON)")
    root = Path(images) if images is not None else default_images(annotations)
    rows, count = [], {}
    for entry in data:
        if not isinstance(entry, dict) or "img_paths" not in entry:
            raise DatasetError(f"{annotations}: entry without 'img_paths'")
        name = str(entry["img_paths"])
        joints, labelled = parse_person(entry, occluded)
        k = entry.get("people_index", count.get(name, 0))
        count[name] = count.get(name, 0) + 1
        box = crops.box_from_joints(joints, labelled)
        if not usable_person(labelled, box, min_joints, min_size):
            continue
        rows.append((str(root / name), joints, labelled, box, bool(entry.get("isValidation", 0)),
                     f"{name}#{int(k)}"))
    return PersonRecords.from_rows(rows)
