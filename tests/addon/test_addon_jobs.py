"""The inference subprocess runner and the Convert task, with fake inference processes.

The fake processes are small ``python -c`` scripts that print JSON-lines progress
like ``python -m inference --progress jsonl`` and sleep, crash, or write a
(synthetic) pose file.  No torch is imported anywhere.
"""
import os
import sys
import tempfile
import time

import pytest

from blender_mocap_addon.runner import jobs
from blender_mocap_addon.errors import MocapError

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

FAKE = r'''
import json, sys, time
out, mode = sys.argv[1], sys.argv[2]
n = 6
if len(sys.argv) > 3:
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # stubborn: only kill stops it
open(out, "wb").write(b"partial") if mode == "slow" else None
for i in range(n):
    print(json.dumps({"stage": "frames", "done": i, "total": n, "message": f"frame {i}"}), flush=True)
    if mode == "crash" and i == 2:
        print("Traceback ...\nRuntimeError: model exploded", file=sys.stderr, flush=True)
        sys.exit(3)
    time.sleep(0.02)
if mode == "slow":
    time.sleep(60)
if mode == "ok":
    import posefile
    from blender_mocap_addon.core import synthetic
    posefile.write_posefile(out, **synthetic.pose_arrays(2, 15))
print("plain log line", flush=True)
print(json.dumps({"frame": n, "total": n, "fps": 9.0, "eta": 0.0, "done": True, "output": out,
                  "people": 2, "warnings": ["fake warning"]}), flush=True)
'''


def fake_argv(out, mode, *extra):
    return [sys.executable, "-c", FAKE, out, mode, *extra]


def wait_for(cond, timeout=20.0):
    t0 = time.monotonic()
    while not cond():
        if time.monotonic() - t0 > timeout:
            raise AssertionError("timed out")
        time.sleep(0.02)


def test_inference_argv():
    a = jobs.inference_argv("py", "v.mp4", "o.npz", jobs.InferenceOptions(
        preset="accurate", device="cpu", runtime="onnx", max_people=2, focal=1200.0, start=5, end=50,
        smoothing=0.5))
    assert a[:8] == ["py", "-m", "inference", "v.mp4", "-o", "o.npz", "--progress", "jsonl"]
    assert a[a.index("--preset") + 1] == "accurate" and a[a.index("--max-people") + 1] == "2"
    assert a[a.index("--start") + 1] == "5" and a[a.index("--end") + 1] == "50"
    assert a[a.index("--smoothing") + 1] == "0.5" and a[a.index("--runtime") + 1] == "onnx"
    assert jobs.InferenceOptions().runtime == "auto"
    # every option we pass is one the real CLI accepts
    import re
    cli = open(os.path.join(ROOT, "inference", "cli.py")).read()
    for opt in [x for x in a[4:] if x.startswith("-")]:
        assert re.search(r'add_argument\([^)]*"' + re.escape(opt) + '"', cli), opt
    assert "--focal" not in jobs.inference_argv("py", "v", "o", jobs.InferenceOptions())


def test_progress_parsing():
    assert jobs.event_fraction({"done": 3, "total": 12}) == 0.25
    # the schema python -m inference prints
    ev = {"frame": 30, "total": 120, "fps": 12.5, "eta": 75.0}
    assert jobs.event_fraction(ev) == 0.25
    assert jobs.event_message(ev) == "frame 30/120, 12.5 fps, 1:15 left"
    last = {"frame": 120, "total": 120, "done": True, "output": "o.npz", "people": 2, "warnings": []}
    assert jobs.event_fraction(last) == 1.0
    assert jobs.event_fraction({"fraction": 1.7}) == 1.0
    assert jobs.event_fraction({"frame": 5, "frames": 10}) == 0.5
    assert jobs.event_fraction({"stage": "load"}) is None
    assert jobs.parse_progress("hello") is None and jobs.parse_progress('{"a": 1}') == {"a": 1}


def test_project_root_detection():
    assert jobs.find_project_root() == ROOT


def test_job_runs_and_reports_progress(tmp_path):
    job = jobs.Job(fake_argv(str(tmp_path / "o.npz"), "plain"), cwd=ROOT).start()
    assert job.wait(timeout=30) == jobs.FINISHED
    assert job.fraction == 1.0 and job.stage == "frames" and job.warnings == ["fake warning"]
    assert any(ev.get("done") == 5 for ev in job.events)
    assert "plain log line" in job.log


def test_job_failure_carries_stderr(tmp_path):
    job = jobs.Job(fake_argv(str(tmp_path / "o.npz"), "crash"), cwd=ROOT).start()
    assert job.wait(timeout=30) == jobs.FAILED
    assert "exit code 3" in job.error and "model exploded" in job.error


@pytest.mark.parametrize("stubborn", [False, True])
def test_cancel_terminates_then_kills(tmp_path, stubborn):
    extra = ("stubborn",) if stubborn else ()
    job = jobs.Job(fake_argv(str(tmp_path / "o.npz"), "slow", *extra), cwd=ROOT, grace_s=0.5).start()
    wait_for(lambda: job.poll() and job.fraction > 0.5)
    t0 = time.monotonic()
    job.cancel()
    assert job.state == jobs.CANCELLED and job.proc.returncode is not None
    if stubborn and os.name == "posix":
        assert job.proc.returncode == -9               # SIGTERM ignored, so it was killed
    assert time.monotonic() - t0 < 10
    job.cancel()            # idempotent


def test_missing_interpreter_is_a_domain_error():
    with pytest.raises(MocapError, match="cannot start"):
        jobs.Job(["/nonexistent/python", "-m", "inference"]).start()


# --------------------------------------------------------------------------- Convert task (bpy)
@pytest.fixture
def bpy_scene():
    os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="mocap_bur_"))
    bpy = pytest.importorskip("bpy")
    bpy.ops.wm.read_factory_settings(use_empty=True)
    return bpy


def _snapshot(bpy):
    s = bpy.context.scene
    return (sorted(bpy.data.objects.keys()), sorted(bpy.data.actions.keys()),
            sorted(bpy.data.armatures.keys()), sorted(bpy.data.collections.keys()),
            s.frame_start, s.frame_end, s.render.fps)


@pytest.mark.blender
def test_convert_cancel_leaves_scene_unchanged(tmp_path, bpy_scene):
    from blender_mocap_addon.blender import import_posefile
    from blender_mocap_addon.ui import operators
    bpy = bpy_scene
    before = _snapshot(bpy)
    out = tmp_path / "video_mocap.npz"
    task = operators.ConvertTask(lambda tmp: fake_argv(tmp, "slow"), str(out),
                                 import_posefile.ImportOptions(), cwd=ROOT).start()
    wait_for(lambda: task.step() == jobs.RUNNING and task.job.fraction > 0.5)
    assert os.path.exists(task.tmp_path)              # the fake wrote a partial file
    task.cancel()
    assert task.job.proc.returncode is not None
    assert not os.path.exists(task.tmp_path) and not out.exists()
    assert _snapshot(bpy) == before


@pytest.mark.blender
def test_convert_crash_midway_reports_and_leaves_scene(tmp_path, bpy_scene):
    from blender_mocap_addon.blender import import_posefile
    from blender_mocap_addon.ui import operators
    bpy = bpy_scene
    before = _snapshot(bpy)
    task = operators.ConvertTask(lambda tmp: fake_argv(tmp, "crash"), str(tmp_path / "x.npz"),
                                 import_posefile.ImportOptions(), cwd=ROOT).start()
    with pytest.raises(MocapError, match="model exploded"):
        wait_for(lambda: task.step() != jobs.RUNNING)
    assert _snapshot(bpy) == before and not (tmp_path / "x.npz").exists()


@pytest.mark.blender
def test_convert_success_imports(tmp_path, bpy_scene):
    from blender_mocap_addon.blender import import_posefile
    from blender_mocap_addon.ui import operators
    bpy = bpy_scene
    out = tmp_path / "clip_mocap.npz"
    task = operators.ConvertTask(lambda tmp: fake_argv(tmp, "ok"), str(out),
                                 import_posefile.ImportOptions(), cwd=ROOT, report=lambda m: None).start()
    wait_for(lambda: task.step() != jobs.RUNNING)
    assert task.job.state == jobs.FINISHED and out.exists()
    assert task.result.armatures == ["Mocap_P1", "Mocap_P4"]
    assert all(n in bpy.data.objects for n in task.result.armatures)


def test_install_deps_command(tmp_path):
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\n")
    py = str(venv / "bin" / "python")
    a = jobs.install_deps_argv(py, ROOT, "/opt/blender/blender", install=False)
    assert a[:2] == [py, os.path.join(ROOT, "install_deps.py")]
    assert a[a.index("--blender") + 1] == "/opt/blender/blender"
    assert a[a.index("--venv") + 1] == str(venv) and a[-1] == "--dry-run"
    b = jobs.install_deps_argv("/usr/bin/python3", ROOT, None, install=True)
    assert "--no-blender" in b and "--venv" not in b and "--dry-run" not in b
    log = ["[install_deps] venv: torch==2.13.0 needed (not installed)",
           "[install_deps] venv: all 4 packages already satisfied", "[install_deps] dry run finished"]
    assert jobs.missing_from_install_log(log) == [log[0]]
