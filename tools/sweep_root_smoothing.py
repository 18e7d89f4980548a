"""How the pelvis path's smoother trades real motion against noise (docs/engine.md, "Smoothing
the root's path").

    .venv/bin/python tools/sweep_root_smoothing.py [--cutoffs 0 3 2 1.5 1]

Lifts the lifter's held-out mocap sequences (evaluation.eval_3d.heldout_sequences) once per 2D
input (exact, the noise model, our pose network's replayed errors with calibrated scores), then
applies the engine's post-processing (eval_3d.engine_post) with each root cutoff (0: One-Euro for the root like the other joints) and prints the root's lateral and
3D error and the jitter, in mm (per frame^2 for jitter).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from evaluation import eval_3d  # noqa: E402
from inference.stages.lifting import Lifter  # noqa: E402
from inference.core.metrics import jitter, root_lateral_error  # noqa: E402
from inference.models.lifter import PELVIS  # noqa: E402
from inference.pipeline import PipelineOptions  # noqa: E402
from evaluation.pose_errors import load_errors  # noqa: E402
from data import mocap  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cutoffs", type=float, nargs="+", default=[0, 3, 2, 1.5, 1])
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    lifter = Lifter.load()
    seqs = eval_3d.heldout_sequences(mocap.load(log=lambda m: None), 3, 0, None)
    with open("weights/pose_fast.json") as f:
        table = json.load(f)["score_calibration"]
    inputs = {"exact 2D": {}, "noise model": {"noisy": True},
              "replayed pose errors": {"pose_errors": load_errors(eval_3d.DEFAULT_POSE_ERRORS), "calibration": table}}
    for name, kw in inputs.items():
        lifts = []
        for s in seqs:
            uv, sc = eval_3d.make_2d(s, kw.get("noisy", False), 0.5, 7, kw.get("pose_errors"), kw.get("calibration"))
            lifts.append(lifter.lift(uv, sc, s["K"]).astype(np.float64))
        for fc in args.cutoffs:
            lat, r3, jit, n = 0.0, 0.0, 0.0, 0
            opts = PipelineOptions(root_cutoff=fc)
            for s, X in zip(seqs, lifts):
                Y = eval_3d.engine_post(X, s["fps"], opts)
                gt, F = s["Xc"], len(s["Xc"])
                lat += root_lateral_error(Y[:, PELVIS], gt[:, PELVIS]).sum()
                r3 += np.linalg.norm(Y[:, PELVIS] - gt[:, PELVIS], axis=-1).sum()
                jit += jitter(Y) * F
                n += F
            print(f"{name:22s} root cutoff {fc:4.1f} Hz: lateral {1000 * lat / n:6.1f}  root 3D "
                  f"{1000 * r3 / n:6.1f}  jitter {1000 * jit / n:6.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
