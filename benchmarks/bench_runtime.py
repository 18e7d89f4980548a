"""PyTorch against ONNX Runtime: the shipped networks alone, and the whole process, in paired runs.

    .venv/bin/python benchmarks/bench_runtime.py                        # both tables, 2 threads
    .venv/bin/python benchmarks/bench_runtime.py --skip-process --rounds 9
    .venv/bin/python benchmarks/bench_runtime.py --runtimes onnx onnx-int8 --presets balanced  # int8
    .venv/bin/python benchmarks/bench_runtime.py --skip-model --presets fast balanced --repeat 5 \\
        --blazepose-python /tmp/bp-venv/bin/python                      # + BlazePose in each pair

Networks alone: the shipped pose networks (fast, balanced) and the detector, loaded as the engine
loads them (models/runtime.py: BatchNorms folded; torch channels-last, ONNX Runtime's CPU provider),
on real inputs: crops and letterboxed frames cut from the sample video. Each round times each
runtime for about `--seconds` in turn (the order alternates from round to round), so that both
see the same machine; the table gives the median images/s of each and the median of the
per-round ratios onnx / torch (or the second of `--runtimes` against the first).

Whole process: `python -m inference VIDEO -o out.npz --runtime R` in a subprocess, timed from
spawn to exit (start-up, loading, decoding, every stage, writing), the runtimes interleaved in
each repeat (and, with --blazepose-python, benchmarks/bench_blazepose.py in another venv on the
same clip); medians of wall time, frames/s and CPU time, and the median of the paired ratios.

On a shared machine the wall clock is noisy: quote ratios from the same run. OMP_WAIT_POLICY is
left as the caller set it (it changes only PyTorch's OpenMP threads) and recorded with the results
(docs/runtime.md). Writes docs/results/bench/<--name>.json (default "runtime").
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]
import posefile  # noqa: E402
from results_io import markdown_table, timed, write_result  # noqa: E402

DEFAULT_VIDEO = REPO / "examples" / "sports2d_demo.mp4"
RUNTIMES = ("torch", "onnx")


def loadavg() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def sample_people(video: Path, n_frames: int = 8):
    """(frames, boxes): every 12th of the clip's first frames and the people the learned detector
    finds in each, (N, 3) cx, cy, size (the frame's middle where it finds nobody)."""
    import cv2
    import numpy as np

    from inference.stages.detect import PersonDetector

    cap = cv2.VideoCapture(str(video))
    frames = []
    for i in range(n_frames * 12):
        ok, frame = cap.read()
        if not ok:
            break
        if i % 12 == 0:
            frames.append(frame)
    cap.release()
    det = PersonDetector("detector_fast", "cpu", runtime="torch")
    boxes = [found.boxes if len(found) else np.array([[f.shape[1] / 2, f.shape[0] / 2, f.shape[0] / 2]])
             for f, found in zip(frames, det.detect(frames, threshold=0.05))]
    return frames, boxes


def sample_inputs(video: Path, n_frames: int = 8):
    """Real network inputs: 128 px crops around the detected people and 256 px letterboxed frames
    of the first frames of the clip (the engine's own cropping)."""
    import numpy as np

    from inference.core import crops
    from inference.stages.detect import letterbox
    from inference.stages.pose2d import Pyramid

    frames, boxes = sample_people(video, n_frames)
    patches = []
    for frame, bs in zip(frames, boxes):
        pyr = Pyramid(frame)
        patches += [pyr.crop(crops.crop_matrix(b, 128), 128) for b in bs]
    boxed = np.stack([letterbox(f)[0] for f in frames])
    return np.stack(patches), boxed


def time_calls(net, batch, seconds: float) -> float:
    """Images per second of net(batch) over about `seconds` (after one warm-up call)."""
    net(batch)
    n, t0 = 0, time.perf_counter()
    while True:
        net(batch)
        n += len(batch)
        if time.perf_counter() - t0 >= seconds:
            return n / (time.perf_counter() - t0)


def model_table(args) -> dict:
    import numpy as np
    import torch

    from inference.models.runtime import load_network

    torch.set_num_threads(args.threads)
    patches, boxed = sample_inputs(Path(args.video))
    rows_spec = []
    for preset in args.presets:
        for b in args.pose_batches:
            rows_spec.append((f"pose {preset}", f"pose_{preset}", "2d", b))
    for b in args.detector_batches:
        rows_spec.append(("detector fast", "detector_fast", "detector", b))
    title = (f"Networks alone: images/s, {args.threads} threads{', ONNX Runtime threads spinning' if args.spin else ''}, "
             f"{args.rounds} paired rounds of {args.seconds:g} s, "
             f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average {loadavg()}")
    ref, new = args.runtimes
    columns = ["network", "batch", f"{ref} images/s (median, min-max)", f"{new} images/s (median, min-max)",
               f"{new} / {ref} (median of paired rounds, min-max)"]
    print(f"\n## {title}\n", flush=True)
    print(markdown_table(columns, []), flush=True)
    rows = []
    for label, name, kind, b in rows_spec:
        nets = {rt: load_network(name, kind, "cpu", rt, threads=args.threads, spin=args.spin)[0]
                for rt in args.runtimes}
        src = patches if kind == "2d" else boxed
        batch = np.resize(src, (b,) + src.shape[1:])        # repeats the real inputs up to the batch size
        rates = {rt: [] for rt in args.runtimes}
        for r in range(args.rounds):
            for rt in (args.runtimes if r % 2 == 0 else args.runtimes[::-1]):
                rates[rt].append(time_calls(nets[rt], batch, args.seconds))
        ratios = [o / t for t, o in zip(rates[ref], rates[new])]
        fmt = lambda v: f"{statistics.median(v):.1f} ({min(v):.1f}-{max(v):.1f})"  # noqa: E731
        row = [label, b, fmt(rates[ref]), fmt(rates[new]),
               f"{statistics.median(ratios):.2f}x ({min(ratios):.2f}-{max(ratios):.2f})"]
        print("| " + " | ".join(str(c) for c in row) + " |", flush=True)
        rows.append(row)
    return {"title": title, "columns": columns, "rows": rows}


def process_table(args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads), PYTHONPATH=str(REPO))
    title = (f"Whole process on {Path(args.video).name} ({args.frames or 'all'} frames), {args.threads} threads, "
             f"{args.repeat} interleaved repeats, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, "
             f"load average {loadavg()}")
    print(f"\n## {title}\n", flush=True)
    columns = ["command", "frames", "people", "wall s (median, min-max)", "frames/s (median)", "CPU s (median)",
               f"speed vs {args.runtimes[0]} (median of paired ratios, min-max)"]
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        cmds = {}
        for preset in args.presets:
            for rt in args.runtimes:
                cmd = [sys.executable, "-m", "inference", args.video, "-o", os.path.join(tmp, f"{preset}_{rt}.npz"),
                       "--preset", preset, "--runtime", rt, "--device", "cpu", "--progress", "none"]
                if args.frames:
                    cmd += ["--end", str(args.frames)]
                cmds[(preset, rt)] = cmd
        if args.blazepose_python:
            cmds[("blazepose", "full")] = [args.blazepose_python, str(REPO / "benchmarks" / "bench_blazepose.py"),
                                           args.video, "--threads", str(args.threads)] + (
                                               ["--frames", str(args.frames)] if args.frames else [])
        for key in cmds:
            results[key] = {"wall": [], "cpu": [], "frames": None, "people": None}
        keys = list(cmds)
        for r in range(args.repeat):
            for key in (keys if r % 2 == 0 else keys[::-1]):
                wall, cpu, proc = timed(cmds[key], env)
                if proc.returncode != 0:
                    raise SystemExit(f"{' '.join(cmds[key])} failed: {proc.stderr.strip()[-800:]}")
                res = results[key]
                res["wall"].append(wall)
                res["cpu"].append(cpu)
                if key[0] == "blazepose":
                    last = proc.stdout.strip().splitlines()[-1].split()
                    res["frames"], res["people"] = int(last[1]), f"{last[3]} frames with a pose"
                else:
                    data = posefile.load(os.path.join(tmp, f"{key[0]}_{key[1]}.npz"))
                    res["frames"], res["people"] = data.num_frames, data.num_people
                print(f"  repeat {r}: {key[0]} {key[1]}: {wall:.2f} s wall, {cpu:.2f} s CPU", flush=True)
    blaze = results.get(("blazepose", "full"))
    if blaze:
        columns.append("speed vs BlazePose (median of paired ratios, min-max)")
    paired = lambda a, b: f"{statistics.median([x / y for x, y in zip(a, b)]):.2f}x ({min(x / y for x, y in zip(a, b)):.2f}-{max(x / y for x, y in zip(a, b)):.2f})"  # noqa: E731
    rows = []
    for key in keys:
        res = results[key]
        wall = res["wall"]
        if key[0] == "blazepose":
            row = ["BlazePose-full (mediapipe, other venv)", res["frames"], res["people"]]
            vs_torch = "-"
        else:
            row = [f"{key[0]} --runtime {key[1]}", res["frames"], res["people"]]
            vs_torch = paired(results[(key[0], args.runtimes[0])]["wall"], wall)
        row += [f"{statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f})",
                f"{res['frames'] / statistics.median(wall):.1f}", f"{statistics.median(res['cpu']):.2f}", vs_torch]
        if blaze:
            row.append(paired(blaze["wall"], wall))
        rows.append(row)
    print(markdown_table(columns, rows), flush=True)
    return {"title": title, "columns": columns, "rows": rows,
            "raw": {f"{k[0]} {k[1]}": v for k, v in results.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--presets", nargs="+", default=["fast", "balanced"], choices=["fast", "balanced"])
    ap.add_argument("--pose-batches", nargs="+", type=int, default=[8, 16])
    ap.add_argument("--detector-batches", nargs="+", type=int, default=[1])
    ap.add_argument("--rounds", type=int, default=5, help="paired rounds per network")
    ap.add_argument("--seconds", type=float, default=1.5, help="time per runtime per round")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved whole-process repeats")
    ap.add_argument("--frames", type=int, default=None, help="whole process: only the first N frames")
    ap.add_argument("--blazepose-python", default=None,
                    help="a Python with mediapipe (a separate venv, never the project's): adds "
                         "benchmarks/bench_blazepose.py to each whole-process repeat")
    ap.add_argument("--runtimes", nargs=2, default=list(RUNTIMES), choices=["torch", "onnx", "onnx-int8"],
                    metavar=("REF", "NEW"), help="the two runtimes compared (default: torch onnx)")
    ap.add_argument("--spin", action="store_true",
                    help="networks alone: let ONNX Runtime's threads spin while they wait (the engine lets them sleep)")
    ap.add_argument("--skip-model", action="store_true")
    ap.add_argument("--skip-process", action="store_true")
    ap.add_argument("--name", default="runtime", help="docs/results/bench/<name>.json")
    args = ap.parse_args(argv)
    tables = []
    if not args.skip_model:
        tables.append(model_table(args))
    if not args.skip_process:
        tables.append(process_table(args))
    raw = {t["title"]: t.pop("raw") for t in tables if "raw" in t}
    write_result(args.name, tables, extra={"raw": raw},
                 notes=f"paired, interleaved runs; ratios > 1 mean {args.runtimes[1]} (or the row) is faster "
                       f"than {args.runtimes[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
