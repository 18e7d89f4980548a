"""What each keypoint format's joint mapping costs in 3D, on held-out mocap (docs/keypoints.md).

    .venv/bin/python -m evaluation.eval_keypoint_formats --out docs/results/results_keypoint_formats

The held-out clips and virtual cameras of ``evaluation.eval_3d`` (heldout_sequences). Each
sequence's 3D joints are turned into each format's joints, projected exactly (score 1), mapped
back onto our 16 joints by the engine's own rules (``inference.core.keypoint_formats.to_ours``,
derived joints with their lower scores) and lifted with the shipped lifter, scores in the
engine's convention (the preset's score calibration, as a keypoint run gives them). Baseline: our
16 joints projected exactly. Figures: root-relative MPJPE / PA-MPJPE (mm), per-joint error of the
joints the mapping derives, and the 2D error of the derived joints (px at the camera's focal).

The mocap has our 16 joints only. Formats' joints that are ours (limbs) are taken as they are;
OpenPose's Neck and MidHip are the midpoints of the shoulders and of the hips (as OpenPose's
COCO-based training labels make them); the face (nose, eyes, ears), which the mocap lacks, comes
from a head model fixed here (FACE_MODEL: positions in the head's own frame, from the upper neck
along the neck -> head-top line, the body's facing and its left side, in units of that line's
length). The head joints' figures therefore measure the mapping against that model, not against
real faces; the pelvis and thorax figures are exact (the mocap's own joints against midpoints).
``--fit`` fits the mapping's NECK_FRAC and HEAD_TOP_FRAC on the training clips under the same model.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

from data import mocap
from data.cameras import project_normalized
from evaluation.eval_3d import heldout_sequences, publish
from inference.core import score_calibration
from inference.core.keypoint_formats import JOINT_SETS, mapping_table, to_ours
from inference.core.metrics import mpjpe, p_mpjpe
from inference.models.weights import REPO_WEIGHTS
from inference.stages.lifting import Lifter
from posefile.skeleton import JOINT_INDEX as JI, JOINT_NAMES, PELVIS

# "ours_midhips": our 16 joints with the pelvis at the midpoint of the hips, the pelvis our own pose
# network gives (its 2D training data has no pelvis; data/lsp.py derives it so) and every format gives.
FORMATS = ("ours", "ours_midhips", "body25", "coco18", "coco17")
DERIVED = ("pelvis", "thorax", "neck", "head_top")
# (up, forward, left) in units of |head_top - neck| from the upper neck: a typical adult head
# (upper neck to head top ~0.21 m: ears 8 cm up and 7.5 cm to the side, eyes 10 cm up and 8 cm
# forward, nose 6 cm up and 10 cm forward).
FACE_MODEL = {"nose": (0.30, 0.48, 0.0), "r_eye": (0.48, 0.38, -0.15), "l_eye": (0.48, 0.38, 0.15),
              "r_ear": (0.38, 0.0, -0.36), "l_ear": (0.38, 0.0, 0.36)}


def _unit(v):
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def format_joints_3d(X: np.ndarray, name: str) -> np.ndarray:
    """Our joints X (F, 16, 3), camera frame (y down) -> the format's joints (F, K, 3) (FACE_MODEL
    for the face; joints no model gives, e.g. BODY_25's toes and heels, at the ankle: unused by
    the mapping)."""
    if name == "ours":
        return X.copy()
    if name == "ours_midhips":
        Y = X.copy()
        Y[:, PELVIS] = 0.5 * (X[:, JI["r_hip"]] + X[:, JI["l_hip"]])
        return Y
    names = JOINT_SETS[name]
    neck, top = X[:, JI["neck"]], X[:, JI["head_top"]]
    length = np.linalg.norm(top - neck, axis=-1, keepdims=True)
    up = _unit(top - neck)
    left = X[:, JI["l_shoulder"]] - X[:, JI["r_shoulder"]]
    body_up = _unit(X[:, JI["thorax"]] - X[:, PELVIS])
    fwd = _unit(np.cross(left, body_up))                     # the way the chest faces
    fwd = _unit(fwd - (fwd * up).sum(-1, keepdims=True) * up)
    side = np.cross(fwd, up)                                 # the person's left (camera frame, y down)
    side = np.where((side * left).sum(-1, keepdims=True) < 0, -side, side)
    out = {n: X[:, JI[n]] for n in JOINT_NAMES}
    for n, (a, b, c) in FACE_MODEL.items():
        out[n] = neck + length * (a * up + b * fwd + c * side)
    out["neck"] = 0.5 * (X[:, JI["r_shoulder"]] + X[:, JI["l_shoulder"]])      # OpenPose's Neck
    out["mid_hip"] = 0.5 * (X[:, JI["r_hip"]] + X[:, JI["l_hip"]])
    for n in names:
        out.setdefault(n, X[:, JI["r_ankle" if n.startswith("r_") else "l_ankle"]])
    return np.stack([out[n] for n in names], 1)


def mapped_2d(seq: dict, name: str, calibration: dict | None):
    """(uv (F, 16, 2) px, lifter scores (F, 16)) of one sequence through format `name`."""
    K = seq["K"]
    Y = format_joints_3d(seq["Xc"], name)
    uv = project_normalized(Y) * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
    j16, s16 = to_ours(uv, np.ones(uv.shape[:2]), _joint_set(name))
    s16 = score_calibration.apply(calibration, s16).astype(np.float32) if calibration else s16
    return np.nan_to_num(j16), s16


def evaluate(lifter: Lifter, seqs, name: str, calibration: dict | None) -> dict:
    errs, pa, per_joint, px, missing = [], [], [], [], 0
    for s in seqs:
        uv, sc = mapped_2d(s, name, calibration)
        missing += int((sc <= 0).sum())
        pred = lifter.lift(uv, sc, s["K"]).astype(np.float64)
        gt = s["Xc"]
        pr, gr = pred - pred[:, PELVIS:PELVIS + 1], gt - gt[:, PELVIS:PELVIS + 1]
        errs.append(mpjpe(pr, gr))
        pa.append(p_mpjpe(pr, gr))
        per_joint.append(np.linalg.norm(pr - gr, axis=-1))
        true_uv = project_normalized(gt) * np.array([s["K"][0, 0], s["K"][1, 1]]) + s["K"][:2, 2]
        px.append(np.linalg.norm(uv - true_uv, axis=-1))
    e, p, pj, d = (np.concatenate(v) for v in (errs, pa, per_joint, px))
    return {"frames": int(len(e)), "mpjpe_mm": round(float(e.mean()) * 1000, 1),
            "pa_mpjpe_mm": round(float(p.mean()) * 1000, 1),
            "per_joint_mm": {n: round(float(v) * 1000, 1) for n, v in zip(JOINT_NAMES, pj.mean(0))},
            "derived_2d_error_px": {n: round(float(d[:, JI[n]].mean()), 2) for n in DERIVED},
            "missing_joints": missing, "mapping": mapping_table(_joint_set(name))}


def _joint_set(name: str) -> str:
    return "ours" if name.startswith("ours") else name


def fit_fractions(ms: mocap.MocapSet, n_cams: int = 1, max_frames: int = 300) -> dict:
    """NECK_FRAC and HEAD_TOP_FRAC by least squares on the training clips (COCO-17 face model,
    thorax = mid-shoulders): the fraction of (head point - thorax) that reaches each true joint,
    projected on that line, in 3D."""
    seqs = heldout_sequences(ms, n_cams, 0, max_frames, clips=ms.indices("train")[::5])
    num = {"neck": 0.0, "head_top": 0.0}
    den = 0.0
    for s in seqs:
        Y = format_joints_3d(s["Xc"], "coco17")
        names = JOINT_SETS["coco17"]
        ears = 0.5 * (Y[:, names.index("r_ear")] + Y[:, names.index("l_ear")])
        tho = 0.5 * (Y[:, names.index("r_shoulder")] + Y[:, names.index("l_shoulder")])
        d = ears - tho
        for n in num:
            num[n] += float(((s["Xc"][:, JI[n]] - tho) * d).sum())
        den += float((d * d).sum())
    return {"sequences": len(seqs), "neck_frac": round(num["neck"] / den, 3),
            "head_top_frac": round(num["head_top"] / den, 3)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cams", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--preset", default="balanced", help="whose score calibration a keypoint run uses")
    ap.add_argument("--fit", action="store_true", help="also fit the head fractions on the training clips")
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        pass
    ms = mocap.load()
    seqs = heldout_sequences(ms, args.cams, args.seed, args.max_frames)
    lifter = Lifter.load()
    with open(REPO_WEIGHTS / f"pose_{args.preset}.json") as f:
        calibration = json.load(f).get("score_calibration")
    res = {"sequences": len(seqs), "clips": int(len(ms.indices("test"))), "cams_per_clip": args.cams,
           "seed": args.seed, "max_frames": args.max_frames, "score_calibration": f"pose_{args.preset}",
           "face_model": FACE_MODEL, "formats": {}, "formats_raw_scores": {}}
    for key, table in (("formats", calibration), ("formats_raw_scores", None)):
        for name in FORMATS:
            res[key][name] = evaluate(lifter, seqs, name, table)
            print(f"{key} {name}: {res[key][name]['mpjpe_mm']} mm", file=sys.stderr)
    if args.fit:
        res["fit_on_training_clips"] = fit_fractions(ms)
    res["seconds"] = round(time.time() - t0, 1)
    publish(res, "evaluation.eval_keypoint_formats", argv, args.out, to_markdown)
    return 0


def to_markdown(res: dict) -> str:
    lines = ["# 3D cost of each keypoint format's joint mapping", "", f"Command: `{res['command']}`", "",
             f"{res['sequences']} sequences = {res['clips']} held-out clips x {res['cams_per_clip']} cameras "
             f"(seed {res['seed']}), exact 2D of each format's joints, mapped onto ours, lifted. Face points from "
             "the head model in the script. Root-relative errors; per derived joint: 3D error mm (2D error px)."]
    for key, title in (("formats", f"scores through {res['score_calibration']}'s calibration (what a keypoint "
                                   "run gives the lifter)"),
                       ("formats_raw_scores", "scores as they are (--raw-scores)")):
        base = res[key]["ours_midhips"]
        lines += ["", f"## {title}", "",
                  "| format | MPJPE mm | PA-MPJPE mm | vs ours_midhips mm | " + " | ".join(DERIVED) + " |",
                  "| --- | --- | --- | --- | " + " | ".join("---" for _ in DERIVED) + " |"]
        for name, r in res[key].items():
            cells = [f"{r['per_joint_mm'][n]} ({r['derived_2d_error_px'][n]})" for n in DERIVED]
            lines.append(f"| {name} | {r['mpjpe_mm']} | {r['pa_mpjpe_mm']} | {r['mpjpe_mm'] - base['mpjpe_mm']:+.1f} | "
                         + " | ".join(cells) + " |")
    if "fit_on_training_clips" in res:
        fit = res["fit_on_training_clips"]
        lines += ["", f"Head fractions fitted on {fit['sequences']} training sequences: neck {fit['neck_frac']}, "
                      f"head top {fit['head_top_frac']}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
