"""How far do rounding-sized differences in the networks' outputs move `eval_video`'s figures?

    .venv/bin/python tools/sweep_runtime_noise.py [--preset fast] [--seeds 1 2] [--sd 1e-6] [--clips 40]

ONNX Runtime and PyTorch give maps that differ by about 1e-6 (docs/runtime.md). The engine feeds
each frame's joints back into the next frame's crops, so such a difference can grow into another
track. This runs `evaluation.eval_video.evaluate` on the same clips with: PyTorch; PyTorch with
N(0, sd) noise added to every pose and detector map (one seeded run per seed); ONNX Runtime. The
spread of the noisy PyTorch runs is what float rounding alone does to the figures; a runtime
whose figures fall inside it gives the same answers.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from evaluation.eval_video import evaluate  # noqa: E402  (after ROOT is on sys.path)
from inference.pipeline import load_models, PipelineOptions  # noqa: E402

KEYS = ("pck", "found", "pck_found", "extra_per_frame", "ids_per_person", "split_clips")


class NoisyNetwork:
    """A network whose maps get N(0, sd) noise (seeded): the size of a runtime's rounding."""

    def __init__(self, net, sd: float, rng: np.random.Generator):
        self.net, self.sd, self.rng = net, sd, rng
        self.cfg, self.runtime, self.device = net.cfg, net.runtime, net.device

    def __call__(self, batch_bgr: np.ndarray) -> np.ndarray:
        out = self.net(batch_bgr)
        return out + self.rng.normal(0.0, self.sd, out.shape).astype(out.dtype)


def with_noise(models, sd: float, seed: int):
    """A copy of the loaded models whose pose and detector networks add noise (the loaded models
    stay as they are)."""
    rng = np.random.default_rng(seed)
    pose, det = copy.copy(models.pose), copy.copy(models.detector)
    pose.model, det.model = NoisyNetwork(models.pose.model, sd, rng), NoisyNetwork(models.detector.model, sd, rng)
    return dataclasses.replace(models, pose=pose, detector=det)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="one noisy PyTorch run per seed")
    ap.add_argument("--sd", type=float, default=1e-6, help="noise on every map (ONNX vs torch: about 1e-6)")
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    args = ap.parse_args(argv)
    rows = {}
    for runtime in ("torch", "onnx"):
        opts = PipelineOptions(preset=args.preset, runtime=runtime)
        models = load_models(opts)
        rows[runtime] = evaluate(opts, clips=args.clips, models=models)
        if runtime == "torch":
            for seed in args.seeds:
                rows[f"torch + noise sd {args.sd:g}, seed {seed}"] = evaluate(
                    opts, clips=args.clips, models=with_noise(models, args.sd, seed))
    print(f"\n| run ({args.preset}, {args.clips} clips) | " + " | ".join(KEYS) + " |")
    print("| --- |" + " ---: |" * len(KEYS))
    for name, res in rows.items():
        print(f"| {name} | " + " | ".join(str(res[k]) for k in KEYS) + " |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({k: {m: v[m] for m in KEYS} for k, v in rows.items()}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
