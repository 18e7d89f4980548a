"""Measure a pose network's 2D errors on held-out images: the score calibration for the lifter
and an error sample for testing the lifter on realistic 2D.

    python -m evaluation.pose_errors --weights pose_fast        # -> weights/pose_fast_errors.npz,
                                                                #    "score_calibration" in its manifest

Each held-out LSP image (im09001-im10000) is cropped around its annotated person from a box
jittered the way a detector misses (centre within +-10% of the size, size within exp(+-0.1)), and
the network's joints are compared with the annotation.  Errors are in units of the person's size
(the side of the square box around the annotated joints, the lifter's unit).

* The first half of the images fits ``score_calibration`` (score_calibration.fit), which the
  engine applies to the scores it gives the lifter.
* The second half is written to ``<name>_errors.npz`` (error vectors, raw scores, visibility per
  person), which ``eval_3d --pose-errors`` replays on held-out mocap: the lifter with the 2D
  errors of our own network rather than a noise model.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch

from inference.core import crops, score_calibration
from evaluation.eval_2d import load_model, predict
from data.lsp import DEFAULT_LSP, load_annotations
from inference.models.weights import manifest_path, save_manifest

BOX_JITTER = 0.1


def measure(model, data_root: str, limit: int = 0, seed: int = 0, split: str = "test") -> dict:
    """err (N, 16, 2) in person sizes, raw (N, 16), visible (N, 16) for the held-out images
    (split "train": the training images instead, for the lifter's training pairs)."""
    _, joints, visible, is_test = load_annotations(data_root)
    idx = np.where(is_test if split == "test" else ~is_test)[0][: limit or None]
    pred, raw = predict(model, data_root, idx, box_jitter=BOX_JITTER, seed=seed)
    gt, vis = joints[idx], visible[idx]
    size = np.array([crops.box_from_joints(g, v)[2] for g, v in zip(gt, vis)], np.float32)
    err = (pred - gt) / size[:, None, None]
    vis = vis & np.isfinite(err).all(-1)
    return {"err": np.where(vis[..., None], err, 0.0).astype(np.float32), "raw": raw.astype(np.float32),
            "visible": vis, "images": idx}


def calibrate(m: dict) -> dict:
    """Score calibration from a measure() result (visible joints only)."""
    e = np.linalg.norm(m["err"], axis=-1)
    return score_calibration.fit(m["raw"][m["visible"]], e[m["visible"]])


def summary(m: dict) -> dict:
    e = np.linalg.norm(m["err"], axis=-1)[m["visible"]]
    return {"people": int(len(m["raw"])), "joints": int(m["visible"].sum()),
            "median_error": round(float(np.median(e)), 4), "mean_error": round(float(e.mean()), 4),
            "share_over_0.15": round(float((e > 0.15).mean()), 3),
            "median_raw_score": round(float(np.median(m["raw"][m["visible"]])), 3)}


def update(manifest: str | Path, model, data_root: str = DEFAULT_LSP, limit: int = 0, write: bool = True) -> dict:
    """Measure `model` (the network of `manifest`), put the calibration in the manifest and the
    error sample beside it (<name>_errors.npz); returns the report."""
    man_path = manifest_path(manifest)
    man = json.loads(man_path.read_text())
    m = measure(model, data_root, limit)
    half = len(m["raw"]) // 2
    fit_part = {k: v[:half] for k, v in m.items()}
    test_part = {k: v[half:] for k, v in m.items()}
    table = calibrate(fit_part)
    table.update(fit_on=f"LSPET im{m['images'][0] + 1:05d}-im{m['images'][half - 1] + 1:05d} (held out), "
                        f"boxes jittered +-{BOX_JITTER}",
                 command=f"python -m evaluation.pose_errors --weights {man_path.stem}")
    report = {"calibration": table, "fit_half": summary(fit_part), "sample_half": summary(test_part)}
    if write:
        man["score_calibration"] = table
        man["pose_errors"] = {"file": man_path.stem + "_errors.npz", **report["sample_half"]}
        save_manifest(man_path, man)
        _save_errors(man_path.with_name(man_path.stem + "_errors.npz"), test_part, man["sha256"])
    return report


def _save_errors(path: str | Path, m: dict, sha256: str, table: dict | None = None) -> None:
    """A measure() result as fp16 .npz (read back by load_errors), with its own calibration if given."""
    extra = {"cal_raw": np.array(table["raw"]), "cal_score": np.array(table["score"])} if table else {}
    np.savez_compressed(path, err=m["err"].astype(np.float16), raw=m["raw"].astype(np.float16),
                        visible=m["visible"], images=m["images"].astype(np.int32), sha256=np.array(sha256),
                        **extra)


def write_training_errors(out: str | Path, model, sha256: str, data_root: str = DEFAULT_LSP,
                          limit: int = 0) -> dict:
    """The errors of `model` on the LSP training images (for the lifter's training pairs, which
    must not see the held-out ones), with their own score calibration; returns the summary."""
    m = measure(model, data_root, limit, seed=1, split="train")
    table = calibrate(m)
    _save_errors(out, m, sha256, table)
    return {"file": str(out), **summary(m), "calibration": table}


def shown_path(path: str | Path) -> str:
    """path relative to the repository when inside it (manifests and results must not record this
    machine's folders); else path unchanged."""
    root = Path(__file__).resolve().parents[1]
    rel = os.path.relpath(os.path.abspath(path), root)
    return str(path) if rel.startswith("..") else rel


def load_errors(path: str | Path) -> dict:
    """An error sample written by update() or write_training_errors(): err (N, 16, 2) float32,
    raw (N, 16), visible (N, 16), and "calibration" when the file carries its own."""
    with np.load(path) as z:
        out = {"err": z["err"].astype(np.float32), "raw": z["raw"].astype(np.float32),
               "visible": z["visible"].astype(bool)}
        if "cal_raw" in z:
            out["calibration"] = {"raw": z["cal_raw"].tolist(), "score": z["cal_score"].tolist()}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="pose_fast", help="manifest name or path (kind 2d)")
    ap.add_argument("--data", default=DEFAULT_LSP)
    ap.add_argument("--limit", type=int, default=0, help="first N held-out images only")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-write", action="store_true", help="print the figures, change nothing")
    ap.add_argument("--train-out", metavar="NPZ", help="measure the training images instead and write them "
                    "here (the lifter's training errors, train_3d --pose-errors)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, info = load_model(args.weights)
    if args.train_out:
        print(json.dumps(write_training_errors(args.train_out, model, info["sha256"], args.data, args.limit),
                         indent=1))
        return 0
    report = update(args.weights, model, args.data, args.limit, write=not args.no_write)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
