"""Memory of `python -m inference` as the video grows: does it stay flat?

    .venv/bin/python benchmarks/bench_memory.py [--seconds 60,600] [--preset fast] [--device cpu]
        [--scale 1.0] [--weights DIR]

A long stream is made by looping the sample video's frames: they are decoded once into JPEG files
(``--scale`` resizes them), and for each length an image folder of symlinks repeats them in
order (frame_000000.jpg, ...) up to ``seconds x 30`` frames, so 10 minutes of video costs no
more disk than the 230 frames. The real CLI then runs on each folder in its own process
(``python -m inference FOLDER -o out.npz --progress jsonl``); its resident memory (VmRSS, from
/proc) is sampled at every progress line and its peak (VmHWM / ru_maxrss from wait4) is taken
at exit. The table gives the peak and the RSS after 10 %, 50 % and 100 % of the frames: decoding
streams, and the engine keeps only per-person joints (about 200 bytes per person-frame), so the
peak should barely move between 1 and 10 minutes. Writes docs/results/bench/memory.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import cv2

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, REPO]
from inference.pipeline import PipelineOptions, run  # noqa: E402
from inference.stages.video import FrameReader  # noqa: E402
import posefile  # noqa: E402
from results_io import markdown_table, write_result  # noqa: E402

DEFAULT_VIDEO = os.path.join(REPO, "examples", "sports2d_demo.mp4")
FPS = 30.0   # image folders play at 30 fps (inference.stages.video.DEFAULT_FPS); the sample is 30 fps too


def extract_frames(video: str, folder: str, scale: float) -> list:
    """Decode every frame of video once into folder/src_NNNN.jpg; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    with FrameReader(video) as reader:
        for i, frame in reader:
            if scale != 1.0:
                frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            p = os.path.join(folder, f"src_{i:04d}.jpg")
            cv2.imwrite(p, frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
            paths.append(p)
    return paths


def looped_folder(src: list, n: int, folder: str) -> str:
    """folder with n symlinks cycling through src (ping-pong, so motion stays continuous)."""
    os.makedirs(folder, exist_ok=True)
    cycle = src + src[-2:0:-1]
    for k in range(n):
        os.symlink(cycle[k % len(cycle)], os.path.join(folder, f"frame_{k:06d}.jpg"))
    return folder


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def run_one(folder: str, n: int, args, env) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o.npz")
        cmd = [sys.executable, "-m", "inference", folder, "-o", out, "--progress", "jsonl",
               "--preset", args.preset, "--device", args.device, "--max-people", str(args.max_people)]
        if args.weights:
            cmd += ["--weights", args.weights]
        if args.initial_boxes:     # not a CLI option: the same run through the Python API
            boxes = [[float(v) * args.scale if i < 3 else float(v) for i, v in enumerate(b.split(","))]
                     for b in args.initial_boxes.split(";") if b.strip()]
            opts = {"preset": args.preset, "device": args.device, "max_people": args.max_people,
                    "weights_dir": args.weights, "initial_boxes": boxes}
            cmd = [sys.executable, os.path.abspath(__file__), "--_api-run", folder, out, json.dumps(opts)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        samples = []                       # (frames done, RSS MB)
        for line in proc.stdout:
            if line.startswith("{"):
                ev = json.loads(line)
                if "frame" in ev and not ev.get("done"):
                    samples.append((int(ev["frame"]), rss_mb(proc.pid)))
        err = proc.stderr.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise SystemExit(f"inference failed on {n} frames: {err.strip()[-800:]}")
        d = posefile.load(out)
        size = os.path.getsize(out)

    def at(frac):
        target = frac * n
        best = min(samples, key=lambda s: abs(s[0] - target)) if samples else (0, float("nan"))
        return round(best[1], 1)

    return {"frames": n, "people": d.num_people, "person_frames": int(d.valid.sum()), "peak_mb": round(usage.ru_maxrss / 1024.0, 1),
            "rss10": at(0.1), "rss50": at(0.5), "rss100": at(1.0), "wall_s": round(wall, 1),
            "posefile_mb": round(size / 2**20, 2), "samples": samples}


def _api_run(folder: str, out: str, opts_json: str) -> None:
    """Child process for --initial-boxes: what `python -m inference --progress jsonl` does, with
    PipelineOptions.initial_boxes (no CLI option for it)."""
    def progress(u):
        sys.stdout.write(json.dumps(u) + "\n")
        sys.stdout.flush()

    run(folder, PipelineOptions(**json.loads(opts_json)), progress=progress).save(out)


def main(argv=None) -> int:
    if argv is None and len(sys.argv) > 1 and sys.argv[1] == "--_api-run":
        _api_run(*sys.argv[2:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=DEFAULT_VIDEO)
    ap.add_argument("--seconds", default="60,600", help="stream lengths in seconds of 30 fps video")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--max-people", type=int, default=10)
    ap.add_argument("--scale", type=float, default=1.0, help="resize the frames (1.0 = as the video)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--weights", default=None)
    ap.add_argument("--initial-boxes", default=None, metavar="CX,CY,S;...",
                    help="people to follow from the first frame, in the video's pixels (run through the "
                         "Python API: PipelineOptions.initial_boxes)")
    ap.add_argument("--untrained", action="store_true",
                    help="random networks of the real architectures (training/untrained.py): memory and "
                         "speed do not depend on the weight values; cap the people with --max-people")
    ap.add_argument("--work", default=None, help="scratch folder (default: a temp folder, removed)")
    ap.add_argument("--name", default="memory", help="docs/results/bench/<name>.json")
    args = ap.parse_args(argv)
    lengths = [float(s) for s in args.seconds.split(",") if s.strip()]
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads),
               OMP_WAIT_POLICY="PASSIVE", PYTHONPATH=REPO)
    work = args.work or tempfile.mkdtemp(prefix="bench_mem_")
    rows, runs = [], []
    try:
        if args.untrained:
            from training.untrained import untrained_weights  # torch: only with --untrained

            args.weights = str(untrained_weights(os.path.join(work, "weights")))
        man = os.path.join(args.weights or os.path.join(REPO, "weights"), f"pose_{args.preset}.json")
        try:
            with open(man) as fh:
                wdesc = json.load(fh).get("data", "?")
        except (OSError, ValueError):
            wdesc = "?"
        src = extract_frames(args.video, os.path.join(work, "src"), args.scale)
        for sec in lengths:
            n = int(round(sec * FPS))
            folder = looped_folder(src, n, os.path.join(work, f"loop_{n}"))
            r = run_one(folder, n, args, env)
            runs.append(r)
            row = [f"{sec / 60:g} min" if sec >= 60 else f"{sec:g} s", n, r["people"], r["person_frames"], r["peak_mb"], r["rss10"], r["rss50"], r["rss100"],
                   r["posefile_mb"], r["wall_s"], round(n / r["wall_s"], 1)]
            rows.append(row)
            print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    h, w = _frame_size(args.video, args.scale)
    wname = "untrained (--untrained)" if args.untrained else (args.weights or "weights/")
    notes = (f"Weights: {wname} (pose network data: {wdesc}). "
             f"Frames {w}x{h} (sample video looped ping-pong), {args.preset} preset on {args.device}, "
             f"{args.threads} threads. Peak = ru_maxrss of the inference process; RSS at x % = VmRSS when "
             "the progress line for that share of the frames arrived.")
    write_result(args.name, [{"title": "Memory vs video length (whole `python -m inference` process)",
                              "columns": COLUMNS, "rows": rows}], notes=notes,
                 extra={"rss_samples": [{"frames": r["frames"], "samples": r["samples"]} for r in runs]})
    print(markdown_table(COLUMNS, rows))
    return 0


def _frame_size(video, scale):
    cap = cv2.VideoCapture(video)
    w, h = cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)
    cap.release()
    return int(round(h * scale)), int(round(w * scale))


COLUMNS = ["video length", "frames", "tracks", "person-frames", "peak RSS (MB)", "RSS at 10 % (MB)", "RSS at 50 % (MB)",
           "RSS at 100 % (MB)", "pose file (MB)", "wall (s)", "fps"]

if __name__ == "__main__":
    sys.exit(main())
