"""What a larger input costs the pose network in ONNX Runtime (the engine's CPU runtime), paired.

    .venv/bin/python benchmarks/bench_input_size.py                       # balanced, 128 vs 160 px, 2 threads
    .venv/bin/python benchmarks/bench_input_size.py --sizes 128 160 192 --threads 1 --name input_size_1thread

The network is fully convolutional, so its cost at another input size does not depend on its
weights: the shipped weights of `--weights` are exported to ONNX once per size by the engine's own
build (models/runtime.build_onnx: BatchNorms folded, checked against PyTorch on a fixed batch)
into a temporary folder, never into the engine's ONNX cache, which is keyed by the weights' hash
alone. Inputs are real: crops cut from the first frames of the sample video around
the detector's boxes, at each size from the same boxes. Each round times every size for about
`--seconds` in turn (the order alternates from round to round); the table gives the median
images/s and the median of the per-round ratios to the first size. With `--int8` the shipped int8
file (at its own size) is timed in the same rounds, for comparison. The load average is recorded
before and after. Writes docs/results/bench/<--name>.json (default "input_size").
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]
from bench_runtime import DEFAULT_VIDEO, loadavg, sample_people, time_calls  # noqa: E402
from results_io import markdown_table, write_result  # noqa: E402


def sample_crops(video: Path, sizes, n_frames: int = 8) -> dict:
    """{size: (N, size, size, 3) uint8} crops around the detected people of the first frames
    (every 12th), the same boxes for every size (the engine's cropping, stages/pose2d.Pyramid)."""
    import numpy as np

    from inference.core import crops
    from inference.stages.pose2d import Pyramid

    frames, boxes = sample_people(video, n_frames)
    out = {s: [] for s in sizes}
    for frame, bs in zip(frames, boxes):
        pyr = Pyramid(frame)
        for s in sizes:
            out[s] += [pyr.crop(crops.crop_matrix(b, s), s) for b in bs]
    return {s: np.stack(v) for s, v in out.items()}


def onnx_at_size(manifest: dict, size: int, folder: Path, threads: int):
    """(OnnxNetwork of the manifest's weights at input side `size`, max |ONNX - PyTorch| on a test
    batch): runtime.build_onnx, the engine's export and its parity check, into a folder of this size."""
    import json

    from inference.models.hourglass_config import HourglassConfig
    from inference.models.runtime import build_onnx, OnnxNetwork, onnx_paths

    m = copy.deepcopy(manifest)
    m["config"] = {**m["config"], "in_size": size}
    cache = folder / str(size)          # the file name carries the weights' hash, not the size
    path = build_onnx(m, cache)
    diff = json.loads(onnx_paths(m, cache)[1].read_text())["max_abs_diff_vs_torch"]
    return OnnxNetwork(path, HourglassConfig.from_dict(m["config"]), threads=threads), diff


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--weights", default="pose_balanced", help="pose manifest (name in weights/ or path)")
    ap.add_argument("--sizes", nargs="+", type=int, default=[128, 160], help="input sides; ratios are to the first")
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batches", nargs="+", type=int, default=[8, 16])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--seconds", type=float, default=1.5, help="time per size per round")
    ap.add_argument("--int8", action="store_true", help="also time the shipped int8 file in the same rounds")
    ap.add_argument("--name", default="input_size", help="docs/results/bench/<name>.json")
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    from inference.models.runtime import load_network
    from inference.models.weights import load_manifest

    torch.set_num_threads(args.threads)
    manifest = load_manifest(args.weights, kind="2d")
    load_before = loadavg()
    patches = sample_crops(Path(args.video), args.sizes)
    with tempfile.TemporaryDirectory() as tmp:
        nets, diffs = {}, {}
        for s in args.sizes:
            nets[f"{s} px"], diffs[f"{s} px"] = onnx_at_size(manifest, s, Path(tmp), args.threads)
        inputs = {f"{s} px": patches[s] for s in args.sizes}
        if args.int8:
            net, _ = load_network(args.weights, "2d", "cpu", "onnx-int8", threads=args.threads)
            if net.runtime == "onnx-int8":
                key = f"{net.cfg.in_size} px int8"
                nets[key] = net
                inputs[key] = patches.get(net.cfg.in_size, patches[args.sizes[0]])
        keys = list(nets)
        ref = keys[0]
        title = (f"{Path(manifest['path']).name} in ONNX Runtime: images/s by input size, {args.threads} threads, "
                 f"{args.rounds} paired rounds of {args.seconds:g} s; load average before {load_before}")
        columns = ["input", "heatmap", "batch", "images/s (median, min-max)", f"speed vs {ref} (median of paired rounds)",
                   f"cost vs {ref} (1 / speed)", "max |ONNX - torch|"]
        rows = []
        for b in args.batches:
            rates = {k: [] for k in keys}
            for r in range(args.rounds):
                for k in (keys if r % 2 == 0 else keys[::-1]):
                    batch = np.resize(inputs[k], (b,) + inputs[k].shape[1:])   # real crops repeated up to b
                    rates[k].append(time_calls(nets[k], batch, args.seconds))
            for k in keys:
                ratios = [x / y for x, y in zip(rates[k], rates[ref])]
                side = nets[k].cfg.in_size
                rows.append([k, f"{side // 4} x {side // 4}", b,
                             f"{statistics.median(rates[k]):.1f} ({min(rates[k]):.1f}-{max(rates[k]):.1f})",
                             f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})",
                             f"{1 / statistics.median(ratios):.2f}x", f"{diffs[k]:.1e}" if k in diffs else "-"])
    title += f", after {loadavg()}"
    print(f"\n## {title}\n\n{markdown_table(columns, rows)}", flush=True)
    write_result(args.name, [{"title": title, "columns": columns, "rows": rows}],
                 notes="paired, interleaved rounds on a shared machine: quote the ratios; the cost of a size "
                       "does not depend on the weights (one architecture, exported per size)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
