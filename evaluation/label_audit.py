"""Audit the LSP extended labels for mirrored left/right with the shipped pose network.

    python -m evaluation.label_audit [--weights pose_balanced] [--out data/lsp_label_audit.json]
    python -m evaluation.label_audit --score runs/a/last.pt runs/b/last.pt [--weights pose_balanced]

Runs the network on every photograph (cropped around the labelled person, as eval_2d does),
applies ``data.label_audit.mirrored_groups`` and writes the audit file that training reads with
``--audited-labels``: images whose legs and arms are both mirrored (fixed by swapping) and images
with one group mirrored (that group is dropped from training), for the training and held-out
splits apart. The held-out split is listed for reporting only: held-out PCK is always measured
against the original labels, and against audited ones only where a person checked them
(``reviewed`` in the file). ``--score`` prints held-out PCK@0.2 of networks (checkpoints, and the
``--weights`` network) against both: the original labels, and "reviewed" labels where only the
held-out images a person judged observer-centric are swapped.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from data.label_audit import AUDIT_FILE, apply_audit, load_audit, mirrored_groups, upright
from data.lsp import DEFAULT_LSP, load_annotations
from evaluation.eval_2d import load_model, pck, predict, torso_size


def reviewed_labels(names, joints, visible, audit: dict):
    """Held-out labels with only the images a person judged observer-centric swapped."""
    mirrored = [n for n, v in audit.get("reviewed", {}).get("verdicts", {}).items() if v == "mirrored"]
    return apply_audit(names, joints, visible, {"mirrored": mirrored}, drop_single=False)[:2] + (len(mirrored),)


def score(nets: list[str], weights: str, data_root: str, audit_path: str) -> dict:
    """Held-out PCK@0.2 of each network against the original and the reviewed labels."""
    names, joints, visible, is_test = load_annotations(data_root)
    idx = np.where(is_test)[0]
    rj, rv, n_swapped = reviewed_labels(names[idx], joints[idx], visible[idx], load_audit(audit_path))
    out = {"reviewed_swapped": n_swapped}
    for net in [weights] + list(nets):
        model, _ = load_model(checkpoint=net) if net.endswith(".pt") else load_model(net)
        pred = predict(model, data_root, idx)[0]
        out[net] = {"original": round(pck(pred, joints[idx], visible[idx])["mean"], 2),
                    "reviewed": round(pck(pred, rj, rv)["mean"], 2)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="pose_balanced")
    ap.add_argument("--data", default=DEFAULT_LSP)
    ap.add_argument("--out", default=str(AUDIT_FILE))
    ap.add_argument("--score", nargs="+", metavar="CHECKPOINT", help="held-out PCK of these networks (see above)")
    args = ap.parse_args(argv)
    if args.score:
        print(json.dumps(score(args.score, args.weights, args.data, args.out), indent=1))
        return 0
    names, joints, visible, is_test = load_annotations(args.data)
    model, info = load_model(args.weights)
    idx = np.arange(len(names))
    pred = np.concatenate([predict(model, args.data, idx[s:s + 500])[0] for s in range(0, len(idx), 500)])
    groups = mirrored_groups(pred, joints, visible, torso_size(joints, visible))
    both = groups["legs"] & groups["arms"]
    fix = both & upright(joints, visible)           # observer-centric labels: swapped
    drop = {g: groups[g] & ~fix for g in groups}     # doubtful groups: dropped from training
    out = {"network": info, "rule": "data/label_audit.py", "command": "python -m evaluation.label_audit",
           "counts": {}}
    old = load_audit(args.out) if Path(args.out).is_file() else {}
    for split, mask in (("train", ~is_test), ("held_out", is_test)):
        key = "" if split == "train" else "held_out_"
        out[f"{key}mirrored"] = [str(n) for n in names[fix & mask]]
        for g in ("legs", "arms"):
            out[f"{key}{g}"] = [str(n) for n in names[drop[g] & mask]]
        out["counts"][split] = {"images": int(mask.sum()), "both_groups_mirrored": int((both & mask).sum()),
                                "fixed_upright": int((fix & mask).sum()),
                                **{f"{g}_dropped": int((drop[g] & mask).sum()) for g in ("legs", "arms")}}
    if "reviewed" in old:
        out["reviewed"] = old["reviewed"]      # a person's verdicts are kept across re-runs
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out["counts"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
