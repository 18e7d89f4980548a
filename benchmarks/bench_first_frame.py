"""Time to first frame and whole-process speed of `python -m inference` on the sample video.

    .venv/bin/python benchmarks/bench_first_frame.py [--video V] [--preset fast] [--device cpu]
        [--repeat 3] [--threads 2] [--weights DIR]

Each run spawns the real CLI with ``--progress jsonl`` and times, from the spawn:
  first result  the first progress line (the first chunk of frames is through detection, 2D pose
                and tracking; this includes Python and torch start-up and loading the weights),
  total         the process's exit (the pose file is written),
and reports frames / total as the whole-process rate, next to the pipeline's own rate after
loading (``fps_processing`` in the pose file's meta). Run 1 is cold (nothing in the page
cache yet), the others warm; the table lists every run. Writes docs/results/bench/first_frame.json.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path[:0] = [HERE, REPO]
import posefile  # noqa: E402
from results_io import engine_env, markdown_table, write_result  # noqa: E402

DEFAULT_VIDEO = os.path.join(REPO, "examples", "sports2d_demo.mp4")


def one_run(cmd: list, env: dict) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = None
    first_frames = 0
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        ev = json.loads(line)
        if first is None and ev.get("frame", 0) > 0:
            first, first_frames = time.perf_counter() - t0, int(ev["frame"])
    err = proc.stderr.read()
    rc = proc.wait()
    total = time.perf_counter() - t0
    if rc != 0:
        raise SystemExit(f"inference failed ({rc}): {err.strip()[-1000:]}")
    return {"first_s": first, "first_frames": first_frames, "total_s": total}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=DEFAULT_VIDEO)
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-people", type=int, default=10)
    ap.add_argument("--end", type=int, default=None, help="stop before this frame")
    ap.add_argument("--weights", default=None)
    ap.add_argument("--untrained", action="store_true",
                    help="random networks of the real architectures (training/untrained.py): speed does not "
                         "depend on the weight values")
    ap.add_argument("--name", default="first_frame", help="docs/results/bench/<name>.json")
    args = ap.parse_args(argv)

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "o.npz")
        if args.untrained:
            from training.untrained import untrained_weights  # torch: only with --untrained

            args.weights = str(untrained_weights(os.path.join(tmp, "weights")))
        cmd = [sys.executable, "-m", "inference", args.video, "-o", out, "--progress", "jsonl",
               "--preset", args.preset, "--device", args.device, "--max-people", str(args.max_people)]
        if args.weights:
            cmd += ["--weights", args.weights]
        if args.end:
            cmd += ["--end", str(args.end)]
        env = engine_env(args.threads)
        for k in range(args.repeat):
            r = one_run(cmd, env)
            d = posefile.load(out)
            st = d.meta.get("stats", {})
            F = d.num_frames
            row = ["cold" if k == 0 else f"warm {k}", args.preset, args.device, F, d.num_people,
                   round(r["first_s"], 2), r["first_frames"], round(r["total_s"], 2), round(F / r["total_s"], 2),
                   st.get("seconds_load"), st.get("fps_processing")]
            rows.append(row)
            print(markdown_table(COLUMNS, [row]).splitlines()[-1], flush=True)
    try:
        load = os.getloadavg()[0]
    except OSError:
        load = float("nan")
    notes = (f"Weights: {'untrained (--untrained)' if args.untrained else (args.weights or 'weights/')}. "
             f"{args.threads} torch threads; load average {load:.1f} at the end (the machine may be shared: "
             "wall-clock rates then understate the speed). 'first result' = spawn to the first progress line "
             "(first chunk through detection + 2D + tracking).")
    write_result(args.name, [{"title": f"Time to first frame and whole-process rate ({os.path.basename(args.video)})",
                              "columns": COLUMNS, "rows": rows}], notes=notes)
    print(markdown_table(COLUMNS, rows))
    return 0


COLUMNS = ["run", "preset", "device", "frames", "people", "first result (s)", "frames in it", "total (s)",
           "whole-process fps", "weights load (s)", "pipeline fps after load"]

if __name__ == "__main__":
    sys.exit(main())
