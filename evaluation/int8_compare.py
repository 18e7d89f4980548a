"""What an int8 pose network changes against its fp32 ONNX network, crop by crop.

    python -m evaluation.int8_compare                               # the shipped balanced int8 file
    python -m evaluation.int8_compare --int8 DIR/pose_balanced_int8.onnx --out FILE.json

Both networks see the same crops: the start gate's crops (evaluation.eval_2d.gate_crops: held-out
LSP people and background crops of the same photographs, boxes jittered like a detector's) and,
with --video (default the sample clip), crops of the people the shipped detector finds in every
5th frame. For each set it reports how the mean joint score (what the start gate, person
verification and track loss compare with the manifest's gate.start_score) moves, how many crops
change side of that gate, and how far the joints move (heatmap pixels). The engine's decisions
near the gate depend on the scores more than on the joints, so this is where a quantized network
has to match fp32.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from data.lsp import DEFAULT_LSP
from inference.core import codec, crops
from inference.models.hourglass_config import HourglassConfig
from inference.models.runtime import OnnxNetwork, check_int8, ensure_onnx
from inference.models.weights import load_manifest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sports2d_demo.mp4"


def video_crops(path: Path, size: int, every: int = 5, threshold: float = 0.05) -> np.ndarray:
    """Crops (N, size, size, 3) of the people the shipped detector finds in every `every`-th frame
    of a video, cut as the engine cuts them (pose2d.Pyramid, crops.crop_matrix)."""
    from inference.stages.detect import PersonDetector
    from inference.stages.pose2d import Pyramid

    det = PersonDetector(REPO / "weights" / "detector_fast.json", "cpu", runtime="onnx", threads=1)
    cap = cv2.VideoCapture(str(path))
    frames, i = [], 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        if i % every == 0:
            frames.append(frame)
        i += 1
    cap.release()
    out = []
    for s in range(0, len(frames), 8):
        for frame, people in zip(frames[s:s + 8], det.detect(frames[s:s + 8], threshold=threshold)):
            pyr = Pyramid(frame)
            out += [pyr.crop(crops.crop_matrix(box, size), size) for box in people.boxes]
    return np.stack(out) if out else np.zeros((0, size, size, 3), np.uint8)


def run(net, patches: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(coords (N, J, 2) heatmap px, scores (N, J)) as the engine decodes them."""
    parts = [codec.decode(net(patches[s:s + batch])) for s in range(0, len(patches), batch)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def compare(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray], gate: float) -> dict:
    """fp32 (a) against int8 (b) decodes of the same crops."""
    ma, mb = a[1].mean(-1), b[1].mean(-1)
    d = mb - ma
    dist = np.linalg.norm(a[0] - b[0], axis=-1)
    conf = a[1] > 0.3
    near = np.abs(ma - gate) < 0.05
    r = lambda v: round(float(v), 4)  # noqa: E731
    return {"crops": len(ma), "mean_score_fp32": r(ma.mean()), "mean_score_int8": r(mb.mean()),
            "shift_mean": r(d.mean()), "shift_p5_50_95": [r(v) for v in np.percentile(d, [5, 50, 95])],
            "shift_abs_median": r(np.median(np.abs(d))),
            "shift_near_gate_mean": r(d[near].mean()) if near.any() else None, "near_gate_crops": int(near.sum()),
            "joint_score_abs_diff_median": r(np.median(np.abs(a[1] - b[1]))),
            "pass_gate_fp32": int((ma >= gate).sum()), "pass_gate_int8": int((mb >= gate).sum()),
            "gate_flips_up": int(((mb >= gate) & (ma < gate)).sum()),
            "gate_flips_down": int(((mb < gate) & (ma >= gate)).sum()),
            "joint_px_median": r(np.median(dist)),
            "joint_px_median_confident": r(np.median(dist[conf])) if conf.any() else None,
            "joint_px_p90_confident": r(np.percentile(dist[conf], 90)) if conf.any() else None}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="pose_balanced")
    ap.add_argument("--int8", default=None, help="int8 ONNX file (default: the weights' shipped, checked one)")
    ap.add_argument("--data", default=DEFAULT_LSP)
    ap.add_argument("--limit", type=int, default=400, help="held-out LSP images for the gate's crops")
    ap.add_argument("--train", action="store_true",
                    help="gate-style crops of LSP training images (every 20th training row from row 5) "
                         "instead of the held-out ones: where build choices are made")
    ap.add_argument("--video", default=str(SAMPLE), help="a video whose detected people are compared too ('' none)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    from evaluation.eval_2d import emit_json, gate_crops

    manifest = load_manifest(args.weights, kind="2d")
    cfg = HourglassConfig.from_dict(manifest["config"])
    int8_path = Path(args.int8) if args.int8 else check_int8(manifest)[0]
    fp32 = OnnxNetwork(ensure_onnx(manifest), cfg, threads=args.threads)
    int8 = OnnxNetwork(int8_path, cfg, threads=args.threads, runtime="onnx-int8")
    gate = float(manifest["gate"]["start_score"])
    rows = None
    if args.train:
        from data.lsp import load_annotations

        rows = np.where(~load_annotations(args.data)[3])[0][5::20]
    patches, kinds = gate_crops(args.data, cfg.in_size, args.limit, rows=rows)
    sets = {"lsp_person": patches[kinds], "lsp_background": patches[~kinds]}
    if args.video:
        sets["video_detected"] = video_crops(Path(args.video), cfg.in_size)
    result = {"weights": manifest["file"], "int8": int8_path.name, "gate_start_score": gate,
              "sets": {k: compare(run(fp32, v), run(int8, v), gate) for k, v in sets.items() if len(v)},
              "split": "LSP training rows 5::20" if args.train else "LSP held out",
              "command": "python -m evaluation.int8_compare" + (f" --int8 {args.int8}" if args.int8 else "")
              + (" --train" if args.train else "")}
    emit_json(result, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
