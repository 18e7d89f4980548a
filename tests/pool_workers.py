"""Small real workers for tests/test_batch_pool.py (named as "pool_workers:NAME").

Each follows the batch_pool worker contract: ``fn(job, workdir) -> list of files in workdir``.
"""
from __future__ import annotations

import json
import os

import numpy as np


def probe_video(job, workdir):
    """Decode every frame of job.input with the project's reader; write <name>.json with the
    frame count and the mean intensity. A corrupt video raises InferenceError."""
    from inference.stages.video import FrameReader
    n, total = 0, 0.0
    with FrameReader(job.input) as reader:
        for _, frame in reader:
            n += 1
            total += float(np.mean(frame))
    out = os.path.join(workdir, job.name + ".json")
    with open(out, "w") as fh:
        json.dump({"frames": n, "mean": total / max(n, 1), "pid": os.getpid(),
                   "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}, fh)
    return [out]


def crash_or_probe(job, workdir):
    """Kill the whole process (as a crash in C code would) for jobs marked "crash"."""
    if job.options.get("crash"):
        os._exit(3)
    return probe_video(job, workdir)


def flaky(job, workdir):
    """Fail the first attempt of each job (a file beside the output remembers it), then succeed;
    a half-written output from the failed attempt must never show up."""
    seen = os.path.join(job.options["state_dir"], job.name + ".seen")
    part = os.path.join(workdir, job.name + ".txt")
    with open(part, "w") as fh:
        fh.write("half")
    if not os.path.exists(seen):
        open(seen, "w").close()
        raise RuntimeError("transient failure")
    with open(part, "w") as fh:
        fh.write("complete")
    return [part]
