"""PCK@0.2 and PCK@0.1 (torso-normalised) of a 2D pose network on the held-out LSP split.

    python -m evaluation.eval_2d --weights weights/pose_fast.json [--flip] [--limit N] [--out FILE.json]
    python -m evaluation.eval_2d --checkpoint runs/pose_fast/last.pt
    python -m evaluation.eval_2d --weights pose_balanced --in-size 160   # the same crops at 160 px
    python -m evaluation.eval_2d --blur-sweep          # how codec.DECODE_BLUR was picked
    python -m evaluation.eval_2d --flip-sweep          # flip test only where the plain pass is unsure

Each test image is read from the original JPEG, cropped around the annotated person
(ground-truth box, as in the usual single-person protocol), and the predictions are
mapped back to the original pixels. A joint is correct when its error is below 0.2 x the
torso size (the mean length of the available torso diagonals, r_shoulder-l_hip and
l_shoulder-r_hip). Only visible ground-truth joints count. The headline mean is over the
14 annotated LSP joints; pelvis and thorax (derived as mid-points) are reported too. PCK@0.1
(half the radius) is reported beside it for fine localisation.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from data.lsp import DEFAULT_LSP, load_annotations
from inference.core import codec, crops
from inference.models.hourglass import HourglassConfig, StackedHourglass
from inference.stages.pose2d import crop_heatmaps, decode_crops, load_hourglass, load_network
from posefile.skeleton import JOINT_INDEX as INDEX, JOINT_NAMES

LSP_JOINTS = [i for i, n in enumerate(JOINT_NAMES) if n not in ("pelvis", "thorax")]


def torso_size(joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, 16, 2), (N, 16) -> (N,) mean length of the visible torso diagonals (NaN if none)."""
    out = np.full(len(joints), np.nan, np.float32)
    diags = [(INDEX["r_shoulder"], INDEX["l_hip"]), (INDEX["l_shoulder"], INDEX["r_hip"])]
    lengths = np.stack([np.linalg.norm(joints[:, a] - joints[:, b], axis=-1) for a, b in diags], 1)
    ok = np.stack([visible[:, a] & visible[:, b] for a, b in diags], 1)
    n = ok.sum(1)
    has = n > 0
    out[has] = (lengths * ok).sum(1)[has] / n[has]
    return out


def _hits(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, alpha: float):
    """-> hit (N, 16) correct joints, mask (N, 16) joints that count, torso (N,) (1 where unusable),
    use (N,) images with a usable torso."""
    torso = torso_size(gt, visible)
    use = np.isfinite(torso)
    t = np.where(use, torso, 1.0)
    mask = visible & use[:, None]
    return (np.linalg.norm(pred - gt, axis=-1) / t[:, None] <= alpha) & mask, mask, t, use


def pck(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, alpha: float = 0.2) -> dict:
    """pred, gt (N, 16, 2) px, visible (N, 16) -> {"per_joint": {name: %}, "mean": %, "mean16": %, "n_images"}."""
    hit, mask, _, use = _hits(pred, gt, visible, alpha)
    per = {JOINT_NAMES[j]: float(100 * hit[:, j].sum() / max(mask[:, j].sum(), 1)) for j in range(len(JOINT_NAMES))}
    mean14 = float(100 * hit[:, LSP_JOINTS].sum() / max(mask[:, LSP_JOINTS].sum(), 1))
    mean16 = float(100 * hit.sum() / max(mask.sum(), 1))
    return {"per_joint": per, "mean": mean14, "mean16": mean16, "n_images": int(use.sum()), "alpha": alpha}


SIDE_PAIRS = [(f"r_{a}", f"l_{a}") for a in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")]
FACING_CLEAR = 0.2      # |facing| above this: clearly towards or away from the camera


def facing(joints: np.ndarray) -> np.ndarray:
    """(N, 16, 2) -> (N,) which way the torso faces: > 0 towards the camera (upright, the person's
    right on the image's left), < 0 away, about 0 in profile. The cross product of the body's up
    (mid-hips -> mid-shoulders) with right -> left shoulder plus right -> left hip, over the up
    length squared: the same under any rotation in the image (upside-down gymnasts too)."""
    j = {n: joints[:, INDEX[n]].astype(np.float64) for n in ("r_hip", "l_hip", "r_shoulder", "l_shoulder")}
    up = (j["r_shoulder"] + j["l_shoulder"] - j["r_hip"] - j["l_hip"]) / 2

    def across(a, b):
        d = j[b] - j[a]
        return up[:, 0] * d[:, 1] - up[:, 1] * d[:, 0]

    return (across("r_shoulder", "l_shoulder") + across("r_hip", "l_hip")) / ((up ** 2).sum(-1) + 1e-9)


def left_right(pred: np.ndarray, gt: np.ndarray, visible: np.ndarray, alpha: float = 0.2) -> dict:
    """How the left/right pairs fail. pred, gt (N, 16, 2), visible (N, 16) -> per pair, over the
    images with both joints visible and at least 2 alpha torso apart: "merged" (both predictions
    within alpha/2 torso of each other: the two labels on one limb), "swapped" (each prediction
    correct for the other side only); "pck_side_free": PCK@alpha with each pair allowed the
    better of its two assignments (what a perfect left/right call would add); and "facing": of
    the people clearly facing towards / away from the camera (|facing| > FACING_CLEAR, torso
    visible), the share whose predicted torso clearly faces the other way (the whole body read
    mirrored, as back views often are)."""
    hit, mask, t, _ = _hits(pred, gt, visible, alpha)
    free = hit.copy()
    pairs = {}
    for a, b in SIDE_PAIRS:
        i, j = INDEX[a], INDEX[b]
        both = mask[:, i] & mask[:, j]
        cross_i = (np.linalg.norm(pred[:, i] - gt[:, j], axis=-1) / t <= alpha) & both
        cross_j = (np.linalg.norm(pred[:, j] - gt[:, i], axis=-1) / t <= alpha) & both
        better = (cross_i.astype(int) + cross_j) > (hit[:, i].astype(int) + hit[:, j])
        free[better, i], free[better, j] = cross_i[better], cross_j[better]
        apart = both & (np.linalg.norm(gt[:, i] - gt[:, j], axis=-1) / t >= 2 * alpha)
        merged = np.linalg.norm(pred[:, i] - pred[:, j], axis=-1) / t < alpha / 2
        swapped = cross_i & cross_j & ~hit[:, i] & ~hit[:, j]
        n = max(int(apart.sum()), 1)
        pairs[a[2:]] = {"images": int(apart.sum()), "merged_%": round(100 * (merged & apart).sum() / n, 1),
                        "swapped_%": round(100 * (swapped & apart).sum() / n, 1)}
    side_free = float(100 * free[:, LSP_JOINTS].sum() / max(mask[:, LSP_JOINTS].sum(), 1))
    # Whole-body mirroring: people clearly facing one way whose predicted torso faces the other.
    torso = visible[:, [INDEX[n] for n in ("r_hip", "l_hip", "r_shoulder", "l_shoulder")]].all(1)
    f_gt, f_pred = facing(gt), facing(pred)
    towards, away = torso & (f_gt > FACING_CLEAR), torso & (f_gt < -FACING_CLEAR)

    def share(rows, wrong):
        return round(100 * float(wrong[rows].mean()), 1) if rows.any() else None

    turned = {"images_towards": int(towards.sum()), "images_away": int(away.sum()),
              "towards_read_as_away_%": share(towards, f_pred < -FACING_CLEAR),
              "away_read_as_towards_%": share(away, f_pred > FACING_CLEAR)}
    return {"pairs": pairs, "pck_side_free": round(side_free, 2), "facing": turned}


def load_model(weights: str | None = None, checkpoint: str | None = None,
               kind: str = "2d", runtime: str = "torch", in_size: int | None = None) -> tuple[StackedHourglass, dict]:
    """A network in eval mode on the CPU, from a training checkpoint or shipped weights; runtime
    'onnx' (or 'auto') runs shipped weights through ONNX Runtime as the engine does (models/runtime.py).
    in_size (torch only) runs the same weights on crops of that side instead of the configured one:
    the network is fully convolutional, and every crop and decode step reads model.cfg.in_size."""
    if checkpoint:
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        model = StackedHourglass(HourglassConfig.from_dict(state["config"]))
        model.load_state_dict(state["model"])
        model, info = model.eval(), {"checkpoint": str(checkpoint), "step": state["step"]}
    elif runtime != "torch":
        if in_size:
            raise ValueError("in_size needs the torch runtime (an ONNX file has a fixed input size)")
        net, manifest = load_network(weights or "pose_fast", kind, "cpu", runtime, torch.get_num_threads())
        return net, {"weights": manifest["file"], "sha256": manifest["sha256"], "runtime": net.runtime,
                     "in_size": net.cfg.in_size}
    else:
        model, manifest = load_hourglass(weights or "pose_fast", kind, torch.device("cpu"))
        info = {"weights": manifest["file"], "sha256": manifest["sha256"], "runtime": "torch"}
    if in_size and in_size != model.cfg.in_size:
        info["trained_in_size"] = model.cfg.in_size
        model.cfg = dataclasses.replace(model.cfg, in_size=in_size)
        StackedHourglass.check_size(model.cfg)
    return model, {**info, "in_size": model.cfg.in_size}


def predict(model: StackedHourglass, data_root: str, idx: np.ndarray, flip: bool = False, batch: int = 32,
            box_jitter: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Joints (N, 16, 2) original pixels and raw scores (N, 16) for LSP images idx, each cropped
    around its annotated person; box_jitter > 0 moves the box centre by up to that fraction of
    its size and scales it by up to exp(+-box_jitter), the way a detector misses (fixed seed)."""
    heat, mats = person_heatmaps(model, data_root, idx, flip, batch, box_jitter, seed)
    return decode_crops(heat, mats, model.cfg.in_size)


@torch.no_grad()
def person_heatmaps(model: StackedHourglass, data_root: str, idx: np.ndarray, flip: bool = False,
                    batch: int = 32, box_jitter: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The network's heatmaps (N, 16, H, H) of the crops around LSP images idx's people and the
    image->crop affines (N, 2, 3); box_jitter as in predict."""
    names, joints, visible, _ = load_annotations(data_root)
    rng = np.random.default_rng(seed)
    S = model.cfg.in_size
    heats, mats = [], []
    for start in range(0, len(idx), batch):
        cs = []
        for i in idx[start:start + batch]:
            img = cv2.imread(str(Path(data_root) / "images" / names[i]))
            box = np.array(crops.box_from_joints(joints[i], visible[i]), np.float32)
            if box_jitter:
                box[:2] += rng.uniform(-box_jitter, box_jitter, 2) * box[2]
                box[2] *= np.exp(rng.uniform(-box_jitter, box_jitter))
            M = crops.crop_matrix(box, S)
            cs.append(crops.warp(img, M, S))
            mats.append(M)
        heats.append(crop_heatmaps(model, np.stack(cs), torch.device("cpu"), flip))
    return np.concatenate(heats), np.stack(mats)


def evaluate(model: StackedHourglass, data_root: str, flip: bool = False, limit: int = 0,
             batch: int = 32) -> dict:
    _, joints, visible, is_test = load_annotations(data_root)
    idx = np.where(is_test)[0]
    if limit:
        idx = idx[:limit]
    t0 = time.time()
    preds, _ = predict(model, data_root, idx, flip, batch)
    result = pck(preds, joints[idx], visible[idx])
    fine = pck(preds, joints[idx], visible[idx], alpha=0.1)
    result["pck@0.1"] = {k: fine[k] for k in ("mean", "mean16", "per_joint")}
    result["left_right"] = left_right(preds, joints[idx], visible[idx])
    result.update(flip=flip, seconds=round(time.time() - t0, 1), split="LSPET im09001-im10000 (held out)")
    return result

def _background_box(box: np.ndarray, size_wh, rng: np.random.Generator):
    """A box of the person's size elsewhere in the image: mostly inside it and not overlapping
    the person (centres at least one box size apart on some axis), or None."""
    W, H = size_wh
    s = box[2]
    for _ in range(20):
        c = rng.uniform([s * 0.3, s * 0.3], [max(W - s * 0.3, s * 0.3 + 1), max(H - s * 0.3, s * 0.3 + 1)])
        if np.abs(c - box[:2]).max() >= s:
            return np.array([c[0], c[1], s], np.float32)
    return None


BOX_JITTER = 0.15     # detector-like box error for the gate's crops (fraction of the box size)
START_RECALL = 0.9    # share of held-out people whose pose passes the start gate


def _jitter(box: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shift = rng.uniform(-BOX_JITTER, BOX_JITTER, 2) * box[2]
    return np.array([box[0] + shift[0], box[1] + shift[1], box[2] * np.exp(rng.uniform(-BOX_JITTER, BOX_JITTER))],
                    np.float32)


def gate_crops(data_root: str, size: int, limit: int = 400, seed: int = 0,
               rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The gate's crops (person_score_gate): (N, size, size, 3) uint8 BGR and kinds (N,) bool, True
    for a crop around a held-out person, False for a background crop of the same photograph.
    rows: other LSP rows instead of the held-out ones (e.g. training rows)."""
    names, joints, visible, is_test = load_annotations(data_root)
    rng = np.random.default_rng(seed)
    cs, kinds = [], []
    for i in (np.where(is_test)[0] if rows is None else np.asarray(rows))[: limit or None]:
        img = cv2.imread(str(Path(data_root) / "images" / names[i]))
        box = crops.box_from_joints(joints[i], visible[i])
        cs.append(crops.warp(img, crops.crop_matrix(_jitter(box, rng), size), size))
        kinds.append(True)
        bg = _background_box(box, (img.shape[1], img.shape[0]), rng)
        if bg is not None:
            cs.append(crops.warp(img, crops.crop_matrix(_jitter(bg, rng), size), size))
            kinds.append(False)
    return np.stack(cs), np.array(kinds, bool)


@torch.no_grad()
def person_score_gate(model: StackedHourglass, data_root: str, limit: int = 400, seed: int = 0) -> dict:
    """How well the pose network's mean joint score tells a person crop from a background crop,
    on held-out images: crops around the annotated person vs crops of the same size elsewhere in
    the same photograph, both cut from boxes jittered the way a detector misses (centre within
    +-BOX_JITTER of the size, size within a factor exp(+-BOX_JITTER)). Returns percentiles of
    both, the best Youden index (true-positive rate - false-positive rate), and `start_score`,
    the highest threshold that keeps START_RECALL of the people, which the engine uses before a
    new track may start: a pose must look like a person, but a missed person costs an animator
    more than a ghost track they can delete."""
    patches, kinds = gate_crops(data_root, model.cfg.in_size, limit, seed)
    mean_scores = np.concatenate([codec.decode(crop_heatmaps(model, patches[s:s + 32], torch.device("cpu")))[1]
                                  .mean(-1) for s in range(0, len(patches), 32)])   # the engine's joint scores
    person, background = mean_scores[kinds].astype(np.float64), mean_scores[~kinds].astype(np.float64)
    # thresholds on a 0.001 grid, rounded down so that the lowest keeps every person
    cands = np.unique(np.floor(np.r_[person, background] * 1000) / 1000)
    person_rate = np.array([(person >= t).mean() for t in cands])      # falls as t rises
    j = person_rate - np.array([(background >= t).mean() for t in cands])
    best = float(cands[person_rate >= START_RECALL][-1])
    pct = lambda a, q: [round(float(v), 3) for v in np.percentile(a, q)]  # noqa: E731
    return {"start_score": round(best, 3), "start_recall": START_RECALL, "box_jitter": BOX_JITTER,
            "youden": round(float(max(j)), 3), "youden_score": round(float(cands[int(np.argmax(j))]), 3),
            "person_rate": round(float((person >= best).mean()), 3),
            "background_rate": round(float((background >= best).mean()), 3),
            "person_p5_25_50": pct(person, [5, 25, 50]), "background_p50_75_95": pct(background, [50, 75, 95]),
            "n_person": len(person), "n_background": len(background),
            "split": "LSPET im09001-im10000 (held out): person crops vs same-size crops elsewhere in the photo"}


def blur_sweep(model: StackedHourglass, data_root: str, sigmas=(0.0, 0.5, 0.75, 1.0, 1.5, 2.0),
               train_every: int = 9) -> dict:
    """PCK@0.2 against the smoothing applied before the peak search (codec.decode's blur), on
    every train_every-th *training* photograph (where the value is picked) and on the held-out
    split (where it is only reported)."""
    _, joints, visible, is_test = load_annotations(data_root)
    out = {}
    for split, idx in (("train", np.where(~is_test)[0][::train_every]), ("held_out", np.where(is_test)[0])):
        heat, mats = person_heatmaps(model, data_root, idx)
        res = {}
        for sg in sigmas:
            pred, _ = decode_crops(heat, mats, model.cfg.in_size, blur=sg)
            res[str(sg)] = round(pck(pred, joints[idx], visible[idx])["mean"], 2)
        out[split] = {"images": len(idx), "pck@0.2_by_blur_sigma": res}
    return out


def flip_sweep(model: StackedHourglass, data_root: str, thresholds=(0.3, 0.4, 0.5, 0.6),
               train_every: int = 9) -> dict:
    """Flip test only for the crops the plain pass is unsure of: PCK@0.2 and the share of crops
    flipped when the mirrored pass is added where the plain pass's mean joint score is below each
    threshold (0: never, 1: always), on every train_every-th *training* photograph and on the
    held-out split."""
    _, joints, visible, is_test = load_annotations(data_root)
    out = {}
    for split, idx in (("train", np.where(~is_test)[0][::train_every]), ("held_out", np.where(is_test)[0])):
        heat, mats = person_heatmaps(model, data_root, idx)
        flipped, _ = person_heatmaps(model, data_root, idx, flip=True)
        plain, scores = decode_crops(heat, mats, model.cfg.in_size)
        both, _ = decode_crops(flipped, mats, model.cfg.in_size)
        mean_score = scores.mean(-1)
        rows = {}
        for t in (0.0,) + tuple(thresholds) + (1.01,):
            use = mean_score < t
            pred = np.where(use[:, None, None], both, plain)
            rows[str(t)] = {"flipped_%": round(100 * float(use.mean()), 1),
                            "pck@0.2": round(pck(pred, joints[idx], visible[idx])["mean"], 2)}
        out[split] = {"images": len(idx), "by_mean_score_below": rows}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", help="manifest (.json) or name in weights/ (default pose_fast)")
    p.add_argument("--checkpoint", help="a training checkpoint instead of shipped weights")
    p.add_argument("--data", default=DEFAULT_LSP)
    p.add_argument("--flip", action="store_true", help="average with the mirrored image (flip test)")
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runtime", choices=["torch", "onnx", "onnx-int8", "auto"], default="torch",
                   help="what runs the network (shipped weights only): torch (default) or onnx, as the engine's --runtime")
    p.add_argument("--in-size", type=int, default=None,
                   help="run the network on crops of this side (same boxes; a multiple of 32) instead of "
                        "the one it was built for (torch runtime only)")
    p.add_argument("--out", help="write the result as JSON here")
    p.add_argument("--gate", action="store_true",
                   help="instead of PCK: how well the mean joint score separates people from background")
    p.add_argument("--blur-sweep", action="store_true",
                   help="instead of PCK: PCK against codec.decode's smoothing, on training and held-out images")
    p.add_argument("--flip-sweep", action="store_true",
                   help="instead of PCK: PCK when only crops with a low mean joint score get the flip test")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.checkpoint and args.runtime != "torch":
        p.error("--runtime onnx needs shipped weights (--weights), not a checkpoint")
    if args.in_size and args.runtime != "torch":
        p.error("--in-size needs --runtime torch (an ONNX file has a fixed input size)")
    try:
        model, info = load_model(args.weights, args.checkpoint, runtime=args.runtime, in_size=args.in_size)
    except ValueError as e:
        p.error(str(e))
    if args.blur_sweep:
        result = {**info, **blur_sweep(model, args.data)}
    elif args.flip_sweep:
        result = {**info, **flip_sweep(model, args.data)}
    elif args.gate:
        result = {**info, **person_score_gate(model, args.data, args.limit or 400)}
    else:
        result = {**info, **evaluate(model, args.data, args.flip, args.limit)}
    emit_json(result, args.out)
    return 0


def emit_json(result: dict, out: str | None) -> None:
    """Print a result as JSON, and write it to `out` too when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if out:
        Path(out).write_text(text + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
