"""Hand-made keypoint files of the real formats for the keypoint tests: OpenPose per-frame JSON
(BODY_25, COCO-18), COCO keypoint results, and the plain table, with real-looking values
(people walking across a 640x480 picture, missing joints as the tools write them)."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from inference.core.keypoint_formats import BODY25, COCO17, COCO18

W, H = 640, 480
# A standing person, 2D offsets (px) from the pelvis at a scale of ~300 px height, by joint name.
_BODY = {
    "nose": (0, -150), "neck": (0, -118), "r_eye": (-6, -156), "l_eye": (6, -156), "r_ear": (-14, -152),
    "l_ear": (14, -152), "r_shoulder": (-30, -118), "l_shoulder": (30, -118), "r_elbow": (-38, -70),
    "l_elbow": (38, -70), "r_wrist": (-40, -25), "l_wrist": (40, -25), "mid_hip": (0, 0),
    "r_hip": (-18, 0), "l_hip": (18, 0), "r_knee": (-20, 70), "l_knee": (20, 70), "r_ankle": (-21, 140),
    "l_ankle": (21, 140), "r_big_toe": (-26, 152), "r_small_toe": (-32, 150), "r_heel": (-20, 146),
    "l_big_toe": (26, 152), "l_small_toe": (32, 150), "l_heel": (20, 146),
}


def person(names, f: int, who: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(K, 2) px and (K,) scores of person `who` at frame f: walks right (0) or left (1)."""
    x0 = 160 + 6 * f if who == 0 else 480 - 5 * f
    base = np.array([x0, 300 + 4 * who], np.float64)
    arm = 8 * np.sin(0.4 * f + who)
    j = np.array([_BODY[n] for n in names], np.float64) + base
    j[[i for i, n in enumerate(names) if "wrist" in n], 0] += arm
    j += rng.normal(0, 0.7, j.shape)
    s = np.clip(rng.normal(0.8, 0.08, len(names)), 0.3, 0.99)
    return j, s


def openpose_folder(folder: Path, names=BODY25, F: int = 20, ids: bool = False, seed: int = 0) -> Path:
    """OpenPose --write_json output: one <stem>_<12 digits>_keypoints.json per frame. Person 1
    is missing in frames 8..10 (walked behind something); person 0's left wrist is not seen in
    frames 3..5 (0, 0, 0 as OpenPose writes it)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for f in range(F):
        people = []
        for who in (0, 1):
            if who == 1 and 8 <= f <= 10:
                continue
            j, s = person(names, f, who, rng)
            if who == 0 and 3 <= f <= 5:
                k = names.index("l_wrist")
                j[k], s[k] = 0, 0
            kp = np.concatenate([j, s[:, None]], 1).ravel().round(3).tolist()
            people.append({"person_id": [who if ids else -1], "pose_keypoints_2d": kp,
                           "face_keypoints_2d": [], "hand_left_keypoints_2d": [], "hand_right_keypoints_2d": [],
                           "pose_keypoints_3d": [], "face_keypoints_3d": [], "hand_left_keypoints_3d": [],
                           "hand_right_keypoints_3d": []})
        (folder / f"clip_{f:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    return folder


def coco_results(path: Path, F: int = 20, first_id: int = 0, seed: int = 1, track_ids: bool = False) -> Path:
    """COCO keypoint results (MMPose / Detectron2 / YOLO-pose): a list of {image_id, category_id,
    keypoints, score}, image_id = frame + first_id; person 1 missing in frames 8..10; person 0's
    face (nose, eyes, ears) reported with score 0.0 in frames 0..3."""
    rng = np.random.default_rng(seed)
    out = []
    for f in range(F):
        for who in (1, 0):                   # not best-first: the reader orders them
            if who == 1 and 8 <= f <= 10:
                continue
            j, s = person(COCO17, f, who, rng)
            if who == 0 and f <= 3:    # looking away: no face point scores
                s[[COCO17.index(n) for n in ("nose", "l_eye", "r_eye", "l_ear", "r_ear")]] = 0.0
            d = {"image_id": f + first_id, "category_id": 1,
                 "keypoints": np.concatenate([j, s[:, None]], 1).ravel().round(2).tolist(),
                 "score": round(float(s.mean()), 3)}
            if track_ids:
                d["track_id"] = who
            out.append(d)
    path.write_text(json.dumps(out))
    return path


def table_rows(F: int = 20, seed: int = 2, ids: bool = True, names=None):
    """Rows (frame, person, joint name, x, y, score) in our joints; person 1 from frame 5 on."""
    from posefile.skeleton import JOINT_NAMES
    names = names or JOINT_NAMES
    rng = np.random.default_rng(seed)
    rows = []
    for f in range(F):
        for who in (0, 1):
            if who == 1 and f < 5:
                continue
            j, s = person([n if n in _BODY else ("mid_hip" if n == "pelvis" else "neck" if n in ("thorax", "neck")
                                                 else "nose") for n in names], f, who, rng)
            for k, n in enumerate(names):
                rows.append((f, who if ids else -1, n, float(j[k, 0]), float(j[k, 1]), float(s[k])))
    return rows


def write_csv(path: Path, rows) -> Path:
    lines = ["frame,person,joint,x,y,score"] + [f"{f},{p},{n},{x:.2f},{y:.2f},{s:.3f}" for f, p, n, x, y, s in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


__all__ = ["W", "H", "openpose_folder", "coco_results", "table_rows", "write_csv", "BODY25", "COCO18", "COCO17"]
