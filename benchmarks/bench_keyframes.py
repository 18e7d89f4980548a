"""Benchmark: import P people x F frames from a pose file into Blender (bpy wheel).

    .venv/bin/python benchmarks/bench_keyframes.py [--people 10] [--frames 10000] [--repeat 3]

Builds a synthetic pose file (constant bone lengths, core/synthetic.py), then
times import_posefile.load on an empty factory scene, split into its stages:
read+validate, solve (pure numpy), armatures + keys (bpy).  Prints a table;
the best of --repeat runs counts.  The table also goes to docs/results/bench/<--name>.json (default
keyframes_<P>x<F>, F in thousands as "10k" when whole), which ``python -m evaluation.report`` reads.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "benchmarks"), ROOT]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="bench_bur_"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import bpy  # noqa: E402
import numpy as np  # noqa: E402

from blender_mocap_addon.blender import import_posefile  # noqa: E402
import posefile
from blender_mocap_addon.core import synthetic  # noqa: E402
from results_io import write_result  # noqa: E402

COLUMNS = ["people", "frames", "keys", "read (s)", "solve (s)", "full import wall (s)", "full import CPU (s)",
           "M keys/s"]


def default_name(people: int, frames: int) -> str:
    return f"keyframes_{people}x{frames // 1000}k" if frames % 1000 == 0 else f"keyframes_{people}x{frames}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, default=10)
    ap.add_argument("--frames", type=int, default=10000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--name", default=None, help="docs/results/bench/<name>.json (default keyframes_<P>x<F>)")
    ap.add_argument("--json-dir", default=None, help="folder for the JSON (default docs/results/bench)")
    args = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="bench_kf_")
    path = os.path.join(tmp, "bench.npz")
    t = time.perf_counter()
    posefile.write_posefile(path, **synthetic.pose_arrays(args.people, args.frames, gaps=True))
    print(f"synthetic pose file: {args.people} people x {args.frames} frames "
          f"({os.path.getsize(path) / 1e6:.1f} MB) in {time.perf_counter() - t:.1f} s")

    rows = []
    for r in range(args.repeat):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        t0 = time.perf_counter()
        data = import_posefile.read_pose_file(path)
        t1 = time.perf_counter()
        people = import_posefile.solve_people(data, import_posefile.ImportOptions(), [])
        t2 = time.perf_counter()
        bpy.ops.wm.read_factory_settings(use_empty=True)
        t3 = time.perf_counter()
        c3 = time.process_time()
        res = import_posefile.load(path, import_posefile.ImportOptions(), report=lambda m: None)
        t4 = time.perf_counter()
        c4 = time.process_time()
        rows.append((t1 - t0, t2 - t1, t4 - t3, res.keys, c4 - c3, dict(res.cpu_seconds)))
    best = min(rows, key=lambda x: x[2])
    print()
    print("| people | frames | keys | read (s) | solve (s) | full import wall (s) | full import CPU (s) | keys/s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.people} | {args.frames} | {best[3]} | {best[0]:.2f} | {best[1]:.2f} | "
          f"{best[2]:.2f} | {best[4]:.2f} | {best[3] / best[2] / 1e6:.1f} M |")
    print("\nCPU seconds by stage (same run): " +
          ", ".join(f"{k} {v:.2f}" for k, v in best[5].items()))
    print(f"all runs, full import wall (s): {', '.join(f'{r[2]:.2f}' for r in rows)}")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"(full import = read + solve + armatures + bulk keys; bpy {bpy.app.version_string}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs, load average {load:.1f})")
    row = [args.people, args.frames, int(best[3]), round(best[0], 3), round(best[1], 3), round(best[2], 3),
           round(best[4], 3), round(best[3] / best[2] / 1e6, 2)]
    notes = (f"Best of {args.repeat} runs. Full import = read + solve + armatures + bulk keys (bpy "
             f"{bpy.app.version_string}, numpy {np.__version__}). CPU seconds by stage (same run): "
             + ", ".join(f"{k} {v:.2f}" for k, v in best[5].items())
             + ". All runs, full import wall (s): " + ", ".join(f"{r[2]:.2f}" for r in rows) + ".")
    write_result(args.name or default_name(args.people, args.frames),
                 [{"title": f"Import of {args.people} people x {args.frames} frames into Blender",
                   "columns": COLUMNS, "rows": [row]}], notes=notes, folder=args.json_dir,
                 extra={"runs_wall_s": [round(r[2], 3) for r in rows],
                        "cpu_seconds_by_stage": {k: round(v, 3) for k, v in best[5].items()}})


if __name__ == "__main__":
    main()
