"""Turn a training checkpoint into shipped weights: fp16 state dict + manifest with the
training config and the held-out evaluation.

    python -m training.export_weights pose --checkpoint runs/pose_fast/last.pt --name pose_fast
    python -m training.export_weights detector --checkpoint runs/detector_fast/last.pt --name detector_fast
    python -m training.export_weights pose --refresh weights/pose_fast.json

``--refresh`` re-measures shipped pose weights in place (PCK, start gate, score calibration and
error sample) after a change to decoding, without touching the weights file.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from data.lsp import DEFAULT_LSP
from evaluation.eval_2d import evaluate, load_model, person_score_gate
from evaluation.eval_detector import evaluate as eval_det
from evaluation.pose_errors import update
from inference.core.codec import DECODE_BLUR
from inference.models.hourglass import HourglassConfig, StackedHourglass
from inference.models.weights import (load_manifest, manifest_path, REPO_WEIGHTS, save_manifest, save_state_dict,
                                      write_manifest)

LSP_DATA = ("LSP extended (Johnson and Everingham, CVPR 2011), images im00001-im09000; "
            "research use only (Flickr images)")


# How the shipped figures decode heatmaps (codec.decode), recorded with them.
DECODE = {"blur_sigma": DECODE_BLUR, "peak": "arg-max of the smoothed map + Taylor step on its log (DARK)"}

DETECTOR_THRESHOLDS = (0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.3)


def f_beta(result: dict, beta: float = 2.0) -> float:
    """F-beta (%) from an eval_detector result's recall and precision (%)."""
    r, p = result["recall"], result["precision"]
    return (1 + beta ** 2) * p * r / max(beta ** 2 * p + r, 1e-9)


def _init_record(init: str):
    """What a run started from: a shipped manifest is recorded with its sha256 and its own total
    steps (so the totals survive shipping over the same name); anything else as its path."""
    path = Path(init)
    if path.suffix != ".json" or not path.is_file():
        return str(init)
    m = json.loads(path.read_text())
    t = m.get("training", {})
    return {"manifest": str(init), "sha256": m.get("sha256"),
            "total_steps": t.get("total_steps", t.get("steps"))}


def measure_pose(model: StackedHourglass, data_root: str, eval_limit: int = 0) -> tuple[dict, dict]:
    """Held-out PCK (plain and flip test) and the start gate of a pose network."""
    ev = {"pck@0.2": evaluate(model, data_root, flip=False, limit=eval_limit),
          "pck@0.2_flip": evaluate(model, data_root, flip=True, limit=eval_limit)}
    for v in ev.values():
        v.pop("seconds", None)
    return ev, person_score_gate(model, data_root, limit=eval_limit or 400)


def refresh_pose(manifest: str | Path, data_root: str | None = None) -> Path:
    """Re-measure shipped pose weights in place: eval, gate, decode, score calibration, errors."""
    model, _ = load_model(manifest)              # checks the sha256: the figures are of this file
    man = load_manifest(manifest, "2d", verify=False)
    data_root = data_root or DEFAULT_LSP
    man.pop("path", None)
    man["eval"], man["gate"] = measure_pose(model, data_root)
    man["decode"] = DECODE
    mpath = save_manifest(manifest_path(manifest), man)
    update(mpath, model, data_root)
    return mpath


def export(kind: str, checkpoint: str, name: str, out_dir: Path = REPO_WEIGHTS, eval_limit: int = 0,
           init_from: str | None = None) -> Path:
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    cfg = HourglassConfig.from_dict(state["config"])
    model = StackedHourglass(cfg)
    model.load_state_dict(state["model"])
    model.eval()
    # Round-trip through fp16 first, so the figures describe the file that ships.
    out_dir.mkdir(parents=True, exist_ok=True)
    wfile = save_state_dict(model.state_dict(), out_dir / f"{name}.pt", fp16=True)
    model.load_state_dict({k: v.float() for k, v in torch.load(wfile, weights_only=True).items()})
    args = state.get("args", {})
    batch = args.get("batch", 16)
    training = {"steps": state["step"], "batch": batch, "lr": args.get("lr"), "seed": args.get("seed"),
                "script": f"inference/train_{'2d' if kind == 'pose' else 'detector'}.py"}
    if args.get("peak_weight") is not None:
        training["peak_weight"] = args["peak_weight"]
    if init_from or args.get("init"):     # steps and epochs then count from that start
        training["init_from"] = _init_record(init_from or args.get("init"))
        prior = training["init_from"].get("total_steps") if isinstance(training["init_from"], dict) else None
        if prior is not None:
            training["total_steps"] = prior + state["step"]
    if state.get("averaged_from"):        # training.loop.average_checkpoints
        training["weights_averaged_over_steps"] = state["averaged_from"]
    if kind == "pose":
        data_root = args.get("data") or DEFAULT_LSP
        dataset = args.get("dataset", "lsp")
        if dataset == "lsp":   # MPII / COCO runs: their image count is not in the checkpoint
            training["epochs"] = round(state["step"] * batch / (args.get("subset") or 9000), 2)
        else:
            training["images_seen"] = state["step"] * batch
            training["dataset"] = dataset
            training["annotations"] = args.get("annotations")
        ev, gate = measure_pose(model, data_root, eval_limit)
        data = LSP_DATA if dataset == "lsp" else (
            f"{dataset.upper()} keypoints from {args.get('annotations')} (see inference/training/{dataset}.py); "
            "evaluated on LSP")
        mpath = write_manifest(wfile, "2d", cfg.to_dict(), data, ev, training=training, gate=gate,
                               input="BGR crop -> RGB, /255, ImageNet mean/std; crop side = box size x 1.3",
                               decode=DECODE, eval_command=f"python -m evaluation.eval_2d --weights weights/{name}.json [--flip]")
        if dataset == "lsp":   # the lifter's score calibration and error sample belong to these weights
            update(mpath, model, data_root, limit=max(eval_limit, 40) if eval_limit else 0)
        return mpath
    training["mosaics_seen"] = state["step"] * batch
    data_root = args.get("data") or DEFAULT_LSP
    # The run-time threshold is the one with the best mean F2 over held-out scenes (whole
    # photographs, closest to video) and mosaics (many small people). F2 weighs recall twice:
    # every detection is checked by the pose network and the tracker, so a false box costs a
    # few crops while a missed person is lost.
    sweep = {kind: {t: eval_det(model, data_root, threshold=t, kind=kind) for t in DETECTOR_THRESHOLDS}
             for kind in ("scenes", "mosaics")}
    best = max(DETECTOR_THRESHOLDS, key=lambda t: f_beta(sweep["scenes"][t]) + f_beta(sweep["mosaics"][t]))
    ev = {kind: dict(sw[best], f2=round(f_beta(sw[best]), 1),
                     sweep={str(t): {k: r[k] for k in ("recall", "precision", "f1")} for t, r in sw.items()})
          for kind, sw in sweep.items()}
    return write_manifest(wfile, "detector", cfg.to_dict(), LSP_DATA + "; composed into multi-person frames "
                          "(tiled whole photographs and pasted crops)",
                          ev, training=training, threshold=best,
                          input="frame letterboxed to in_size (top-left), BGR -> RGB, ImageNet mean/std",
                          eval_command=f"python -m evaluation.eval_detector --weights weights/{name}.json "
                                       "--kind scenes|mosaics --threshold T")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("kind", choices=["pose", "detector"])
    p.add_argument("--checkpoint")
    p.add_argument("--name")
    p.add_argument("--refresh", metavar="MANIFEST", help="pose only: re-measure these shipped weights in place")
    p.add_argument("--out-dir", default=str(REPO_WEIGHTS))
    p.add_argument("--eval-limit", type=int, default=0)
    p.add_argument("--init-from", default=None,
                   help="what the run started from (train_2d --init), recorded in the manifest")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.refresh:
        if args.kind != "pose":
            p.error("--refresh is for pose weights")
        mpath = refresh_pose(args.refresh)
        print(json.dumps(json.loads(mpath.read_text())["eval"]["pck@0.2"]["mean"]))
        print(f"rewrote {mpath}")
        return 0
    if not (args.checkpoint and args.name):
        p.error("--checkpoint and --name are needed (or --refresh)")
    mpath = export(args.kind, args.checkpoint, args.name, Path(args.out_dir), args.eval_limit, args.init_from)
    print(json.dumps(json.loads(mpath.read_text())["eval"], indent=1)[:2000])
    print(f"wrote {mpath}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
