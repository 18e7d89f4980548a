"""Scale-out runner (blender_mocap_addon.runner.batch_pool): local process pool and a local Ray cluster.

Inputs are real: short clips cut from the sample video with OpenCV, plus a corrupt "video"
(random bytes named .mp4). Workers are the small real ones in tests/pool_workers.py (they decode
every frame with inference.stages.video.FrameReader) and, for the Ray + CLI test, the batch CLI itself
on pose files. The Ray tests start their own throwaway cluster (`ray start --head`, 2 CPUs) and
stop it by its process id.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from blender_mocap_addon.runner import batch_pool as bp
from engine_media import cut_sample, write_clip

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)
SYS_PATH = [REPO, TESTS]


def _clips(folder: Path, n: int = 3, frames: int = 8) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k in range(n):
        p = cut_sample(folder / f"clip{k}.mp4", start=20 * k, n=frames, scale=0.1)
        if p is None:                        # no sample video: synthetic clips still decode for real
            p = write_clip(folder / f"clip{k}.mp4", frames)
        out.append(p)
    bad = folder / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    out.append(bad)
    return out


def _jobs(paths, out_dir, **options) -> list:
    return [bp.Job(name=p.stem, input=str(p), output_dir=str(out_dir), options=dict(options)) for p in paths]


def _check_outputs(summary, out_dir: Path, frames: int):
    ok = {r.name: r for r in summary.results if r.ok}
    for name in ok:
        data = json.loads((out_dir / f"{name}.json").read_text())
        assert data["frames"] == frames and data["mean"] > 1.0
        marker = json.loads((out_dir / bp.DONE_DIR / f"{name}.json").read_text())
        assert marker["outputs"] == [{"file": f"{name}.json", "bytes": (out_dir / f"{name}.json").stat().st_size}]
    leftovers = [p.name for p in out_dir.iterdir() if p.name.endswith(bp.PART_SUFFIX)]
    assert leftovers == []


# ----------------------------------------------------------------------------- local pool

def test_local_pool_converts_reports_corrupt_and_resumes(tmp_path):
    paths = _clips(tmp_path / "in")
    out = tmp_path / "out"
    seen = []
    s = bp.run_many(_jobs(paths, out), "pool_workers:probe_video", workers=2, retries=1,
                    sys_path=SYS_PATH, on_result=lambda r, d, t: seen.append((r.name, d, t)))
    assert [r.name for r in s.results] == ["clip0", "clip1", "clip2", "broken"]
    assert [r.name for r in s.converted] == ["clip0", "clip1", "clip2"]
    (bad,) = s.failed
    assert bad.name == "broken" and bad.attempts == 2            # first try + 1 retry
    assert "InferenceError" in bad.error and "broken.mp4" in bad.error
    assert not (out / "broken.json").exists() and not (out / bp.DONE_DIR / "broken.json").exists()
    assert len(seen) == 4 and sorted(d for _, d, _ in seen) == [1, 2, 3, 4]
    assert "local process pool (2 workers)" in s.backend and not s.ok
    text = s.format()
    assert "3 converted, 0 skipped (done before), 1 failed" in text and "FAIL" in text
    _check_outputs(s, out, frames=8)
    pids = {json.loads((out / f"clip{k}.json").read_text())["pid"] for k in range(3)}
    assert os.getpid() not in pids                                # ran in pool processes

    # resume: done jobs are skipped without a task, the corrupt one is tried again
    s2 = bp.run_many(_jobs(paths, out), "pool_workers:probe_video", workers=2, retries=0, sys_path=SYS_PATH)
    assert [r.name for r in s2.skipped] == ["clip0", "clip1", "clip2"]
    assert [(r.name, r.attempts) for r in s2.failed] == [("broken", 1)]

    # a changed input (new size and mtime) is redone; a damaged output is redone too
    shutil.copy(paths[0], paths[1])
    (out / "clip2.json").write_text("{}")
    s3 = bp.run_many(_jobs(paths[:3], out), "pool_workers:probe_video", workers=1, sys_path=SYS_PATH)
    assert [r.name for r in s3.skipped] == ["clip0"]
    assert [r.name for r in s3.converted] == ["clip1", "clip2"] and s3.ok
    _check_outputs(s3, out, frames=8)


def test_retry_and_atomic_outputs(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    src = tmp_path / "a.txt"
    src.write_text("x")
    out = tmp_path / "out"
    job = bp.Job(name="a", input=str(src), output_dir=str(out), options={"state_dir": str(state)})
    s = bp.run_many([job], "pool_workers:flaky", workers=1, retries=0, sys_path=SYS_PATH)
    assert not s.ok and s.failed[0].error == "RuntimeError: transient failure"
    assert not (out / "a.txt").exists()                # the half-written file never reached out/
    assert [p for p in out.iterdir() if p.name != bp.DONE_DIR] == []
    shutil.rmtree(state)
    state.mkdir()
    s = bp.run_many([job], "pool_workers:flaky", workers=1, retries=1, sys_path=SYS_PATH)
    assert s.ok and s.results[0].attempts == 2
    assert (out / "a.txt").read_text() == "complete"


def test_crashed_worker_process_costs_one_input(tmp_path):
    paths = _clips(tmp_path / "in", n=2, frames=4)[:2]
    out = tmp_path / "out"
    jobs = _jobs(paths, out) + [bp.Job(name="crash", input=str(paths[0]), output_dir=str(out),
                                       options={"crash": True})]
    s = bp.run_many(jobs, "pool_workers:crash_or_probe", workers=2, retries=1, sys_path=SYS_PATH)
    assert [r.name for r in s.converted] == ["clip0", "clip1"]
    (bad,) = s.failed
    assert bad.name == "crash" and "worker process died" in bad.error and bad.attempts == 2
    assert all(r.attempts == 1 for r in s.converted)     # jobs lost beside the crash are not charged
    # without retries too, the crash costs only its own input
    out2 = tmp_path / "out2"
    jobs = _jobs(paths, out2) + [bp.Job(name="crash", input=str(paths[0]), output_dir=str(out2),
                                        options={"crash": True})]
    s = bp.run_many(jobs, "pool_workers:crash_or_probe", workers=2, retries=0, sys_path=SYS_PATH)
    assert [r.name for r in s.converted] == ["clip0", "clip1"]
    assert [(r.name, r.attempts) for r in s.failed] == [("crash", 1)]


def test_stale_temp_folders_are_removed_and_bad_jobs_refused(tmp_path):
    out = tmp_path / "out"
    stale = out / ".clip0.abc123.part"
    stale.mkdir(parents=True)
    (stale / "clip0.json").write_text("half")
    paths = _clips(tmp_path / "in", n=1, frames=3)[:1]
    s = bp.run_many(_jobs(paths, out), "pool_workers:probe_video", workers=1, sys_path=SYS_PATH)
    assert s.ok and not stale.exists()
    with pytest.raises(bp.PoolError, match="same outputs"):
        bp.run_many(_jobs(paths + paths, out), "pool_workers:probe_video", sys_path=SYS_PATH)
    with pytest.raises(bp.PoolError, match="module:function"):
        bp.run_many(_jobs(paths, out), "pool_workers.probe_video", sys_path=SYS_PATH)


def test_passthrough_argv_keeps_only_per_input_options():
    argv = ["--input", "vids", "--output=out", "--format", "blend,bvh", "--ray", "auto", "--workers=4",
            "--preset", "fast", "--no-resume", "--retries", "2", "--smoothing", "1.5"]
    assert bp.passthrough_argv(argv) == ["--format", "blend,bvh", "--preset", "fast", "--smoothing", "1.5"]


def test_ray_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)           # as if ray were not installed
    paths = _clips(tmp_path / "in", n=1, frames=2)[:1]
    with pytest.raises(bp.PoolError, match="needs the 'ray' package"):
        bp.run_many(_jobs(paths, tmp_path / "out"), "pool_workers:probe_video", ray="auto", sys_path=SYS_PATH)


# ----------------------------------------------------------------------------- Ray

@pytest.fixture(scope="module")
def ray_cluster():
    """A throwaway one-node Ray cluster started with `ray start --head`; its address. It declares
    2 CPUs and 1 GPU: Ray's GPU is a logical resource, so the GPU path of run_many (each task asks
    for one GPU; Ray sets CUDA_VISIBLE_DEVICES for it) runs here too; torch finds no CUDA device
    in the tasks and inference stays on the CPU."""
    pytest.importorskip("ray")
    ray_bin = os.path.join(os.path.dirname(sys.executable), "ray")
    temp = tempfile.mkdtemp(prefix="ray", dir="/tmp")      # short: Unix socket paths are limited
    env = dict(os.environ, RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0")
    log = open(os.path.join(temp, "start.log"), "w+")
    proc = subprocess.Popen([ray_bin, "start", "--head", "--num-cpus=2", "--num-gpus=1", "--port=0",
                             "--include-dashboard=false", f"--temp-dir={temp}", "--block"],
                            stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = None
    t0 = time.time()
    while time.time() - t0 < 120 and proc.poll() is None:
        log.seek(0)
        m = re.search(r"ray start --address='([^']+)'", log.read())
        if m:
            address = m.group(1)
            break
        time.sleep(0.5)
    try:
        if address is None:
            log.seek(0)
            pytest.fail("ray start did not come up:\n" + log.read()[-3000:])
        yield address
    finally:
        proc.send_signal(signal.SIGTERM)         # `ray start --block` stops what it started
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(temp, ignore_errors=True)


@pytest.mark.slow
def test_ray_cluster_runs_one_task_per_video(ray_cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    paths = _clips(tmp_path / "in", n=3, frames=10)
    out = tmp_path / "out"
    s = bp.run_many(_jobs(paths, out), "pool_workers:probe_video", ray=ray_cluster, retries=1,
                    sys_path=SYS_PATH)
    assert "ray (cluster at" in s.backend and "1 node(s), 2 CPU, 1 GPU, 1 GPU per task" in s.backend
    assert [r.name for r in s.converted] == ["clip0", "clip1", "clip2"]
    (bad,) = s.failed
    assert bad.name == "broken" and bad.attempts == 2 and "InferenceError" in bad.error
    _check_outputs(s, out, frames=10)
    done = [json.loads((out / f"clip{k}.json").read_text()) for k in range(3)]
    assert os.getpid() not in {d["pid"] for d in done}
    assert {d["cuda_visible_devices"] for d in done} == {"0"}      # each task got the GPU
    s2 = bp.run_many(_jobs(paths, out), "pool_workers:probe_video", ray=ray_cluster, retries=0,
                     sys_path=SYS_PATH)
    assert len(s2.skipped) == 3 and [r.name for r in s2.failed] == ["broken"]


@pytest.mark.slow
@pytest.mark.blender
def test_batch_cli_with_ray_on_pose_files(ray_cluster, tmp_path):
    """The real CLI: `python -m blender_mocap_addon.runner.batch --pose-file DIR --ray ADDRESS`, with one
    corrupt pose file; then a second run resumes (skips everything that was done)."""
    import posefile
    from blender_mocap_addon.core import synthetic

    src = tmp_path / "poses"
    src.mkdir()
    for k in range(2):
        arrays = synthetic.pose_arrays(P=1, F=12, seed=k)
        posefile.write_posefile(src / f"take{k}.npz", **arrays)
    (src / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip" * 10)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "blender_mocap_addon.runner.batch", "--pose-file", str(src), "--output", str(out),
           "--format", "blend,bvh", "--ray", ray_cluster]
    env = dict(os.environ, RAY_AUTH_MODE="disabled")
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert p.returncode == 1, p.stdout + p.stderr                  # one input failed
    assert "2 converted, 0 skipped (done before), 1 failed" in p.stdout, p.stdout + p.stderr
    assert "FAIL" in p.stdout and "corrupt" in p.stdout
    for k in range(2):
        assert (out / f"take{k}.blend").stat().st_size > 10_000
        assert (out / f"take{k}.bvh").read_text().startswith("HIERARCHY")
    assert not (out / "corrupt.blend").exists()
    summary = json.loads((out / ".batch_summary.json").read_text())
    assert [r["ok"] for r in summary["results"]] == [False, True, True]   # sorted: corrupt, take0, take1
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert "0 converted, 2 skipped (done before), 1 failed" in p.stdout, p.stdout + p.stderr


@pytest.mark.slow
@pytest.mark.blender
def test_batch_cli_with_ray_on_videos(ray_cluster, tmp_path):
    """The whole chain per task: `batch --input DIR --ray ADDRESS` on two short clips of the sample
    video and a corrupt one; real inference (the shipped networks, given through MOCAP_WEIGHTS,
    which run_many forwards to the tasks: untrained ones find a person in some clips and not in
    others, and a clip without people is rightly a failed conversion) and real Blender."""
    import posefile
    from engine_weights import shipped_weights

    weights = shipped_weights()
    if weights is None:
        pytest.skip("no shipped weights")
    src = tmp_path / "in"
    paths = _clips(src, n=2, frames=12)
    for p in paths[:2]:                       # bigger frames than the other tests' thumbnails, and
        # 0.4 s: a track must show 0.2 s of person-like poses before it is written (verify.py)
        cut_sample(p, start=40 * int(p.stem[-1]), n=12, scale=0.5)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "blender_mocap_addon.runner.batch", "--input", str(src), "--output", str(out),
           "--format", "blend", "--max-people", "1", "--ray", ray_cluster]
    env = dict(os.environ, RAY_AUTH_MODE="disabled", MOCAP_WEIGHTS=str(weights))
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert "2 converted, 0 skipped (done before), 1 failed" in p.stdout, p.stdout + p.stderr
    assert p.returncode == 1
    for k in range(2):
        d = posefile.load(out / f"clip{k}.npz")
        assert d.num_frames == 12 and d.meta["source"] == f"clip{k}.mp4"
        assert (out / f"clip{k}.blend").stat().st_size > 10_000
    assert "broken" in p.stdout and not (out / "broken.npz").exists() and not (out / "broken.blend").exists()
