"""The floor stage on held-out mocap seen by virtual cameras with a known floor (issue 27).

    .venv/bin/python -m evaluation.eval_floor --out docs/results/results_floor
    .venv/bin/python -m evaluation.eval_floor --max-frames 150 --cams 1        # quick look
    .venv/bin/python -m evaluation.eval_floor --pairs ...                      # + two people per scene

Each held-out clip (data/mocap.py TEST_*) is seen by ``--cams`` static virtual cameras (the
lifter evaluation's, evaluation.eval_3d.heldout_sequences: heights 0.5-2.5 m, pitch -30..30
degrees, roll up to 5 degrees, floor at mocap y = 0). The 2D is our pose network's measured
errors replayed (weights/pose_fast_errors.npz, as eval_3d's "pose_net_2d_engine"), lifted by the
shipped lifter and post-processed as the engine does (smoothing.post_process, 2D too); then the
floor stage (inference.core.floor.estimate) runs on each sequence alone (one person per clip).

Figures (frame-weighted over the sequences unless said otherwise):

* floor: status counts; over the sequences with a floor, camera height error (% of the true
  height) and tilt error (degrees between the true and estimated floor normals), mean and median.
* root (pelvis) position error without and with the floor: lateral (mm, perpendicular to the
  viewing ray), depth (% of the true distance) and 3D (mm). "with" is what the engine writes,
  so sequences without a floor count with their unchanged roots.
* true contacts: a foot whose ankle is within 4 cm of its clip's resting ankle height and
  slower than 0.3 m/s (ground truth). During them: foot sliding (mean 3D ankle travel,
  mm/frame), ankle height error against the true floor (mean |predicted - true height|, mm) and
  floating/penetration against the estimated floor (mean |ankle height over it - ankle_height_m|,
  mm: what the animator sees). Contact detection precision and recall against them.
* ``--pairs``: scenes of two held-out people (consecutive held-out clips, the second moved to
  stand 1.5-4 m from the first) under one virtual camera: root depth, and the error of the
  distance between the two people and of their depth difference, without and with the floor.
* cost: the floor stage's seconds per frame here; with ``--video`` the engine's own run on a clip
  (default preset) with its ``seconds_floor`` against its ``seconds_total``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
import torch

from data import mocap
from evaluation.eval_3d import DEFAULT_POSE_ERRORS, clip_group, heldout_sequences, make_2d, publish
from evaluation.pose_errors import load_errors, shown_path
from inference.core import floor as fl
from inference.core.metrics import root_depth_error, root_lateral_error
from inference.pipeline import PipelineOptions
from inference.stages.lifting import Lifter
from inference.stages.smoothing import post_process
from inference.stages.types import PersonMotion
from posefile.skeleton import PELVIS

ANKLES = list(fl.ANKLES)
CONTACT_TOL_M = 0.04
CONTACT_SPEED_MPS = 0.3


def true_contacts(Xc: np.ndarray, R: np.ndarray, C: np.ndarray, fps: float) -> np.ndarray:
    """Ground-truth contacts (F, 2) from the camera-frame mocap joints: ankle within CONTACT_TOL_M
    of the clip's resting ankle height (median height of ankles slower than 0.2 m/s) and slower
    than CONTACT_SPEED_MPS."""
    W = Xc[:, ANKLES] @ R + C                                    # back to the mocap world (Y up)
    h = W[..., 1]
    v = np.linalg.norm(np.gradient(W, axis=0), axis=-1) * fps
    slow = v < 0.2
    rest = np.median(h[slow]) if slow.any() else np.percentile(h, 10)
    return (h - rest < CONTACT_TOL_M) & (v < CONTACT_SPEED_MPS)


def sliding(A: np.ndarray, contact: np.ndarray) -> np.ndarray:
    """Ankle travel (m/frame) between consecutive frames that are both in contact: A (F, 2, 3)."""
    both = contact[1:] & contact[:-1]
    step = np.linalg.norm(np.diff(A, axis=0), axis=-1)
    return step[both]


def _stats(v) -> dict:
    v = np.asarray(v, np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return {"n": 0, "mean": None, "median": None}
    return {"n": int(len(v)), "mean": float(v.mean()), "median": float(np.median(v))}


def evaluate(lifter: Lifter, seqs: list, sample: dict, table: dict | None, seed: int = 7,
             cfg: fl.FloorConfig = fl.FloorConfig()) -> dict:
    smooth_cfg = PipelineOptions().smoothing_config()
    acc: dict = {}
    status: dict = {}
    per_group: dict = {}
    t_floor = 0.0
    frames = 0

    def add(key, values, group=None):
        acc.setdefault(key, []).append(np.ravel(values))
        if group is not None:
            per_group.setdefault(group, {}).setdefault(key, []).append(np.ravel(values))

    for s in seqs:
        F = len(s["Xc"])
        uv, sc_lift = make_2d(s, False, 0.5, seed, sample, table)
        _, sc_raw = make_2d(s, False, 0.5, seed, sample, None)     # same errors, the network's own scores
        K, fps, gt = s["K"], s["fps"], s["Xc"]
        pred = lifter.lift(uv, sc_lift, K).astype(np.float64)
        valid = np.ones(F, bool)
        done = post_process(PersonMotion(pred, uv, valid), fps, K, smooth_cfg)
        X0, uv_s = done.joints3d.astype(np.float32), done.joints2d.astype(np.float32)
        t0 = time.perf_counter()
        res = fl.estimate(X0[None], uv_s[None], sc_raw[None], valid[None], K, fps, cfg)
        t_floor += time.perf_counter() - t0
        frames += F
        status[res.status] = status.get(res.status, 0) + 1
        g = s["group"]
        X1 = res.joints3d[0] if res.status == "estimated" else X0
        n_true = s["R"] @ np.array([0.0, 1.0, 0.0])
        h_true = float(s["C"][1])
        for name, X in (("without", X0), ("with", X1)):
            add(f"root_lateral_{name}", root_lateral_error(X[:, PELVIS], gt[:, PELVIS]), g)
            add(f"root_depth_{name}", root_depth_error(X[:, PELVIS, 2], gt[:, PELVIS, 2]), g)
            add(f"root_3d_{name}", np.linalg.norm(X[:, PELVIS] - gt[:, PELVIS], axis=-1), g)
        tc = true_contacts(gt, s["R"], s["C"], fps)
        add("true_contact_share", tc.mean(axis=1) if F else [])
        for name, X in (("gt", gt), ("without", X0), ("with", X1)):
            A = np.asarray(X[:, ANKLES], np.float64)
            add(f"sliding_{name}", np.concatenate([sliding(A[:, k], tc[:, k]) for k in range(2)]), g)
            # ankle height over the true floor against the truth's, during true contacts
            h_pred = A @ n_true + h_true
            h_gt = np.asarray(gt[:, ANKLES], np.float64) @ n_true + h_true
            add(f"ankle_height_err_true_floor_{name}", np.abs(h_pred - h_gt)[tc], g)
        if res.status != "estimated":
            continue
        flo = res.floor
        add("height_err_pct", [abs(flo.height - h_true) / h_true * 100], g)
        add("tilt_err_deg", [np.degrees(np.arccos(np.clip(flo.normal @ n_true, -1, 1)))], g)
        A1 = np.asarray(X1[:, ANKLES], np.float64)
        add("float_est_floor", np.abs(flo.signed_height(A1) - cfg.ankle_height_m)[tc], g)
        pc = res.contacts[0]
        add("contact_tp", [(pc & tc).sum()])
        add("contact_fp", [(pc & ~tc).sum()])
        add("contact_fn", [(~pc & tc).sum()])

    def summary(d: dict) -> dict:
        cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in d.items()}
        out = {}
        for name in ("without", "with"):
            out[f"root_{name}_floor"] = {
                "lateral_mm": round(_stats(cat[f"root_lateral_{name}"])["mean"] * 1000, 1),
                "depth_pct": round(_stats(cat[f"root_depth_{name}"])["mean"] * 100, 2),
                "depth_pct_median": round(_stats(cat[f"root_depth_{name}"])["median"] * 100, 2),
                "root_3d_mm": round(_stats(cat[f"root_3d_{name}"])["mean"] * 1000, 1)}
        for key in ("height_err_pct", "tilt_err_deg"):
            st = _stats(cat.get(key, []))
            out[key] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in st.items()}
        for name in ("gt", "without", "with"):
            st = _stats(cat[f"sliding_{name}"])
            out[f"sliding_mm_per_frame_{name}"] = None if st["mean"] is None else round(st["mean"] * 1000, 1)
        for name in ("without", "with"):
            st = _stats(cat[f"ankle_height_err_true_floor_{name}"])
            out[f"contact_ankle_height_err_true_floor_mm_{name}"] = (None if st["mean"] is None
                                                                     else round(st["mean"] * 1000, 1))
        st = _stats(cat.get("float_est_floor", []))
        out["contact_float_or_sink_est_floor_mm"] = None if st["mean"] is None else round(st["mean"] * 1000, 1)
        out["contact_float_or_sink_est_floor_mm_median"] = (None if st["median"] is None
                                                            else round(st["median"] * 1000, 1))
        return out

    res = summary(acc)
    tp, fp, fn = (float(np.concatenate(acc.get(k, [np.zeros(0)])).sum()) for k in
                  ("contact_tp", "contact_fp", "contact_fn"))
    res["contact_precision"] = round(tp / max(tp + fp, 1), 3)
    res["contact_recall"] = round(tp / max(tp + fn, 1), 3)
    res["true_contact_share"] = round(float(np.concatenate(acc["true_contact_share"]).mean()), 3)
    res["status"] = status
    res["frames"] = frames
    res["floor_ms_per_frame"] = round(t_floor / max(frames, 1) * 1000, 3)
    res["groups"] = {g: summary(d) for g, d in sorted(per_group.items())}
    return res


def pair_scenes(ms: mocap.MocapSet, seed: int = 0, max_frames: int | None = None, split: str = "test") -> list:
    """Two held-out people per scene under one static virtual camera: consecutive held-out clips
    paired, the second person's path moved so that their mean pelvis stands 1.5-4 m from the first's
    (a random direction on the floor), both cut to the shorter clip. List of dicts: name, Xc (2, F,
    16, 3), K, size, fps, C, R."""
    from data.cameras import sample_cameras, world_to_camera

    test = [int(c) for c in ms.indices(split)]
    out = []
    for i in range(0, len(test) - 1, 2):
        a, b = test[i], test[i + 1]
        XA, XB = ms.clip(a).astype(np.float64), ms.clip(b).astype(np.float64)
        F = min(len(XA), len(XB), max_frames or 10 ** 9)
        XA, XB = XA[:F], XB[:F]
        rng = np.random.default_rng([seed, a, b])
        ang, dist = rng.uniform(0, 2 * np.pi), rng.uniform(1.5, 4.0)
        shift = XA[:, PELVIS].mean(0) - XB[:, PELVIS].mean(0) + dist * np.array([np.cos(ang), 0.0, np.sin(ang)])
        shift[1] = 0.0                                            # both on the floor (y = 0)
        XB = XB + shift
        target = 0.5 * (XA[:, PELVIS].mean(0) + XB[:, PELVIS].mean(0))[None]
        for _ in range(50):
            cams = sample_cameras(target, rng)
            Xc = world_to_camera(np.stack([XA, XB]).reshape(1, 2 * F, 16, 3), cams)[0].reshape(2, F, 16, 3)
            if (Xc[..., 2] > 0.5).all():
                break
        else:
            continue
        out.append({"name": f"{ms.names[a]}+{ms.names[b]}", "Xc": Xc, "K": cams.K[0], "size": cams.size[0],
                    "fps": float(ms.fps[a]), "C": cams.C[0], "R": cams.R[0]})
    return out


def evaluate_pairs(lifter: Lifter, scenes: list, sample: dict, table: dict | None, seed: int = 7,
                   cfg: fl.FloorConfig = fl.FloorConfig()) -> dict:
    """One floor for everyone: two people per scene. Root depth error per person and the error of
    their relative placement (the true and predicted distance between their roots, and between
    their depths), without and with the floor; the floor's camera height and tilt errors."""
    smooth_cfg = PipelineOptions().smoothing_config()
    acc: dict = {}
    status: dict = {}
    for sc in scenes:
        K, fps, gt = sc["K"], sc["fps"], sc["Xc"]
        F = gt.shape[1]
        X0, U, S = [], [], []
        for p in range(2):
            one = {"name": f"{sc['name']}#{p}", "Xc": gt[p], "K": K, "size": sc["size"]}
            uv, s_l = make_2d(one, False, 0.5, seed, sample, table)
            _, s_r = make_2d(one, False, 0.5, seed, sample, None)
            pred = lifter.lift(uv, s_l, K).astype(np.float64)
            done = post_process(PersonMotion(pred, uv, np.ones(F, bool)), fps, K, smooth_cfg)
            X0.append(done.joints3d)
            U.append(done.joints2d)
            S.append(s_r)
        X0, U, S = np.stack(X0).astype(np.float32), np.stack(U).astype(np.float32), np.stack(S)
        res = fl.estimate(X0, U, S, np.ones((2, F), bool), K, fps, cfg)
        status[res.status] = status.get(res.status, 0) + 1
        X1 = res.joints3d if res.status == "estimated" else X0
        rg = gt[:, :, PELVIS]
        for name, X in (("without", X0), ("with", X1)):
            r = np.asarray(X[:, :, PELVIS], np.float64)
            acc.setdefault(f"depth_{name}", []).append(root_depth_error(r[..., 2], rg[..., 2]).ravel())
            acc.setdefault(f"root3d_{name}", []).append(np.linalg.norm(r - rg, axis=-1).ravel())
            acc.setdefault(f"between_{name}", []).append(
                np.abs(np.linalg.norm(r[0] - r[1], axis=-1) - np.linalg.norm(rg[0] - rg[1], axis=-1)))
            acc.setdefault(f"between_depth_{name}", []).append(
                np.abs((r[0, :, 2] - r[1, :, 2]) - (rg[0, :, 2] - rg[1, :, 2])))
        if res.status == "estimated":
            n_true = sc["R"] @ np.array([0.0, 1.0, 0.0])
            h_true = float(sc["C"][1])
            acc.setdefault("height_err_pct", []).append([abs(res.floor.height - h_true) / h_true * 100])
            acc.setdefault("tilt_err_deg", []).append(
                [np.degrees(np.arccos(np.clip(res.floor.normal @ n_true, -1, 1)))])
    cat = {k: np.concatenate(v) for k, v in acc.items()}
    out = {"scenes": len(scenes), "status": status}
    for name in ("without", "with"):
        out[f"{name}_floor"] = {
            "root_depth_pct": round(float(cat[f"depth_{name}"].mean()) * 100, 2),
            "root_3d_mm": round(float(cat[f"root3d_{name}"].mean()) * 1000, 1),
            "distance_between_people_err_mm": round(float(cat[f"between_{name}"].mean()) * 1000, 1),
            "depth_between_people_err_mm": round(float(cat[f"between_depth_{name}"].mean()) * 1000, 1)}
    for key in ("height_err_pct", "tilt_err_deg"):
        st = _stats(cat.get(key, []))
        out[key] = {k: (round(v, 2) if isinstance(v, float) else v) for k, v in st.items()}
    return out


def engine_cost(video: str, end: int | None) -> dict:
    """Run the engine (default preset) on a clip with the floor on; its own stage timings."""
    from inference.pipeline import run

    r = run(video, PipelineOptions(end=end, threads=2))
    st = r.stats
    return {"video": os.path.basename(video), "frames": st["frames"], "people": int(r.valid.shape[0]),
            "seconds_total": st["seconds_total"], "seconds_floor": st["seconds_floor"],
            "floor_share_pct": round(100 * st["seconds_floor"] / st["seconds_total"], 3),
            "floor_status": r.meta["floor"]["status"],
            "camera_height_m": r.meta["floor"].get("camera_height_m"),
            "pitch_deg": r.meta["floor"].get("pitch_deg")}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cams", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--pose-errors", default=DEFAULT_POSE_ERRORS)
    ap.add_argument("--video", default=None, help="also time the engine on this clip (floor share of run time)")
    ap.add_argument("--video-end", type=int, default=None, help="last frame (exclusive) of --video")
    ap.add_argument("--pairs", action="store_true", help="also scenes of two held-out people under one camera")
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.time()
    lifter = Lifter.load()
    ms = mocap.load(log=lambda m: None)
    seqs = heldout_sequences(ms, args.cams, args.seed, args.max_frames)
    sample = load_errors(args.pose_errors)
    with open(args.pose_errors.replace("_errors.npz", ".json")) as f:
        table = json.load(f).get("score_calibration")
    res = {"sequences": len(seqs), "clips": int(len(ms.indices("test"))), "cams_per_clip": args.cams,
           "seed": args.seed, "pose_errors": shown_path(args.pose_errors), "config": vars(fl.FloorConfig()),
           "pose_net_2d_engine": evaluate(lifter, seqs, sample, table),
           "pose_net_2d_engine_no_height_refine": evaluate(lifter, seqs, sample, table,
                                                           cfg=fl.FloorConfig(refine_heights=False))}
    if args.pairs:
        scenes = pair_scenes(ms, args.seed, args.max_frames)
        res["two_people"] = evaluate_pairs(lifter, scenes, sample, table)
        res["two_people_no_height_refine"] = evaluate_pairs(lifter, scenes, sample, table,
                                                            cfg=fl.FloorConfig(refine_heights=False))
    if args.video:
        res["engine"] = engine_cost(args.video, args.video_end)
    res["seconds"] = round(time.time() - t0, 1)
    publish(res, "evaluation.eval_floor", argv, args.out, to_markdown)
    return 0


def to_markdown(res: dict) -> str:
    lines = [f"# Floor stage on held-out mocap", "", f"Command: `{res['command']}`", "",
             f"{res['sequences']} sequences = {res['clips']} held-out clips x {res['cams_per_clip']} virtual "
             f"cameras (seed {res['seed']}), 2D: {res['pose_errors']} replayed, one person per sequence."]
    for key, title in (("pose_net_2d_engine", "True focal length: floor refined by the people's image heights "
                        "(as the engine with --focal)"),
                       ("pose_net_2d_engine_no_height_refine", "Without that refinement (as the engine "
                        "without --focal)")):
        if key in res:
            lines += ["", f"## {title}", ""] + _table(res[key])
    for key, title in (("two_people", "Two people per scene, focal known"),
                       ("two_people_no_height_refine", "Two people per scene, no image-height refinement")):
        if key in res:
            t = res[key]
            lines += ["", f"## {title}", "", f"{t['scenes']} scenes, floor status: {t['status']}; camera height "
                      f"error {t['height_err_pct']['mean']}% (median {t['height_err_pct']['median']}), tilt "
                      f"{t['tilt_err_deg']['mean']} degrees (median {t['tilt_err_deg']['median']}).", "",
                      "| | root depth % | root 3D mm | distance between the people, error mm | their depth "
                      "difference, error mm |", "| --- | --- | --- | --- | --- |"]
            for name in ("without", "with"):
                v = t[f"{name}_floor"]
                lines.append(f"| {name} floor | {v['root_depth_pct']} | {v['root_3d_mm']} | "
                             f"{v['distance_between_people_err_mm']} | {v['depth_between_people_err_mm']} |")
    if "engine" in res:
        e = res["engine"]
        lines += ["", f"Engine on {e['video']} ({e['frames']} frames, {e['people']} people, focal assumed): floor "
                  f"stage {e['seconds_floor']} s of {e['seconds_total']} s = {e['floor_share_pct']}% (status "
                  f"{e['floor_status']}, camera height {e['camera_height_m']} m, pitch {e['pitch_deg']} deg)."]
    return "\n".join(lines) + "\n"


def _table(r: dict) -> list[str]:
    lines = [f"Floor status: {r['status']}", "",
             "| group | root lateral mm (no floor -> floor) | root depth % | root 3D mm | camera height err % "
             "(median) | tilt err deg (median) | sliding mm/frame GT / no floor / floor | ankle height err "
             "vs true floor mm (no floor -> floor) | float/sink on est. floor mm |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for g, v in [("all", r)] + sorted(r["groups"].items()):
        a, b = v["root_without_floor"], v["root_with_floor"]
        lines.append(
            f"| {g} | {a['lateral_mm']} -> {b['lateral_mm']} | {a['depth_pct']} -> {b['depth_pct']} | "
            f"{a['root_3d_mm']} -> {b['root_3d_mm']} | {v['height_err_pct']['mean']} ({v['height_err_pct']['median']}) | "
            f"{v['tilt_err_deg']['mean']} ({v['tilt_err_deg']['median']}) | {v['sliding_mm_per_frame_gt']} / "
            f"{v['sliding_mm_per_frame_without']} / {v['sliding_mm_per_frame_with']} | "
            f"{v['contact_ankle_height_err_true_floor_mm_without']} -> {v['contact_ankle_height_err_true_floor_mm_with']} | "
            f"{v['contact_float_or_sink_est_floor_mm']} |")
    lines += ["", f"Contacts against the truth: precision {r['contact_precision']}, recall {r['contact_recall']} "
              f"(true contact share {r['true_contact_share']}). Floor stage: {r['floor_ms_per_frame']} ms per frame."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
