"""Finer heatmaps (issue 26, item 3): held-out PCK@0.2 and PCK@0.1 of the shipped pose network at
its own input size and at others (same weights, same boxes, no fine-tuning), and of checkpoints
trained at another size, in one table.

    python -m evaluation.eval_in_size --weights pose_balanced --sizes 128 160 \\
        --checkpoints checkpoints/pose_balanced160_last.pt \\
        [--snapshot-results runs/eval160] --out docs/results/results_2d_balanced_160.json

Every row is evaluation.eval_2d's protocol (LSPET im09001-im10000, ground-truth boxes, 834 images
with a usable torso) and carries the eval_2d command that gives the same figures alone.
`--snapshot-results DIR` adds the eval_2d JSON files already written there (e.g. one per training
snapshot, `eval_2d --checkpoint runs/<run>/step_N.pt --out DIR/step_N.json`) as the run's curve,
without re-evaluating them; their checkpoints live in runs/, which is not committed.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from data.lsp import DEFAULT_LSP
from evaluation.eval_2d import evaluate, load_model


def summary(res: dict, command: str, label: str) -> dict:
    """One row of the table from an eval_2d result."""
    return {"label": label, "command": command, "in_size": res.get("in_size"),
            "trained_in_size": res.get("trained_in_size", res.get("in_size")),
            "step": res.get("step"), "pck@0.2": round(res["mean"], 2),
            "pck@0.1": round(res["pck@0.1"]["mean"], 2), "pck_side_free@0.2": res["left_right"]["pck_side_free"],
            "pck@0.2_per_joint": {k: round(v, 1) for k, v in res["per_joint"].items()},
            "pck@0.1_per_joint": {k: round(v, 1) for k, v in res["pck@0.1"]["per_joint"].items()},
            "n_images": res["n_images"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--weights", default="pose_balanced", help="shipped pose weights (name or manifest)")
    p.add_argument("--sizes", nargs="*", type=int, default=[128, 160],
                   help="input sides to run the shipped weights at (their own size: the reference)")
    p.add_argument("--checkpoints", nargs="*", default=[], help="training checkpoints, each at its own size")
    p.add_argument("--snapshot-results", default=None, help="folder of eval_2d JSON results to add as the run's curve")
    p.add_argument("--data", default=DEFAULT_LSP)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--limit", type=int, default=0, help="only the first N held-out images (a quick check)")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for size in args.sizes:
        model, info = load_model(args.weights, in_size=size)
        res = {**info, **evaluate(model, args.data, limit=args.limit)}
        own = "trained_in_size" not in info
        rows.append(summary(res, f"python -m evaluation.eval_2d --weights {args.weights}"
                                 + ("" if own else f" --in-size {size}"),
                            f"shipped {args.weights} at {size} px" + (" (its own size)" if own else " (not fine-tuned)")))
        print(json.dumps({k: rows[-1][k] for k in ("label", "pck@0.2", "pck@0.1")}), flush=True)
    for ck in args.checkpoints:
        model, info = load_model(checkpoint=ck)
        res = {**info, **evaluate(model, args.data, limit=args.limit)}
        rows.append(summary(res, f"python -m evaluation.eval_2d --checkpoint {ck}",
                            f"{ck} (step {info['step']}, {info['in_size']} px)"))
        print(json.dumps({k: rows[-1][k] for k in ("label", "pck@0.2", "pck@0.1")}), flush=True)
    curve = []
    if args.snapshot_results:
        for f in sorted(Path(args.snapshot_results).glob("*.json")):
            res = json.loads(f.read_text())
            if "checkpoint" not in res or "pck@0.1" not in res:
                continue
            curve.append(summary(res, f"python -m evaluation.eval_2d --checkpoint {res['checkpoint']} --out {f}",
                                 f"{res['checkpoint']} (step {res['step']})"))
        curve.sort(key=lambda r: r["step"])
    out = {"split": "LSPET im09001-im10000 (held out), ground-truth boxes; PCK@alpha over the 14 LSP joints",
           "rows": rows, "snapshots": curve}
    text = json.dumps(out, indent=1)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")
    print("| network | input | PCK@0.2 | PCK@0.1 |\n|---|---|---|---|")
    for r in rows + curve:
        print(f"| {r['label']} | {r['in_size']} | {r['pck@0.2']:.2f} | {r['pck@0.1']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
