"""Fit the skeleton prior of ``inference.core.skeleton_decode`` and measure the decoder.

    python -m training.fit_skeleton_prior                  # fit from training labels, write weights/skeleton_prior.*
    python -m training.fit_skeleton_prior --sweep 3000     # weigh the terms on 3,000 training crops

The prior (bone displacements and left/right limb-length ratios in the crop frame) comes from
the LSPET *training* labels (im00001-im09000) only. ``--sweep`` runs the shipped pose network on
N training photographs (cropped around the annotated person, as in eval_2d) and prints PCK@0.2
and the merged/swapped left/right rates for a grid of DecodeWeights: the defaults are picked
there, never on the held-out split. The held-out figures (``--eval``) go in the manifest and in
docs/results/results_2d_skeleton_decode.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np

from data.lsp import DEFAULT_LSP, load_annotations
from evaluation.eval_2d import left_right, load_model, pck, person_heatmaps
from inference.core import codec, crops, skeleton_decode as sd
from inference.models.weights import REPO_WEIGHTS, write_manifest
from inference.stages.pose2d import crop_to_image, decode_crops

RESULTS = Path(__file__).resolve().parents[1] / "docs" / "results" / "results_2d_skeleton_decode.json"


def crop_labels(joints: np.ndarray, visible: np.ndarray, in_size: int, heatmap_size: int) -> np.ndarray:
    """Labelled joints (N, J, 2) image px -> heatmap px of the crops inference would cut around
    them (crops.box_from_joints + crop_matrix, as eval_2d does)."""
    out = np.zeros(joints.shape, np.float32)
    for n in range(len(joints)):
        M = crops.crop_matrix(crops.box_from_joints(joints[n], visible[n]), in_size)
        out[n] = codec.to_heatmap(crops.apply_affine(M, joints[n]), in_size / heatmap_size)
    return out


def scores(pred: np.ndarray, gt: np.ndarray, vis: np.ndarray) -> dict:
    lr = left_right(pred, gt, vis)
    return {"pck@0.2": round(pck(pred, gt, vis)["mean"], 2), "pck@0.1": round(pck(pred, gt, vis, 0.1)["mean"], 2),
            "pck_side_free": lr["pck_side_free"],
            **{f"{k}_merged_%": lr["pairs"][k]["merged_%"] for k in ("knee", "ankle")},
            **{f"{k}_swapped_%": lr["pairs"][k]["swapped_%"] for k in ("knee", "ankle")}}


def measure(heat, mats, gt, vis, in_size, prior, weights) -> dict:
    """Arg-max and skeleton decoding of the same heatmaps."""
    skeleton = crop_to_image(sd.decode(heat, prior, weights)[0], mats, in_size, heat.shape[-1])
    return {"argmax": scores(decode_crops(heat, mats, in_size)[0], gt, vis),
            "skeleton": scores(skeleton, gt, vis)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="pose_balanced", help="pose network whose maps are decoded")
    ap.add_argument("--data", default=DEFAULT_LSP)
    ap.add_argument("--sweep", type=int, default=0, metavar="N", help="weigh the terms on N training crops")
    ap.add_argument("--eval", action="store_true", help="held-out figures, with and without flip test")
    ap.add_argument("--out", default=str(REPO_WEIGHTS / "skeleton_prior.npz"))
    args = ap.parse_args(argv)

    names, joints, visible, is_test = load_annotations(args.data)
    model, info = load_model(args.weights)
    S = model.cfg.in_size
    H = S // 4
    train = np.where(~is_test)[0]
    prior = sd.fit_prior(crop_labels(joints[train], visible[train], S, H), visible[train], H)
    weights = sd.DecodeWeights()

    if args.sweep:
        idx = np.sort(np.random.default_rng(0).choice(train, args.sweep, replace=False))
        heat, mats = person_heatmaps(model, args.data, idx)
        for u, sym, merge, only in itertools.product((2, 4, 8), (0.0, 1.0), (2.0, 6.0), (True, False)):
            w = dataclasses.replace(weights, unary=u, sym=sym, merge=merge, only_merged=only)
            r = measure(heat, mats, joints[idx], visible[idx], S, prior, w)["skeleton"]
            print(json.dumps({"unary": u, "sym": sym, "merge": merge, "only_merged": only, **r}), flush=True)
        return 0

    sd.save_prior(args.out, prior)
    result = {}
    if args.eval:
        test = np.where(is_test)[0]
        for flip in (False, True):
            heat, mats = person_heatmaps(model, args.data, test, flip=flip)
            result["flip" if flip else "plain"] = measure(heat, mats, joints[test], visible[test], S, prior, weights)
        RESULTS.write_text(json.dumps({"network": info, "weights": dataclasses.asdict(weights),
                                       "split": "LSPET im09001-im10000 (held out), crops around the labelled person",
                                       "command": "python -m training.fit_skeleton_prior --eval",
                                       **result}, indent=2) + "\n")
        print(json.dumps(result, indent=2))
    write_manifest(args.out, "skeleton_prior", {"decode": dataclasses.asdict(weights), "heatmap_size": H},
                   "bone displacements and limb-length ratios of the LSP extended training labels "
                   "(im00001-im09000), in the crop frame", {"held_out": result, "network": info})
    print(f"wrote {args.out} and its manifest")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
