"""Where benchmark scripts put their numbers: one JSON file per benchmark in docs/results/bench/.

    from results_io import write_result  # benchmarks/ is on sys.path when run as a script
    write_result("memory", tables=[{"title": ..., "columns": [...], "rows": [[...], ...]}],
                 notes="...")

Each file holds the exact command that made it (``sys.argv`` of the running script, relative to
the repository), the date, the machine (CPU, cores, load average, torch and GPU when present) and
the tables. ``python -m evaluation.report`` turns all of them into docs/REPORT.md. A script that
only prints markdown can be recorded as is: ``python -m evaluation.report --capture NAME -- CMD``.
"""
from __future__ import annotations

import json
import os
import resource
import shlex
import subprocess
import sys
import time

from evaluation.machine import machine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(REPO, "docs", "results", "bench")


def engine_env(threads: int) -> dict:
    """Environment for timing the engine in a subprocess: this one, with the thread counts set
    and without OMP_WAIT_POLICY=PASSIVE (what the training commands use on a shared machine: it
    makes every small network call wait for sleeping threads, about 2.5x slower)."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONPATH=REPO)
    return env


def timed(cmd: list, env: dict, cwd=REPO) -> tuple[float, float, subprocess.CompletedProcess]:
    """Run one child process: (wall seconds, CPU seconds of the child, its completed process)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime), proc


def command_line(argv: list | None = None) -> str:
    """The running command, with the script path relative to the repository."""
    argv = list(sys.argv if argv is None else argv)
    if argv and os.path.isabs(argv[0]) and argv[0].startswith(REPO):
        argv[0] = os.path.relpath(argv[0], REPO)
    return ".venv/bin/python " + " ".join(shlex.quote(a) for a in argv)


def write_result(name: str, tables: list, notes: str = "", command: str | None = None,
                 extra: dict | None = None, folder: str | None = None) -> str:
    """Write docs/results/bench/<name>.json (atomically) and return its path.

    tables: [{"title": str, "columns": [str], "rows": [[value, ...]]}]
    """
    for t in tables:
        assert all(len(r) == len(t["columns"]) for r in t["rows"]), t["title"]
    folder = folder or BENCH_DIR
    os.makedirs(folder, exist_ok=True)
    doc = {"benchmark": name, "command": command or command_line(), "date": time.strftime("%Y-%m-%d %H:%M"),
           "machine": machine(), "tables": tables, "notes": notes}
    if extra:
        doc.update(extra)
    path = os.path.join(folder, f"{name}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(doc, fh, indent=1, default=float)
    os.replace(tmp, path)
    print(f"wrote {os.path.relpath(path, REPO)}", file=sys.stderr)
    return path


def markdown_table(columns: list, rows: list) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
        return str(v)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)
