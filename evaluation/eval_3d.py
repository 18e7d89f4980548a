"""Evaluate the lifter on held-out mocap clips seen by fixed virtual cameras.

    .venv/bin/python -m evaluation.eval_3d                        # shipped weights/lifter.json
    .venv/bin/python -m evaluation.eval_3d --run runs/lifter_tcn27  # a training run's best.pt
    .venv/bin/python -m evaluation.eval_3d --out docs/results/results_3d --manifest weights/lifter.json

Each held-out clip (mocap.TEST_* in data/mocap.py) is viewed by ``--cams`` static
cameras drawn with a fixed seed from the training ranges (cameras.sample_cameras), aimed at the
clip's mean pelvis.  Two 2D inputs: ground truth (all joints, score 1) and noisy
(cameras.corrupt_2d with difficulty ``--difficulty``, out-of-image joints dropped, fixed seed).
Figures (frame-weighted over all sequences): MPJPE and PA-MPJPE of the root-relative pose (mm),
root depth error (% of the true distance) with and without the learned correction, jitter of the
absolute prediction and of the root-relative pose (mm/frame^2 at the clip's ~30 fps, GT alongside).
Jitter is averaged per sequence, then frame-weighted.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
import zlib

import numpy as np
import torch

from data import mocap
from data.cameras import corrupt_2d, project_normalized, sample_cameras, world_to_camera
from data.pose_noise import replay_errors
from evaluation.pose_errors import load_errors, shown_path as _shown_path
from inference.core import score_calibration
from inference.core.camera import bbox_area, root_depth
from inference.core.metrics import jitter, mpjpe, p_mpjpe, root_depth_error, root_lateral_error
from inference.models.lifter import build_model, PELVIS
from inference.pipeline import PipelineOptions
from inference.stages.lifting import Lifter
from inference.stages.smoothing import post_process
from inference.stages.types import PersonMotion


DEFAULT_POSE_ERRORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "weights",
                                   "pose_fast_errors.npz")


def clip_group(name: str) -> str:
    if "cmu_walk" in name:
        return "cmu_walk"
    if "acrnn" in name:
        return "cmu_dance_martial"
    return "bandai"


def heldout_sequences(ms: mocap.MocapSet, n_cams: int = 3, seed: int = 0, max_frames: int | None = None,
                      clips=None):
    """List of dicts: name, group, Xc (F, 16, 3) camera-frame metres, K (3, 3), size (2,), fps, and
    the camera: C (3,) its centre and R (3, 3) its rotation in the mocap world (Y up, floor y = 0)."""
    seqs = []
    for c in (ms.indices("test") if clips is None else clips):
        X = ms.clip(int(c)).astype(np.float64)
        if max_frames:
            X = X[:max_frames]
        target = X[:, PELVIS].mean(0)[None]
        for j in range(n_cams):
            rng = np.random.default_rng([seed, int(c), j])
            for _ in range(50):
                cams = sample_cameras(target, rng)
                Xc = world_to_camera(X[None], cams)[0]
                if (Xc[..., 2] > 0.5).all():
                    break
            else:
                continue
            seqs.append({"name": f"{ms.names[c]}#cam{j}", "group": clip_group(str(ms.names[c])), "Xc": Xc,
                         "K": cams.K[0], "size": cams.size[0], "fps": float(ms.fps[c]),
                         "C": cams.C[0], "R": cams.R[0]})
    return seqs


def make_2d(seq: dict, noisy: bool, difficulty: float, seed: int, pose_errors: dict | None = None,
            calibration: dict | None = None):
    """(uv (F, 16, 2) pixels, scores (F, 16)) for one sequence: exact, corrupt_2d (noisy), or with
    pose_errors (a pose network's measured errors replayed, pose_noise.replay_errors; its raw
    scores mapped through calibration when given)."""
    xn = project_normalized(seq["Xc"])
    K = seq["K"]
    if noisy or pose_errors is not None:
        rng = np.random.default_rng([seed, zlib.crc32(seq["name"].encode())])
        uv = xn * K[0, 0] + K[:2, 2]
        in_img = ((uv >= 0) & (uv <= seq["size"] - 1)).all(-1)
        if pose_errors is not None:
            xn, scores = replay_errors(xn, pose_errors, rng, in_image=in_img)
            if calibration:
                scores = score_calibration.apply(calibration, scores).astype(np.float32)
        else:
            xn, scores = corrupt_2d(xn[None], np.array([difficulty]), rng, in_image=in_img[None])
            xn, scores = xn[0], scores[0]
    else:
        scores = np.ones(xn.shape[:2], np.float32)
    uv = xn * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]
    return uv, scores


def engine_post(X: np.ndarray, fps: float, options: PipelineOptions | None = None) -> np.ndarray:
    """What the engine does to a lifted track after the lifter (smoothing.post_process with the
    options' settings, default the engine's): zero-lag One-Euro smoothing with the pelvis path's
    own smoother, then constant bone lengths (always on here). X (F, J, 3) m -> (F, J, 3) float64."""
    cfg = dataclasses.replace((options or PipelineOptions()).smoothing_config(), bone_lengths=True)
    done = post_process(PersonMotion(X, None, np.ones(len(X), bool)), fps, np.eye(3), cfg)
    return done.joints3d.astype(np.float64)


def evaluate(lifter: Lifter, seqs, noisy: bool, difficulty: float = 0.5, seed: int = 7,
             pose_errors: dict | None = None, calibration: dict | None = None, post: bool = False) -> dict:
    """Frame-weighted metrics over seqs; per-group breakdown under 'groups'. post: score the
    engine's output (engine_post) rather than the lifter's."""
    rows = {}
    for s in seqs:
        uv, sc = make_2d(s, noisy, difficulty, seed, pose_errors, calibration)
        pred = lifter.lift(uv, sc, s["K"]).astype(np.float64)
        if post:
            pred = engine_post(pred, s["fps"])
        gt = s["Xc"]
        pr = pred - pred[:, PELVIS:PELVIS + 1]
        gr = gt - gt[:, PELVIS:PELVIS + 1]
        mask = sc > 0
        area = bbox_area(uv, mask)
        k = root_depth(area, s["K"])
        r = {"mpjpe": mpjpe(pr, gr), "pa_mpjpe": p_mpjpe(pr, gr),
             "per_joint": np.linalg.norm(pr - gr, axis=-1),
             "root_err": root_depth_error(pred[:, PELVIS, 2], gt[:, PELVIS, 2]),
             "root_err_pinhole": root_depth_error(k, gt[:, PELVIS, 2]),
             "root_lateral": root_lateral_error(pred[:, PELVIS], gt[:, PELVIS]),
             "root_3d": np.linalg.norm(pred[:, PELVIS] - gt[:, PELVIS], axis=-1),
             "jitter": np.full(len(gt), jitter(pred)), "jitter_gt": np.full(len(gt), jitter(gt)),
             "jitter_rel": np.full(len(gt), jitter(pr)), "jitter_rel_gt": np.full(len(gt), jitter(gr)),
             "few_joints": (mask.mean(-1) < 0.5).astype(float)}
        for g in ("all", s["group"]):
            d = rows.setdefault(g, {k_: [] for k_ in r})
            for k_, v in r.items():
                d[k_].append(v)
    out = {}
    for g, d in rows.items():
        cat = {k_: np.concatenate(v) for k_, v in d.items()}
        out[g] = {"frames": int(len(cat["mpjpe"])),
                  "mpjpe_mm": round(float(np.mean(cat["mpjpe"])) * 1000, 1),
                  "pa_mpjpe_mm": round(float(np.mean(cat["pa_mpjpe"])) * 1000, 1),
                  "root_depth_err_pct": round(float(np.mean(cat["root_err"])) * 100, 2),
                  "root_depth_err_pct_median": round(float(np.median(cat["root_err"])) * 100, 2),
                  "root_depth_err_pct_pinhole_only": round(float(np.nanmean(cat["root_err_pinhole"])) * 100, 2),
                  "root_lateral_mm": round(float(np.mean(cat["root_lateral"])) * 1000, 1),
                  "root_3d_mm": round(float(np.mean(cat["root_3d"])) * 1000, 1),
                  "jitter_mm_per_frame2": round(float(np.mean(cat["jitter"])) * 1000, 2),
                  "jitter_gt_mm_per_frame2": round(float(np.mean(cat["jitter_gt"])) * 1000, 2),
                  "jitter_rel_mm_per_frame2": round(float(np.mean(cat["jitter_rel"])) * 1000, 2),
                  "jitter_rel_gt_mm_per_frame2": round(float(np.mean(cat["jitter_rel_gt"])) * 1000, 2),
                  "frames_under_half_joints_seen": int(cat["few_joints"].sum())}
        if g == "all":
            out[g]["per_joint_mpjpe_mm"] = {n: round(float(v) * 1000, 1) for n, v in
                                            zip(mocap.JOINT_NAMES, cat["per_joint"].mean(0))}
    res = out.pop("all")
    res["groups"] = out
    return res


def lifter_from_run(run: str, which: str = "best.pt") -> Lifter:
    ck = torch.load(os.path.join(run, which), weights_only=True)
    model = build_model(ck["config"])
    model.load_state_dict(ck["model"])
    return Lifter(model, {"config": ck["config"], "run": run, "step": int(ck["step"])})


def publish(res: dict, module: str, argv, out: str | None, markdown) -> None:
    """Record the command line in res, print it as JSON and, with out, write out.json and
    out.md (markdown(res)): how the held-out 3D evaluations report."""
    cmd = f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])
    res["command"] = cmd.strip()
    print(json.dumps(res, indent=1))
    if out:
        with open(out + ".json", "w") as f:
            json.dump(res, f, indent=1)
        with open(out + ".md", "w") as f:
            f.write(markdown(res))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default=None, help="manifest json (default weights/lifter.json)")
    ap.add_argument("--run", default=None, help="evaluate RUN/best.pt instead of shipped weights")
    ap.add_argument("--cams", type=int, default=3)
    ap.add_argument("--difficulty", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    ap.add_argument("--manifest", default=None, help="store the figures under 'eval' in this manifest")
    ap.add_argument("--no-flip", action="store_true", help="without test-time mirroring (Lifter.flip)")
    ap.add_argument("--pose-errors", default=DEFAULT_POSE_ERRORS,
                    help="a pose network's measured errors (evaluation.pose_errors) to replay as a third input; "
                         "'' for none")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    lifter = lifter_from_run(args.run) if args.run else Lifter.load(args.weights)
    lifter.flip = not args.no_flip
    ms = mocap.load()
    seqs = heldout_sequences(ms, args.cams, args.seed, args.max_frames)
    res = {"model": args.run or (args.weights or "weights/lifter.json"), "config": lifter.manifest.get("config"),
           "sequences": len(seqs), "clips": int(len(ms.indices("test"))), "cams_per_clip": args.cams,
           "seed": args.seed, "noise_difficulty": args.difficulty, "flip_test": lifter.flip,
           "gt_2d": evaluate(lifter, seqs, noisy=False),
           "noisy_2d": evaluate(lifter, seqs, noisy=True, difficulty=args.difficulty)}
    if args.pose_errors and os.path.exists(args.pose_errors):
        # our own pose network's measured errors (evaluation.pose_errors), with its raw scores and
        # with the scores the engine gives the lifter (its manifest's score_calibration)
        sample = load_errors(args.pose_errors)
        man_2d = args.pose_errors.replace("_errors.npz", ".json")
        with open(man_2d) as f:
            table = json.load(f).get("score_calibration")
        res["pose_errors"] = _shown_path(args.pose_errors)
        res["pose_net_2d_raw_scores"] = evaluate(lifter, seqs, noisy=False, pose_errors=sample)
        if table:
            res["pose_net_2d"] = evaluate(lifter, seqs, noisy=False, pose_errors=sample, calibration=table)
            res["pose_net_2d_engine"] = evaluate(lifter, seqs, noisy=False, pose_errors=sample,
                                                 calibration=table, post=True)
    res["seconds"] = round(time.time() - t0, 1)
    publish(res, "evaluation.eval_3d", argv, args.out, to_markdown)
    if args.manifest:
        with open(args.manifest) as f:
            man = json.load(f)
        man["eval"] = {k: res[k] for k in INPUTS + ("pose_errors", "sequences", "cams_per_clip", "seed",
                                                     "noise_difficulty", "flip_test", "command") if k in res}
        with open(args.manifest, "w") as f:
            json.dump(man, f, indent=1)
    return 0


INPUTS = ("gt_2d", "noisy_2d", "pose_net_2d", "pose_net_2d_raw_scores", "pose_net_2d_engine")


def to_markdown(res: dict) -> str:
    lines = [f"# Lifter evaluation ({res['model']})", "", f"Command: `{res['command']}`", "",
             f"{res['sequences']} sequences = {res['clips']} held-out clips x {res['cams_per_clip']} cameras, "
             f"seed {res['seed']}; noisy 2D difficulty {res['noise_difficulty']}; test-time mirroring "
             f"{'on' if res.get('flip_test', False) else 'off'}.", "",
             "| input | group | frames | MPJPE mm | PA-MPJPE mm | root depth err % (median) | pinhole only % | "
             "root lateral mm | root 3D mm | jitter abs mm/f^2 (GT) | jitter rel mm/f^2 (GT) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for inp in INPUTS:
        if inp not in res:
            continue
        r = res[inp]
        for g, v in [("all", r)] + sorted(r["groups"].items()):
            lines.append(f"| {inp} | {g} | {v['frames']} | {v['mpjpe_mm']} | {v['pa_mpjpe_mm']} | "
                         f"{v['root_depth_err_pct']} ({v['root_depth_err_pct_median']}) | "
                         f"{v['root_depth_err_pct_pinhole_only']} | {v.get('root_lateral_mm', '-')} | "
                         f"{v.get('root_3d_mm', '-')} | {v['jitter_mm_per_frame2']} "
                         f"({v['jitter_gt_mm_per_frame2']}) | {v['jitter_rel_mm_per_frame2']} "
                         f"({v['jitter_rel_gt_mm_per_frame2']}) |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
