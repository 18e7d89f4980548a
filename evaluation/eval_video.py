"""End-to-end 2D check of stage 1 (detector, crops, re-cuts, tracking) on synthetic videos.

    python -m evaluation.eval_video [--clips 40] [--frames 30] [--refine] [--detect-every 8] [--track-every 2]

Each clip is one held-out LSPET photograph (im09001-im10000, never trained on) filmed by a
virtual hand-held camera: a 960 x 540, 30 fps video in which the camera pans and zooms over the
photo (the annotated person drifts across the frame and grows or shrinks by up to 2x, with a
little shake). The ground-truth joints move with the same image transform, so every frame has
exact labels. The clip goes through the whole engine (``inference.run``: learned detector, HOG
fallback, pose crops, re-cuts, tracking, gap filling, smoothing) and per frame the output pose
nearest to the annotated person is scored:

* ``pck``: PCK@0.2 (torso-normalised, visible LSP joints) over all frames; a frame where the
  person was not found counts as all joints wrong;
* ``found``: % of frames with an output pose whose centre is within one torso size of the
  annotated person's root (see ``_match``);
* ``pck_found``: PCK over the frames where the person was found;
* ``extra``: output poses per frame that match nobody (other people in the photo count here
  too: LSPET labels one person per photo);
* ``ids_per_person``: distinct output ids matched to the annotated person per clip (over the
  clips where they were found; 1 is ideal) and ``split_clips``: % of those clips with more than
  one id (one person broken into several armatures);
* ``fps``: the engine's own rate after loading (``stats["fps_processing"]``);
* ``root_pck``: where the person was found, PCK@0.2 of the 3D root's projection (the pose file's
  ``joints3d`` pelvis seen through its ``camera_K``) against the annotated mid-hips: where the
  lifted person stands across the image, which the 2D pelvis alone used to fix
  (``--root-from-pelvis``, ``PipelineOptions.root_from_joints``; core/root_ray.py).

The photos are still, so this measures finding, cropping and following a person, not motion.
With ``--occlude S`` a grey panel hides the person (their joints' box, 1.3x) for S seconds in the
middle of each clip, as a pillar or a passer-by would; those frames are not scored, and
``ids_per_person`` then shows whether the person came back under their own id. With
``--edge-exit S`` the camera instead pans the person out of the frame over the nearer side edge
(in 0.4 s), stays off them for S seconds and pans back: the frames where the person is wholly
outside are not scored, and ``ids_per_person`` shows whether they came back under their own id.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from data.lsp import DEFAULT_LSP, load_annotations
from evaluation.eval_2d import pck, torso_size
from inference.core import camera, crops
from inference.errors import InferenceError
from inference.pipeline import load_models, PipelineOptions, PRESETS, run
from posefile.skeleton import PELVIS

FRAME_W, FRAME_H, FPS = 960, 540, 30.0


def camera_path(person_box: np.ndarray, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Affine maps (frames, 2, 3) photo -> video frame: the person's box (cx, cy, side) is shown
    at a height that goes from h0 to h1 (120-360 px) while its centre drifts between two random
    points of the middle of the frame, plus a small shake."""
    cx, cy, side = person_box
    h0, h1 = rng.uniform(120, 360, 2)
    p0 = rng.uniform([0.3 * FRAME_W, 0.4 * FRAME_H], [0.7 * FRAME_W, 0.6 * FRAME_H])
    p1 = rng.uniform([0.3 * FRAME_W, 0.4 * FRAME_H], [0.7 * FRAME_W, 0.6 * FRAME_H])
    t = np.linspace(0.0, 1.0, frames)
    ease = 0.5 - 0.5 * np.cos(np.pi * t)                      # starts and stops smoothly
    phase = rng.uniform(0, 2 * np.pi, 2)
    shake = 3.0 * np.stack([np.sin(2 * np.pi * 1.3 * t * frames / FPS + phase[0]),
                            np.sin(2 * np.pi * 0.9 * t * frames / FPS + phase[1])], 1)
    mats = np.zeros((frames, 2, 3))
    for f in range(frames):
        s = (h0 + (h1 - h0) * ease[f]) / max(side, 1.0)
        centre = p0 + (p1 - p0) * ease[f] + shake[f]
        mats[f] = [[s, 0, centre[0] - s * cx], [0, s, centre[1] - s * cy]]
    return mats


EDGE_PAN_S = 0.4   # --edge-exit: seconds the camera takes to pan the person out (and back)


def edge_exit(mats: np.ndarray, gt: np.ndarray, vis: np.ndarray, out_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Camera path mats (F, 2, 3) with a horizontal pan added in the middle of the clip that takes
    the person (joints gt (F, J, 2) through mats, vis (J,)) out over the nearer side edge, keeps
    them out for out_s seconds and brings them back. Returns (new mats, outside (F,) bool: frames
    where no visible joint is inside the frame)."""
    F = len(mats)
    n_pan, n_out = max(1, int(round(EDGE_PAN_S * FPS))), int(round(out_s * FPS))
    start = max(0, (F - n_out) // 2 - n_pan)
    weight = np.zeros(F)
    ramp = 0.5 - 0.5 * np.cos(np.pi * np.arange(1, n_pan + 1) / n_pan)
    weight[start:start + n_pan] = ramp[:F - start]
    weight[start + n_pan:start + n_pan + n_out] = 1.0
    back = start + n_pan + n_out
    weight[back:back + n_pan] = ramp[::-1][:max(0, F - back)]
    mid = min(start + n_pan, F - 1)
    xs = gt[:, vis, 0]                                         # (F, n)
    # Each frame's shift puts the person's whole box a margin past the nearer edge (the camera
    # path itself drifts, so one shift for all frames would let them drift back in).
    width = np.ptp(xs, axis=1) if xs.shape[1] else np.zeros(F)
    if xs[mid].mean() < FRAME_W / 2:
        shift = -(xs.max(1) + 0.3 * width + 10.0)
    else:
        shift = FRAME_W - xs.min(1) + 0.3 * width + 10.0
    out = mats.copy()
    out[:, 0, 2] += weight * shift
    x = xs + (weight * shift)[:, None]
    y = gt[:, vis, 1]
    outside = ~((x >= 0) & (x < FRAME_W) & (y >= 0) & (y < FRAME_H)).any(1)
    return out, outside


def occluder_boxes(gt: np.ndarray, vis: np.ndarray, hidden: np.ndarray, grow: float = 1.3) -> np.ndarray:
    """(F, 4) boxes x0, y0, x1, y1 px that hide the person on the frames where hidden (F,) is
    True (NaN elsewhere): their visible joints' box gt (F, J, 2), grown by grow about its centre."""
    out = np.full((len(gt), 4), np.nan)
    for f in np.nonzero(hidden)[0]:
        lo, hi = gt[f, vis].min(0), gt[f, vis].max(0)
        c, half = 0.5 * (lo + hi), 0.5 * grow * (hi - lo)
        out[f] = [*(c - half), *(c + half)]
    return out


def render_clip(image: np.ndarray, mats: np.ndarray, path: Path, cover: np.ndarray | None = None) -> None:
    """Film the photo through the camera path mats (F, 2, 3) into an mp4; cover (F, 4): a grey
    panel over these boxes (NaN rows: none)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (FRAME_W, FRAME_H))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for f, M in enumerate(mats):
            # Replicated borders: no mirrored copies of the person at the edges.
            frame = cv2.warpAffine(image, M, (FRAME_W, FRAME_H), flags=cv2.INTER_LINEAR,
                                   borderMode=cv2.BORDER_REPLICATE)
            if cover is not None and np.isfinite(cover[f]).all():
                x0, y0, x1, y1 = np.round(cover[f]).astype(int)
                cv2.rectangle(frame, (x0, y0), (x1, y1), (128, 128, 128), thickness=-1)
            writer.write(frame)
    finally:
        writer.release()


def _match(pred2d: np.ndarray, valid: np.ndarray, gt: np.ndarray, vis: np.ndarray, torso: float):
    """Per frame: the output person whose root is nearest the annotated one, if within one torso
    size (root = pelvis, else the mean of the visible joints). pred2d (P, 16, 2), valid (P,),
    gt (16, 2), vis (16,). Returns (index or -1, number of unmatched valid poses)."""
    if not valid.any():
        return -1, 0
    g = gt[PELVIS] if vis[PELVIS] else gt[vis].mean(0)
    seen = np.isfinite(pred2d).all(-1)                               # (P, 16)
    centre = np.where(seen[..., None], pred2d, 0.0).sum(1) / np.maximum(seen.sum(1), 1)[:, None]
    d = np.linalg.norm(centre - g, axis=-1)
    d = np.where(valid & seen.any(1), d, np.inf)
    k = int(np.argmin(d))
    if not d[k] <= torso:
        return -1, int(valid.sum())
    return k, int(valid.sum()) - 1


def evaluate(options, clips: int = 40, frames: int = 30, seed: int = 0, data_root: str | None = None,
             models=None, progress=None, occlude_s: float = 0.0, edge_exit_s: float = 0.0) -> dict:
    """Run the engine on ``clips`` synthetic clips; options: a PipelineOptions (start/end ignored);
    occlude_s: seconds in the middle of each clip during which the person is hidden; edge_exit_s:
    seconds the person spends outside the frame instead (see ``edge_exit``)."""
    root = Path(data_root or DEFAULT_LSP)
    names, joints, visible, is_test = load_annotations(root)
    test = np.where(is_test)[0]
    rng = np.random.default_rng(seed)
    pick = rng.choice(test, size=min(clips, len(test)), replace=False)
    opts = replace(options, start=0, end=None)
    models = models or load_models(opts)
    preds, gts, viss, found, extra = [], [], [], [], 0
    roots = []                    # where found: the 3D root's projection (root_pck)
    ids_per_clip = []
    seconds = 0.0
    hidden = np.zeros(frames, bool)
    n_hidden = min(int(round(occlude_s * FPS)), frames)
    hidden[(frames - n_hidden) // 2:(frames - n_hidden) // 2 + n_hidden] = True
    with tempfile.TemporaryDirectory() as tmp:
        for n, i in enumerate(pick):
            image = cv2.imread(str(root / "images" / names[i]))
            vis = visible[i]
            mats = camera_path(crops.box_from_joints(joints[i], vis), frames, rng)
            path = Path(tmp) / f"clip{n:03d}.mp4"
            gt = np.einsum("fij,kj->fki", mats[:, :, :2], joints[i]) + mats[:, None, :, 2]
            outside = np.zeros(frames, bool)
            if edge_exit_s > 0:
                mats, outside = edge_exit(mats, gt, vis, edge_exit_s)
                gt = np.einsum("fij,kj->fki", mats[:, :, :2], joints[i]) + mats[:, None, :, 2]
            render_clip(image, mats, path, occluder_boxes(gt, vis, hidden) if hidden.any() else None)
            t0 = time.perf_counter()
            res = run(path, opts, models=models)
            seconds += time.perf_counter() - t0
            torso = torso_size(gt, np.repeat(vis[None], frames, 0))
            ids = set()
            # Frames without a usable torso are left out (as pck() leaves them out).
            for f in range(min(frames, res.valid.shape[1])):
                if not np.isfinite(torso[f]) or hidden[f] or outside[f]:
                    continue
                k, more = _match(res.joints2d[:, f], res.valid[:, f], gt[f], vis, torso[f])
                extra += more
                found.append(k >= 0)
                if k >= 0:
                    ids.add(int(res.person_ids[k]))
                    roots.append(_projected_root(res, k, f))
                # a missed person: NaN joints, all wrong for pck()
                preds.append(res.joints2d[k, f] if k >= 0 else np.full(gt[f].shape, np.nan))
                gts.append(gt[f])
                viss.append(vis)
            if ids:
                ids_per_clip.append(len(ids))
            if progress:
                progress(n + 1, len(pick))
    pred, gt, vis, found = np.array(preds), np.array(gts), np.array(viss, bool), np.array(found, bool)
    frames_all = len(found)
    return {"clips": int(len(pick)), "frames": int(frames_all), "seed": seed, "occlude_s": occlude_s,
            "edge_exit_s": edge_exit_s,
            "pck": round(pck(pred, gt, vis)["mean"], 1) if frames_all else 0.0,
            "found": round(100.0 * found.sum() / max(frames_all, 1), 1),
            "pck_found": round(pck(pred[found], gt[found], vis[found])["mean"], 1) if found.any() else 0.0,
            "extra_per_frame": round(extra / max(frames_all, 1), 3),
            "ids_per_person": round(float(np.mean(ids_per_clip)), 3) if ids_per_clip else 0.0,
            "split_clips": round(100.0 * float(np.mean(np.array(ids_per_clip) > 1)), 1) if ids_per_clip else 0.0,
            "fps": round(len(pick) * frames / max(seconds, 1e-9), 1),
            "root_pck": _root_pck(np.array(roots), gt[found], vis[found]) if found.any() else 0.0}


def _projected_root(res, k: int, f: int) -> np.ndarray:
    """Output person k's 3D root in frame f, projected into the image (px)."""
    return camera.project(res.joints3d[k, f, PELVIS], res.camera_K)


def _root_pck(roots: np.ndarray, gt: np.ndarray, vis: np.ndarray) -> float:
    """PCK@0.2 (%) of projected roots (N, 2) against the annotated mid-hips of gt (N, 16, 2)."""
    pred = np.full(gt.shape, np.nan)
    pred[:, PELVIS] = roots
    return round(pck(pred, gt, vis)["per_joint"]["pelvis"], 1)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--occlude", type=float, default=0.0, metavar="SECONDS",
                    help="hide the person behind a panel for this long in the middle of each clip")
    ap.add_argument("--edge-exit", type=float, default=0.0, metavar="SECONDS",
                    help="pan the person out of the frame over the nearer side edge for this long, then back")
    ap.add_argument("--data", default=None, help="LSP folder (default ../shared/data/lsp)")
    ap.add_argument("--weights", default=None, help="weights folder (default weights/)")
    ap.add_argument("--preset", default=PipelineOptions.preset, choices=PRESETS)
    ap.add_argument("--flip", action="store_true", help="flip test in the pose network")
    ap.add_argument("--refine", action="store_true", help="re-cut crops whose pose came out off-centre")
    ap.add_argument("--detect-every", type=int, default=PipelineOptions.detect_every)
    ap.add_argument("--track-every", type=int, default=PipelineOptions.track_every)
    ap.add_argument("--fallback-detector", choices=("hog", "none"), default="hog")
    ap.add_argument("--start-score", type=float, default=None,
                    help="start gate for new tracks (default: the pose weights' own)")
    ap.add_argument("--detection-threshold", type=float, default=None,
                    help="detector threshold (default: the detector weights' own)")
    ap.add_argument("--stitch-gap", type=float, default=PipelineOptions.stitch_gap_s,
                    help="join a person's broken track across gaps up to this long, seconds (0: off)")
    ap.add_argument("--stitch-edge-gap", type=float, default=PipelineOptions.stitch_edge_gap_s,
                    help="join a person who left over a side edge and came back within this long, seconds (0: off)")
    ap.add_argument("--crop-shrink", type=float, default=PipelineOptions.crop_shrink_per_s,
                    help="least factor a track's crop may shrink by in a second (0: no limit)")
    ap.add_argument("--skeleton-decode", action="store_true",
                    help="decode joints under skeleton priors (PipelineOptions.skeleton_decode)")
    ap.add_argument("--keep-side-flicker", action="store_true",
                    help="leave the network's short left/right flips as they are (core/sides.py off)")
    ap.add_argument("--keep-unconfirmed", action="store_true",
                    help="also keep tracks never confirmed as a person (person verification off)")
    ap.add_argument("--root-from-pelvis", action="store_true",
                    help="place the 3D root on the 2D pelvis's ray (core/root_ray.py off)")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    try:
        opts = _options(args)
        opts.check()   # before the data and the networks load
        if args.clips < 1 or args.frames < 1:
            raise InferenceError(f"--clips and --frames must be >= 1, got {args.clips} and {args.frames}")
        if args.occlude and args.edge_exit:
            raise InferenceError("--occlude and --edge-exit are two different tests: give one")
        res = evaluate(opts, args.clips, args.frames, args.seed, args.data, occlude_s=args.occlude,
                       edge_exit_s=args.edge_exit,
                       progress=lambda n, t: print(f"\r{n}/{t} clips", end="", file=sys.stderr, flush=True))
    except (InferenceError, FileNotFoundError) as e:   # bad option values, missing data or weights
        ap.error(str(e))   # one usage line and exit status 2, like any other bad option
    print(file=sys.stderr)
    res["command"] = "python -m evaluation.eval_video " + " ".join(argv if argv is not None else sys.argv[1:])
    res["options"] = {"preset": opts.preset, "flip_test": bool(args.flip), "refine_crops": opts.refine_crops, "detect_every": opts.detect_every,
                      "track_every": opts.track_every,
                      "fallback_detector": opts.fallback_detector, "weights": args.weights or "weights/",
                      "start_pose_score": opts.start_pose_score, "detection_threshold": opts.detection_threshold,
                      "stitch_gap_s": opts.stitch_gap_s, "stitch_edge_gap_s": opts.stitch_edge_gap_s,
                      "crop_shrink_per_s": opts.crop_shrink_per_s,
                      "verify_people": opts.verify_people, "fix_side_flicker": opts.fix_side_flicker,
                      "skeleton_decode": opts.skeleton_decode, "root_from_joints": opts.root_from_joints}
    print(json.dumps(res, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


def _options(args):
    return PipelineOptions(weights_dir=args.weights, preset=args.preset, flip_test=args.flip or None,
                           refine_crops=args.refine,
                           detect_every=args.detect_every, track_every=args.track_every,
                           fallback_detector=args.fallback_detector,
                           threads=args.threads, start_pose_score=args.start_score,
                           detection_threshold=args.detection_threshold, stitch_gap_s=args.stitch_gap,
                           stitch_edge_gap_s=args.stitch_edge_gap,
                           crop_shrink_per_s=args.crop_shrink, verify_people=not args.keep_unconfirmed,
                           fix_side_flicker=not args.keep_side_flicker,
                           skeleton_decode=args.skeleton_decode, root_from_joints=not args.root_from_pelvis)


if __name__ == "__main__":
    sys.exit(main())
