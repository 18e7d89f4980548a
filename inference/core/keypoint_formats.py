"""Other detectors' 2D joint sets and their mapping onto our 16 joints (pure numpy).

    joints16, scores16 = to_ours(joints, scores, "coco17")   # (..., 17, 2), (..., 17) -> (..., 16, ...)

Joint sets: "body25" (OpenPose BODY_25), "coco18" (OpenPose COCO-18), "coco17" (COCO keypoints,
as MMPose/RTMPose, Detectron2 and YOLO-pose write them) and "ours" (posefile.skeleton, MPII order).
A joint is missing when its score is 0 (or its coordinates are not finite).

Each of our joints is, per set (``mapping_table``):

* direct: copied with its score (ankles, knees, hips, shoulders, elbows, wrists; BODY_25's MidHip
  as our pelvis; OpenPose's Neck, the point between the shoulders, as our thorax);
* derived between two joints (pelvis from the hips, thorax from the shoulders): the midpoint,
  score MID_FACTOR x the smaller of the two scores;
* derived by extrapolation from the face (neck = MPII's upper neck, head_top): along the line
  from the thorax through the head point H (midpoint of the ears, else mean of the seen eyes,
  ears and nose): neck = thorax + NECK_FRAC (H - thorax), head_top = thorax + HEAD_TOP_FRAC
  (H - thorax); score HEAD_FACTOR x the smaller of the thorax's and the face points' scores.

Missing when a source joint is missing (score 0). docs/keypoints.md has the measured 3D cost of each
set's mapping.
"""
from __future__ import annotations

import numpy as np

from posefile.skeleton import JOINT_INDEX, JOINT_NAMES

BODY25 = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
          "mid_hip", "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye",
          "r_ear", "l_ear", "l_big_toe", "l_small_toe", "l_heel", "r_big_toe", "r_small_toe", "r_heel")
COCO18 = ("nose", "neck", "r_shoulder", "r_elbow", "r_wrist", "l_shoulder", "l_elbow", "l_wrist",
          "r_hip", "r_knee", "r_ankle", "l_hip", "l_knee", "l_ankle", "r_eye", "l_eye", "r_ear", "l_ear")
COCO17 = ("nose", "l_eye", "r_eye", "l_ear", "r_ear", "l_shoulder", "r_shoulder", "l_elbow", "r_elbow",
          "l_wrist", "r_wrist", "l_hip", "r_hip", "l_knee", "r_knee", "l_ankle", "r_ankle")

JOINT_SETS: dict[str, tuple[str, ...]] = {"body25": BODY25, "coco18": COCO18, "coco17": COCO17,
                                          "ours": tuple(JOINT_NAMES)}
#: The joints every set has under our names (copied as they are).
LIMBS = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle",
         "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist")
FACE = ("nose", "r_eye", "l_eye", "r_ear", "l_ear")

MID_FACTOR = 0.9        # score of a midpoint: the pair's smaller score x this
HEAD_FACTOR = 0.7       # score of an extrapolated neck / head top: the sources' smaller score x this
# Upper neck and head top along thorax -> head point, as fractions of that line: least squares on
# the training mocap clips with the head model of evaluation/eval_keypoint_formats.py (--fit:
# 0.633 and 1.598 on 54 training sequences).
NECK_FRAC = 0.63
HEAD_TOP_FRAC = 1.60


class KeypointFormatError(ValueError):
    """An unknown joint set, or arrays that do not fit it."""


def joint_set(name: str) -> tuple[str, ...]:
    try:
        return JOINT_SETS[name]
    except KeyError:
        raise KeypointFormatError(f"unknown joint set {name!r} (one of {', '.join(JOINT_SETS)})") from None


def mapping_table(name: str) -> dict[str, str]:
    """Our joint name -> how it is made from set ``name``: 'direct (<their name>)', 'derived (...)'
    or 'missing'. The documentation's table (docs/keypoints.md) is this."""
    names = joint_set(name)
    if name == "ours":
        return {j: f"direct ({j})" for j in JOINT_NAMES}
    out = {j: f"direct ({j})" for j in LIMBS}
    out["pelvis"] = "direct (MidHip)" if "mid_hip" in names else "derived (midpoint of the hips)"
    out["thorax"] = "direct (Neck)" if "neck" in names else "derived (midpoint of the shoulders)"
    out["neck"] = f"derived (thorax + {NECK_FRAC} x (head point - thorax))"
    out["head_top"] = f"derived (thorax + {HEAD_TOP_FRAC} x (head point - thorax))"
    return {j: out[j] for j in JOINT_NAMES}


def _seen(joints: np.ndarray, scores: np.ndarray) -> np.ndarray:
    return (scores > 0) & np.isfinite(joints).all(-1)


def _midpoint(a, sa, b, sb):
    ok = (sa > 0) & (sb > 0)
    return np.where(ok[..., None], 0.5 * (a + b), np.nan), np.where(ok, MID_FACTOR * np.minimum(sa, sb), 0.0)


def head_point(joints: dict, scores: dict) -> tuple[np.ndarray, np.ndarray]:
    """H (..., 2) and its score (...,): the ears' midpoint when both are seen, else the mean of the
    seen face points (nose, eyes, ears); score the smallest of the points used, 0 when none."""
    ears = (scores["r_ear"] > 0) & (scores["l_ear"] > 0)
    mid_ears = 0.5 * (joints["r_ear"] + joints["l_ear"])
    w = np.stack([scores[n] > 0 for n in FACE], -1).astype(np.float64)          # (..., 5)
    pts = np.stack([np.nan_to_num(joints[n]) for n in FACE], -2)                # (..., 5, 2)
    n = w.sum(-1)
    mean = (w[..., None] * pts).sum(-2) / np.maximum(n, 1)[..., None]
    sc = np.stack([np.where(scores[k] > 0, scores[k], np.inf) for k in FACE], -1).min(-1)
    h = np.where(ears[..., None], mid_ears, mean)
    s = np.where(ears, np.minimum(scores["r_ear"], scores["l_ear"]), np.where(n > 0, sc, 0.0))
    return np.where((s > 0)[..., None], h, np.nan), s


def to_ours(joints: np.ndarray, scores: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """joints (..., K, 2) px and scores (..., K) of set ``name`` -> our (..., 16, 2) float32 (NaN where
    missing) and (..., 16) float32 scores (0 where missing), by ``mapping_table``'s rules."""
    names = joint_set(name)
    joints = np.asarray(joints, np.float64)
    scores = np.asarray(scores, np.float64)
    if joints.shape[-2:] != (len(names), 2) or scores.shape != joints.shape[:-1]:
        raise KeypointFormatError(f"joint set {name!r} has {len(names)} joints: expected (..., {len(names)}, 2) "
                                  f"and (..., {len(names)}); got {joints.shape} and {scores.shape}")
    seen = _seen(joints, scores)
    scores = np.where(seen, np.clip(scores, 0.0, 1.0), 0.0)
    joints = np.where(seen[..., None], joints, np.nan)
    if name == "ours":
        return joints.astype(np.float32), scores.astype(np.float32)
    J = {n: joints[..., i, :] for i, n in enumerate(names)}
    S = {n: scores[..., i] for i, n in enumerate(names)}
    out_j = np.full(joints.shape[:-2] + (len(JOINT_NAMES), 2), np.nan)
    out_s = np.zeros(joints.shape[:-2] + (len(JOINT_NAMES),))
    for n in LIMBS:
        out_j[..., JOINT_INDEX[n], :], out_s[..., JOINT_INDEX[n]] = J[n], S[n]
    if "mid_hip" in names:
        pel, s_pel = J["mid_hip"], S["mid_hip"]
    else:
        pel, s_pel = _midpoint(J["r_hip"], S["r_hip"], J["l_hip"], S["l_hip"])
    if "neck" in names:
        tho, s_tho = J["neck"], S["neck"]
    else:
        tho, s_tho = _midpoint(J["r_shoulder"], S["r_shoulder"], J["l_shoulder"], S["l_shoulder"])
    h, s_h = head_point(J, S)
    ok = (s_tho > 0) & (s_h > 0)
    s_head = np.where(ok, HEAD_FACTOR * np.minimum(s_tho, s_h), 0.0)
    for n, frac in (("neck", NECK_FRAC), ("head_top", HEAD_TOP_FRAC)):
        out_j[..., JOINT_INDEX[n], :] = np.where(ok[..., None], tho + frac * (h - tho), np.nan)
        out_s[..., JOINT_INDEX[n]] = s_head
    out_j[..., JOINT_INDEX["pelvis"], :], out_s[..., JOINT_INDEX["pelvis"]] = pel, s_pel
    out_j[..., JOINT_INDEX["thorax"], :], out_s[..., JOINT_INDEX["thorax"]] = tho, s_tho
    miss = out_s <= 0
    out_j[miss] = np.nan
    out_s[miss] = 0.0
    return out_j.astype(np.float32), out_s.astype(np.float32)
