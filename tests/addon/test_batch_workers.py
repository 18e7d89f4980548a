"""The batch CLI's local process pool (``--workers N``) under the bpy wheel.

Pool processes are started with multiprocessing's spawn, which re-imports the parent's
``__main__`` module in each of them with the parent's sys.path. Under the bpy wheel that path
puts Blender's scripts/modules first once bpy is loaded, so a main module that imports bpy at
module level kills every pool process on start ("No module named '_bpy'"). The pool tests in
test_batch_pool.py run pytest as the main module and never hit this; these run the real CLI.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

import posefile
from blender_mocap_addon.core import synthetic

pytestmark = pytest.mark.blender
TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(TESTS)


def _env(tmp_path) -> dict:
    return dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "bur"), OMP_NUM_THREADS="1",
                OMP_WAIT_POLICY="PASSIVE")


def test_batch_cli_workers_2_on_pose_files(tmp_path, bpy_factory):
    """`python -m blender_mocap_addon.runner.batch --pose-file DIR --workers 2`: two pose files,
    two .blend files, each with the armatures of its file's people."""
    bpy = bpy_factory
    src = tmp_path / "poses"
    src.mkdir()
    for k, people in enumerate((1, 2)):
        posefile.write_posefile(src / f"take{k}.npz", **synthetic.pose_arrays(P=people, F=12, seed=k))
    out = tmp_path / "out"
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "blender_mocap_addon.runner.batch", "--pose-file", str(src),
                        "--output", str(out), "--format", "blend", "--workers", "2"],
                       cwd=REPO, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    assert "2 converted, 0 skipped (done before), 0 failed" in p.stdout, p.stdout + p.stderr
    assert "local process pool (2 workers)" in p.stdout
    summary = json.loads((out / ".batch_summary.json").read_text())
    assert [(r["name"], r["ok"], r["attempts"]) for r in summary["results"]] == [("take0", True, 1),
                                                                               ("take1", True, 1)]
    for k, people in enumerate((1, 2)):
        bpy.ops.wm.open_mainfile(filepath=str(out / f"take{k}.blend"))
        rigs = [o for o in bpy.data.objects if o.type == 'ARMATURE']
        assert len(rigs) == people, [o.name for o in bpy.data.objects]
        assert all(len(r.data.bones) > 10 and r.animation_data and r.animation_data.action for r in rigs)
    assert seconds < 120


def test_pool_processes_dying_on_start_give_one_line(tmp_path):
    """A main script that imports bpy at module level (what batch.py did) and runs the pool: its
    processes die on start; the run ends with the real error in one line, not 'worker process
    died' for every job."""
    pytest.importorskip("bpy")
    script = tmp_path / "main_with_bpy.py"
    script.write_text(
        "import sys\n"
        "import bpy  # noqa: F401  (the wheel puts Blender's scripts/modules first on sys.path)\n"
        "from blender_mocap_addon.runner import batch_pool as bp\n"
        "if __name__ == '__main__':\n"
        "    jobs = [bp.Job(name=f'j{k}', input=__file__, output_dir=sys.argv[1]) for k in range(2)]\n"
        "    try:\n"
        "        print(bp.run_many(jobs, 'pool_workers:flaky', workers=2).format())\n"
        "    except bp.PoolError as ex:\n"
        "        print(f'batch: {ex}', file=sys.stderr)\n"
        "        sys.exit(1)\n")
    env = _env(tmp_path)
    env["PYTHONPATH"] = os.pathsep.join([REPO, TESTS])
    p = subprocess.run([sys.executable, str(script), str(tmp_path / "out")], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 1, p.stdout + p.stderr
    last = p.stderr.strip().splitlines()[-1]
    assert last == "batch: pool worker processes die on start: ModuleNotFoundError: No module named '_bpy'", \
        p.stderr[-3000:]
    assert "worker process died" not in p.stdout + p.stderr


def test_batch_module_imports_no_blender():
    """Importing the batch CLI's module (as each pool process does) loads no bpy; its list of
    formats matches the exporter's."""
    code = ("import sys; from blender_mocap_addon.runner import batch; "
            "assert 'bpy' not in sys.modules, 'bpy imported'; print(','.join(batch.FORMATS))")
    p = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    pytest.importorskip("bpy")
    from blender_mocap_addon.blender import export
    assert p.stdout.strip().split(",") == ["blend", *export.FORMATS]
