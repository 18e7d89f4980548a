"""COCO keypoints (Lin et al., ECCV 2014) reader: one PersonRecords row per person.

Accepted format: the standard person_keypoints_<split>.json: "images" (id, file_name) and
"annotations" (image_id, keypoints = 17 x [x, y, v] flattened, num_keypoints, iscrowd).
v = 0: not labelled; 1: labelled, occluded; 2: labelled, visible. Labelled (v > 0) joints
are trained on.

Mapping to our 16 joints (MPII order). COCO's left/right are the person's own, like ours:
    ankles, knees, hips, shoulders, elbows, wrists   copied
    pelvis = mid-hips, thorax = mid-shoulders        labelled when both parents are
    neck, head_top                                   do not exist in COCO: never labelled,
                                                     so masked out of the loss
Skipped: crowd annotations (iscrowd = 1), people with fewer than MIN_JOINTS of the 12 body
keypoints labelled, and people whose box is under MIN_PERSON_SIZE px.

Crop box: our boxes are the tight box around the joints including head_top (crops.py). COCO
has no head top, so the box is taken around the labelled body joints, the labelled face
keypoints (nose, eyes, ears) and, when both the face and the thorax are labelled, a rough
head-top point head_top_est = face + HEAD_TOP_RATIO x (face - thorax) (face = mean of the
labelled face keypoints). That point only places the crop; it is never a training label.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np

from inference.core import crops
from posefile.skeleton import JOINT_INDEX as INDEX, NUM_JOINTS as J
from data.records import MIN_JOINTS, MIN_PERSON_SIZE, DatasetError, PersonRecords, usable_person

COCO_NAMES = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow",
              "r_elbow", "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")
COCO = {n: i for i, n in enumerate(COCO_NAMES)}
FACE = [COCO[n] for n in ("nose", "l_eye", "r_eye", "l_ear", "r_ear")]
BODY = [i for i, n in enumerate(COCO_NAMES) if i not in FACE]   # the 12 keypoints we copy
# Adult proportions: the head top is about 0.7 x (face centre - shoulder centre) above the
# face centre (eyes ~19 cm above the shoulder line, head top ~12-14 cm above the eyes).
HEAD_TOP_RATIO = 0.7


def from_coco(keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """keypoints (..., 17, 3) [x, y, v] -> joints (..., 16, 2) float32, labelled (..., 16) bool."""
    kp = np.asarray(keypoints, np.float32)
    lab = kp[..., 2] > 0
    out = np.zeros(kp.shape[:-2] + (J, 2), np.float32)
    vis = np.zeros(kp.shape[:-2] + (J,), bool)
    for i in BODY:
        out[..., INDEX[COCO_NAMES[i]], :] = kp[..., i, :2]
        vis[..., INDEX[COCO_NAMES[i]]] = lab[..., i]
    for name, (a, b) in {"pelvis": ("r_hip", "l_hip"), "thorax": ("r_shoulder", "l_shoulder")}.items():
        ia, ib = COCO[a], COCO[b]
        out[..., INDEX[name], :] = 0.5 * (kp[..., ia, :2] + kp[..., ib, :2])
        vis[..., INDEX[name]] = lab[..., ia] & lab[..., ib]
    out[~vis] = 0.0
    return out, vis


def person_box(keypoints: np.ndarray, joints: np.ndarray, labelled: np.ndarray) -> np.ndarray | None:
    """keypoints (17, 3), our joints (16, 2) and labelled (16,) -> box (cx, cy, size) or None."""
    kp = np.asarray(keypoints, np.float32)
    face = kp[FACE][kp[FACE, 2] > 0, :2]
    pts = [joints[labelled], face]
    th = INDEX["thorax"]
    if len(face) and labelled[th]:
        centre = face.mean(0)
        pts.append((centre + HEAD_TOP_RATIO * (centre - joints[th]))[None])
    pts = np.concatenate(pts)
    return crops.box_from_joints(pts, np.ones(len(pts), bool))


def default_images(annotations: str | os.PathLike) -> Path:
    """The standard layout: coco/annotations/person_keypoints_<split>.json with the images in
    coco/<split>/; else <annotation folder>/images; else the annotation folder."""
    a = Path(annotations).resolve()
    m = re.match(r"person_keypoints_(.+)\.json$", a.name)
    for cand in ([a.parent.parent / m.group(1), a.parent / m.group(1)] if m else []) + [a.parent / "images"]:
        if cand.is_dir():
            return cand
    return a.parent


def read_coco(annotations: str | os.PathLike, images: str | os.PathLike | None = None, is_test: bool = False,
              min_joints: int = MIN_JOINTS, min_size: float = MIN_PERSON_SIZE) -> PersonRecords:
    """person_keypoints JSON -> PersonRecords (N rows, all with is_test = is_test), image
    paths joined to `images` (default: default_images). Rows are named "<file_name>#<ann id>"."""
    try:
        with open(annotations) as f:
            data = json.load(f)
        files = {im["id"]: im["file_name"] for im in data["images"]}
        anns = data["annotations"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DatasetError(f"cannot read COCO keypoint annotations {annotations}: {e}") from None
    root = Path(images) if images is not None else default_images(annotations)
    rows = []
    for a in anns:
        if a.get("iscrowd", 0) or "keypoints" not in a:
            continue
        kp = np.asarray(a["keypoints"], np.float32)
        if kp.size != 17 * 3:
            raise DatasetError(f"{annotations}: annotation {a.get('id')} has {kp.size} keypoint values, not 51")
        kp = kp.reshape(17, 3)
        if int((kp[BODY, 2] > 0).sum()) < min_joints:
            continue
        joints, labelled = from_coco(kp)
        box = person_box(kp, joints, labelled)
        if not usable_person(labelled, box, 0, min_size):
            continue
        if a["image_id"] not in files:
            raise DatasetError(f"{annotations}: annotation {a.get('id')} refers to a missing image")
        name = files[a["image_id"]]
        rows.append((str(root / name), joints, labelled, box, is_test, f"{name}#{a.get('id', len(rows))}"))
    return PersonRecords.from_rows(rows)
