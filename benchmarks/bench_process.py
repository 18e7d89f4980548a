"""The whole engine process before and after a change, in paired runs, with BlazePose beside it.

    .venv/bin/python benchmarks/bench_process.py --baseline HEAD~3 --presets fast balanced --repeat 5
    BLAZEPOSE_PYTHON=<venv>/bin/python .venv/bin/python benchmarks/bench_process.py --baseline HEAD~3

Each repeat runs, in turn, `python -m inference VIDEO -o out.npz --preset P --runtime R` from this
working tree ("now") and from `--baseline` (any git revision, exported with `git archive` into a
temporary folder and run with the same Python), and with a Python that has mediapipe
(`--blazepose-python`, default $BLAZEPOSE_PYTHON; a separate virtual environment, never the
project's) benchmarks/bench_blazepose.py on the same clip. The order is reversed every other
repeat, so that each pair sees the same machine; on a shared machine only the paired ratios mean
anything. Timed from spawn to exit (start-up, loading, decoding, every stage, writing); CPU time
from the children's rusage.

Per command the table gives the median wall time, frames/s, CPU seconds, the engine's own stage
timers (meta.stats: seconds_load, seconds_decode_wait, seconds_detect, seconds_pose, seconds_track,
seconds_stage2; medians) and the median of the paired ratios baseline / now and BlazePose / now
(> 1: now is faster). It also says whether both trees wrote the same joints. Writes
docs/results/bench/<--name>.json (default "process").
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "benchmarks"), str(REPO)]
import numpy as np  # noqa: E402

import posefile  # noqa: E402
from results_io import markdown_table, timed, write_result  # noqa: E402

DEFAULT_VIDEO = REPO / "examples" / "sports2d_demo.mp4"
STAGES = ("seconds_load", "seconds_decode_wait", "seconds_detect", "seconds_pose", "seconds_track",
          "seconds_stage2")


def loadavg() -> str:
    try:
        return " ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _env(root: Path, onnx_cache: Path | None) -> dict:
    """The environment of a timed command run from the tree at root (its own ONNX cache if given)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MOCAP_RUNTIME")}
    env["PYTHONPATH"] = str(root)
    if onnx_cache is not None:
        env["MOCAP_ONNX_CACHE"] = str(onnx_cache)
    return env


def export_tree(rev: str, dest: Path) -> str:
    """`git archive rev` unpacked into dest; returns the full commit hash."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=REPO, check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = dest / "tree.tar"
    with open(archive, "wb") as fh:
        subprocess.run(["git", "archive", "--format=tar", commit], cwd=REPO, check=True, stdout=fh)
    with tarfile.open(archive) as tar:
        tar.extractall(dest / "tree", filter="data")
    archive.unlink()
    return commit


def paired(a: list, b: list) -> str:
    """Median (min-max) of a[i] / b[i]."""
    r = [x / y for x, y in zip(a, b)]
    return f"{statistics.median(r):.2f}x ({min(r):.2f}-{max(r):.2f})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=str(DEFAULT_VIDEO))
    ap.add_argument("--baseline", default=None, help="git revision to compare with (e.g. HEAD~2); none: only now")
    ap.add_argument("--presets", nargs="+", default=["fast", "balanced"], choices=["fast", "balanced"])
    ap.add_argument("--runtime", default="onnx", choices=["auto", "torch", "onnx", "onnx-int8"])
    ap.add_argument("--baseline-runtime", default=None, choices=["auto", "torch", "onnx"],
                    help="the baseline's --runtime (default: --runtime)")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved repeats")
    ap.add_argument("--frames", type=int, default=None, help="only the first N frames")
    ap.add_argument("--blazepose-python", default=os.environ.get("BLAZEPOSE_PYTHON"),
                    help="a Python with mediapipe 0.10.14 (default $BLAZEPOSE_PYTHON): adds "
                         "benchmarks/bench_blazepose.py to each repeat")
    ap.add_argument("--name", default="process", help="docs/results/bench/<name>.json")
    args = ap.parse_args(argv)
    video = str(Path(args.video).resolve())
    title = (f"Whole process on {Path(video).name} ({args.frames or 'all'} frames), --runtime {args.runtime}"
             f"{f' (baseline {args.baseline_runtime})' if args.baseline_runtime else ''}, {args.repeat} interleaved repeats, load average at start {loadavg()}")
    print(f"\n## {title}\n", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        trees = {"now": REPO}
        baseline = None
        if args.baseline:
            (tmp / "base").mkdir()
            baseline = export_tree(args.baseline, tmp / "base")
            trees["baseline"] = tmp / "base" / "tree"
            # The baseline's ONNX files come from its own export (a shared cache would hand it
            # today's files, whose record it may not know how to judge), built before the timing.
            subprocess.run([sys.executable, "-m", "inference.models.runtime", "--build"], cwd=trees["baseline"],
                           env=_env(trees["baseline"], tmp / "base" / "onnx"), capture_output=True, text=True)
        cmds = {}
        for preset in args.presets:
            for tree, root in trees.items():
                out = tmp / f"{preset}_{tree}.npz"
                cmd = [sys.executable, "-m", "inference", video, "-o", str(out), "--preset", preset,
                       "--runtime", args.runtime if tree == "now" else (args.baseline_runtime or args.runtime),
                       "--progress", "none"]
                cmds[(preset, tree)] = (cmd + (["--end", str(args.frames)] if args.frames else []), root, out)
        if args.blazepose_python:
            cmd = [args.blazepose_python, str(REPO / "benchmarks" / "bench_blazepose.py"), video]
            cmds[("blazepose", "full")] = (cmd + (["--frames", str(args.frames)] if args.frames else []), REPO, None)
        res = {k: {"wall": [], "cpu": [], "stats": [], "frames": None, "people": None} for k in cmds}
        keys = list(cmds)
        for r in range(args.repeat):
            for key in (keys if r % 2 == 0 else keys[::-1]):
                cmd, root, out = cmds[key]
                env = _env(root, tmp / "base" / "onnx" if key[1] == "baseline" else None)
                wall, cpu, proc = timed(cmd, env, cwd=root)
                if proc.returncode != 0:
                    raise SystemExit(f"{' '.join(map(str, cmd))} failed: {proc.stderr.strip()[-800:]}")
                rec = res[key]
                rec["wall"].append(wall)
                rec["cpu"].append(cpu)
                if out is None:
                    last = proc.stdout.strip().splitlines()[-1].split()
                    rec["frames"], rec["people"] = int(last[1]), f"{last[3]} frames with a pose"
                else:
                    data = posefile.load(out)
                    rec["frames"], rec["people"] = data.num_frames, data.num_people
                    rec["stats"].append({s: data.meta.get("stats", {}).get(s) for s in STAGES})
                    rec["joints"] = np.nan_to_num(data.joints2d, nan=-1.0)
                print(f"  repeat {r}: {key[0]} {key[1]}: {wall:.2f} s wall, {cpu:.2f} s CPU (load {loadavg()})",
                      flush=True)
    columns = ["command", "frames", "people", "wall s (median, min-max)", "frames/s (median)", "CPU s (median)",
               "stage seconds (median): " + " / ".join(s.replace("seconds_", "") for s in STAGES)]
    if baseline:
        columns.append("speed vs baseline (median of paired ratios baseline/now, min-max)")
    blaze = res.get(("blazepose", "full"))
    if blaze:
        columns.append("speed vs BlazePose (median of paired ratios BlazePose/now, min-max)")
    rows, same = [], {}
    for key in keys:
        rec = res[key]
        wall = rec["wall"]
        label = ("BlazePose-full (mediapipe, other venv)" if key[0] == "blazepose"
                 else f"{key[0]} --runtime {args.runtime if key[1] == 'now' else (args.baseline_runtime or args.runtime)} "
                      f"({key[1]})")
        stages = " / ".join(
            "-" if not rec["stats"] or rec["stats"][0][s] is None
            else f"{statistics.median(st[s] for st in rec['stats']):.2f}" for s in STAGES)
        row = [label, rec["frames"], rec["people"], f"{statistics.median(wall):.2f} ({min(wall):.2f}-{max(wall):.2f})",
               round(rec["frames"] / statistics.median(wall), 1), round(statistics.median(rec["cpu"]), 2),
               stages if key[0] != "blazepose" else "-"]
        if baseline:
            row.append(paired(res[(key[0], "baseline")]["wall"], wall) if key[0] != "blazepose" else "-")
        if blaze:
            row.append(paired(blaze["wall"], wall))
        rows.append(row)
        if baseline and key[1] == "now":
            a, b = rec["joints"], res[(key[0], "baseline")]["joints"]
            same[key[0]] = bool(a.shape == b.shape and np.array_equal(a, b))
    print(markdown_table(columns, rows), flush=True)
    if same:
        print("same 2D joints as the baseline: " + ", ".join(f"{p} {'yes' if s else 'NO'}" for p, s in same.items()))
    raw = {f"{k[0]} {k[1]}": {"wall": v["wall"], "cpu": v["cpu"], "stats": v["stats"]} for k, v in res.items()}
    write_result(args.name, [{"title": title, "columns": columns, "rows": rows}],
                 extra={"baseline_commit": baseline, "same_joints_as_baseline": same, "raw": raw},
                 notes="paired, interleaved runs; ratios > 1 mean this working tree is faster")
    return 0


if __name__ == "__main__":
    sys.exit(main())
