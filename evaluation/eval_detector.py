"""Person-detector recall and precision on held-out multi-person frames.

    python -m evaluation.eval_detector --weights weights/detector_fast.json [--n 300] [--kind scenes]

Two kinds of frame, both composed only from held-out LSPET images (im09001-im10000) with a
fixed seed, so the figures are repeatable: "mosaics" (person crops pasted on patch
backgrounds, data/mosaic.py) and "scenes" (whole photographs tiled,
data/scenes.py; closer to real video). A labelled person counts as
found when an unmatched detection has its box centre within half the person's box size and a
box size within a factor of 1.5; detections are matched greedily, best score first.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from data.lsp import DEFAULT_LSP, load_or_build_cache
from data.mosaic import compose, MosaicConfig
from data.scenes import compose_scene, load_or_build_scenes, SceneConfig
from evaluation.eval_2d import load_model
from inference.models.hourglass import StackedHourglass
from inference.stages.detect import decode_people
from inference.stages.pose2d import run_network


def match(dets, people) -> tuple[int, int]:
    """-> (true positives, detections) for one image."""
    free = list(range(len(people)))
    tp = 0
    for box, _ in dets:
        for k in free:
            gt = people[k][1]
            close = np.hypot(*(box[:2] - gt[:2])) < 0.5 * gt[2]
            ratio = box[2] / gt[2]
            if close and 1 / 1.5 < ratio < 1.5:
                free.remove(k)
                tp += 1
                break
    return tp, len(dets)


@torch.no_grad()
def evaluate(model: StackedHourglass, data_root: str, n: int = 300, threshold: float = 0.3,
             cache: str = ".cache", seed: int = 1234, kind: str = "mosaics") -> dict:
    rng = np.random.default_rng(seed)
    if kind == "scenes":
        data = load_or_build_scenes(data_root, cache)
        pool = np.where(data.is_test)[0]
        cfg = SceneConfig(canvas=model.cfg.in_size)
        make = lambda: compose_scene(data, pool, cfg, rng)[:2]  # noqa: E731
    elif kind == "mosaics":
        data = load_or_build_cache(data_root, cache)
        pool = np.where(data.is_test)[0]
        cfg = MosaicConfig(canvas=model.cfg.in_size)
        make = lambda: compose(data, pool, cfg, rng)  # noqa: E731
    else:
        raise ValueError(f"unknown kind {kind!r} (mosaics or scenes)")
    tp = n_det = n_gt = 0
    small_tp = small_gt = 0
    for start in range(0, n, 16):
        batch = [make() for _ in range(min(16, n - start))]
        maps = run_network(model, np.stack([c for c, _ in batch]), torch.device("cpu"))
        for m, (_, people) in zip(maps, batch):
            dets = decode_people(m, threshold)
            t, d = match(dets, people)
            tp, n_det, n_gt = tp + t, n_det + d, n_gt + len(people)
            small = [p for p in people if p[1][2] < 48]
            small_gt += len(small)
            small_tp += match(dets, small)[0]
    recall = tp / max(n_gt, 1)
    precision = tp / max(n_det, 1)
    return {"recall": round(100 * recall, 1), "precision": round(100 * precision, 1),
            "f1": round(100 * 2 * recall * precision / max(recall + precision, 1e-9), 1),
            "recall_small": round(100 * small_tp / max(small_gt, 1), 1),
            "people": n_gt, "frames": n, "threshold": threshold,
            "split": "%s of LSPET im09001-im10000 (held out), seed %d" % (kind, seed)}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default=None)
    p.add_argument("--checkpoint")
    p.add_argument("--data", default=DEFAULT_LSP)
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--threshold", type=float, default=0.3)
    p.add_argument("--kind", default="mosaics", choices=["mosaics", "scenes"])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, info = load_model(args.weights or "detector_fast", args.checkpoint, kind="detector")
    print(json.dumps({**info, **evaluate(model, args.data, args.n, args.threshold, kind=args.kind)}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
