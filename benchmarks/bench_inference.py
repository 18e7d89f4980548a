"""Speed of the inference engine: the networks alone, and the whole process on a video.

    .venv/bin/python benchmarks/bench_inference.py                      # both tables, CPU, 2 threads
    .venv/bin/python benchmarks/bench_inference.py --untrained          # no trained weights needed
    .venv/bin/python benchmarks/bench_inference.py --device cuda        # on a GPU machine

Model-only: images per second through each preset's pose network (and the detector) for
batches of crops, with random weights (speed does not depend on the values).
Whole process: `python -m inference VIDEO -o out.npz` in a subprocess, timed from spawn to exit
(Python and torch start-up, weight loading, decoding, every stage, writing the file), plus the
pipeline's own rate after loading (from the pose file's meta).

Every rate is given twice: wall clock, and "cpu-est": frames / (CPU seconds used / threads), an
estimate of the rate with the threads' cores to itself; on a shared machine the wall clock
understates the speed. The load average is printed with each table. The tables also go to
docs/results/bench/<--name>.json (default "inference"), which ``python -m evaluation.report`` reads.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]
from inference import PipelineOptions, run  # noqa: E402
import posefile  # noqa: E402
from results_io import engine_env, timed, write_result  # noqa: E402

MODEL_COLUMNS = ["network", "config", "batch", "images/s wall", "images/s cpu-est"]
PROCESS_COLUMNS = ["preset", "frames", "people", "seconds wall", "fps wall", "fps cpu-est",
                   "pipeline fps (after loading)"]
DEFAULT_VIDEO = next((p for p in (REPO / "examples" / "sports2d_demo.mp4",
                                  REPO.parent / "shared" / "data" / "video" / "sports2d_demo.mp4") if p.is_file()), None)


def loadavg() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def bench_model(cfg, batch: int, device, seconds: float, threads: int) -> tuple[float, float]:
    """-> (images/s wall, images/s cpu-est) of a StackedHourglass(cfg) on `batch` inputs."""
    # torch (and the modules that import it) load lazily: main() sets OMP_WAIT_POLICY before torch starts.
    import torch

    from inference.models.hourglass import StackedHourglass
    from inference.stages.pose2d import fold_batchnorm

    model = fold_batchnorm(StackedHourglass(cfg).eval()).to(device)
    x = torch.randn(batch, 3, cfg.in_size, cfg.in_size, device=device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t, c, n = time.perf_counter(), time.process_time(), 0
        while True:
            model(x)[-1].float().cpu()
            n += batch
            if time.perf_counter() - t > seconds:
                break
    wall = n / (time.perf_counter() - t)
    cpu = n / max((time.process_time() - c) / threads, 1e-9) if device.type == "cpu" else float("nan")
    return wall, cpu


def model_table(args) -> dict:
    """Print the networks-alone table; return it as a results_io table."""
    # torch (and the modules that import it) load lazily: main() sets OMP_WAIT_POLICY before torch starts.
    import torch

    from inference.stages.pose2d import resolve_device
    from training.presets import DETECTOR_PRESETS, POSE_PRESETS

    device = resolve_device(args.device)
    title = f"Networks alone ({device.type}, {args.threads} threads, load average {loadavg()})"
    print(f"\n## {title}\n")
    print("| network | config | batch | images/s wall | images/s cpu-est |")
    print("| --- | --- | ---: | ---: | ---: |")
    rows = []
    for preset in args.presets:
        cfg = POSE_PRESETS[preset]
        big = cfg.in_size >= 256 and device.type == "cpu"
        for b in ((1, 4) if big else (1, 8, 32)):
            rows.append((f"pose {preset}", cfg, b, 20.0 if big else args.seconds))
    for b in (1, 8):
        rows.append(("detector fast", DETECTOR_PRESETS["fast"], b, args.seconds))
    out = []
    for name, cfg, b, secs in rows:
        wall, cpu = bench_model(cfg, b, device, secs, args.threads)
        desc = f"{cfg.stacks} stacks x {cfg.features} ch, {cfg.in_size} px"
        print(f"| {name} | {desc} | {b} | {wall:.1f} | {cpu:.1f} |", flush=True)
        out.append([name, desc, b, round(wall, 2), round(cpu, 2) if cpu == cpu else None])
    return {"title": title, "columns": MODEL_COLUMNS, "rows": out}


def process_table(args) -> tuple[dict, dict]:
    """Print the whole-process table; return (it as a results_io table, {preset: pipeline stats})."""
    video = Path(args.video)
    title = (f"Whole process on {video.name} (frames {args.start}..{args.start + args.frames - 1}, {args.device}, "
             f"{args.threads} threads, load average {loadavg()})")
    print(f"\n## {title}\n")
    table_rows, all_stats = [], {}
    print("| preset | frames | people | seconds wall | fps wall | fps cpu-est | pipeline fps (after loading) |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for preset in args.presets:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "out.npz"
            if args.untrained or args.initial_boxes:
                cmd = [sys.executable, str(Path(__file__).resolve()), "--_api-run", str(video), str(out),
                       str(args.start), str(args.start + args.frames), preset, args.device,
                       "untrained" if args.untrained else (args.weights or ""), args.initial_boxes or "",
                       str(args.max_people)]
            else:
                cmd = [sys.executable, "-m", "inference", str(video), "-o", str(out), "--preset", preset,
                       "--device", args.device, "--start", str(args.start), "--end", str(args.start + args.frames),
                       "--progress", "none",
                       "--max-people", str(args.max_people)]
                if args.weights:
                    cmd += ["--weights", args.weights]
            env = engine_env(args.threads)
            wall, cpu, r = timed(cmd, env)
            if r.returncode != 0:
                msg = (r.stderr.strip().splitlines() or ["?"])[-1]
                print(f"| {preset} | - | - | - | - | - | failed: {msg} |", flush=True)
                table_rows.append([preset, None, None, None, None, None, f"failed: {msg}"])
                continue
            data = posefile.load(out)
            F = data.num_frames
            stats = data.meta.get("stats", {})
            tag = " (untrained)" if args.untrained else (" (initial boxes)" if args.initial_boxes else "")
            print(f"| {preset}{tag} | {F} | {data.num_people} | {wall:.1f} | "
                  f"{F / wall:.1f} | {F / max(cpu / args.threads, 1e-9):.1f} | {stats.get('fps_processing', '?')} |",
                  flush=True)
            table_rows.append([f"{preset}{tag}", F, data.num_people, round(wall, 2), round(F / wall, 2),
                        round(F / max(cpu / args.threads, 1e-9), 2), stats.get("fps_processing")])
            all_stats[preset] = stats
            if args.verbose:
                keys = ("crops", "refined_crops", "poses", "detector_frames", "seconds_load", "seconds_detect",
                        "seconds_pose", "seconds_decode_wait", "seconds_stage2", "seconds_total")
                print("stats: " + json.dumps({k: stats.get(k) for k in keys}), flush=True)
    return {"title": title, "columns": PROCESS_COLUMNS, "rows": table_rows}, all_stats


def _api_run(video, out, start, end, preset, device, weights, boxes, max_people) -> None:
    """Child process for --untrained / --initial-boxes: the pipeline through the Python API.

    untrained: random networks, detector threshold 0 and 2 people per frame (speed only);
    boxes "cx,cy,size;...": people to follow from the first frame (when the detector is weak)."""
    kw = dict(preset=preset, device=device, start=int(start), end=int(end), max_people=int(max_people))
    if boxes:
        kw["initial_boxes"] = [tuple(float(v) for v in b.split(",")) for b in boxes.split(";")]
    with tempfile.TemporaryDirectory() as tmp:
        if weights == "untrained":
            from training.untrained import untrained_weights  # torch: only with --untrained

            if preset != "fast":
                raise SystemExit("--untrained has only the fast preset's architecture")
            kw.update(weights_dir=str(untrained_weights(Path(tmp))), detection_threshold=0.0,
                      min_pose_score=0.0, max_people=2)
        elif weights:
            kw["weights_dir"] = weights
        run(video, PipelineOptions(**kw)).save(out)


def main(argv=None) -> None:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--_api-run":
        _api_run(*sys.argv[2:12])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--video", default=str(DEFAULT_VIDEO) if DEFAULT_VIDEO else None)
    p.add_argument("--frames", type=int, default=230)
    p.add_argument("--start", type=int, default=0)
    p.add_argument("--initial-boxes", default=None, metavar="CX,CY,S;...",
                   help="people to follow from the first frame (runs through the Python API)")
    p.add_argument("--presets", nargs="+", default=["fast", "accurate"], choices=["fast", "accurate"])
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--weights", default=None, help="weights folder (default: weights/)")
    p.add_argument("--untrained", action="store_true", help="whole-process run with random networks (speed only)")
    p.add_argument("--max-people", type=int, default=4)
    p.add_argument("--seconds", type=float, default=5.0, help="time per model measurement")
    p.add_argument("--skip-model", action="store_true")
    p.add_argument("--skip-process", action="store_true")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--name", default="inference", help="docs/results/bench/<name>.json")
    p.add_argument("--json-dir", default=None, help="folder for the JSON (default docs/results/bench)")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch  # lazy: after OMP_WAIT_POLICY is set (OpenMP reads it when torch loads)

    torch.set_num_threads(args.threads)
    tables, extra = [], {}
    if not args.skip_model:
        tables.append(model_table(args))
    if not args.skip_process:
        if not args.video:
            raise SystemExit("no video: pass --video")
        if args.untrained:
            args.presets = [p for p in args.presets if p == "fast"]
        table, extra["pipeline_stats"] = process_table(args)
        tables.append(table)
    if tables:
        notes = ('"cpu-est": frames (images) / (CPU seconds used / threads), the rate with the threads\' '
                 "cores to itself; on a shared machine the wall clock understates the speed.")
        write_result(args.name, tables, notes=notes, folder=args.json_dir, extra=extra)


if __name__ == "__main__":
    main()
