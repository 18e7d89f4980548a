"""Headless batch entry: exit status and outputs (bpy wheel; Blender 3.4 if installed).

Good inputs are synthetic pose files (``--pose-file``) so no trained weights are needed.
"""
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import posefile
from blender_mocap_addon.core import synthetic

pytestmark = pytest.mark.blender
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BATCH = os.path.join(ROOT, "blender_mocap_addon", "batch.py")


def _env(tmp_path):
    env = dict(os.environ)
    env["BLENDER_USER_RESOURCES"] = str(tmp_path / "bur")
    env["OMP_WAIT_POLICY"] = "PASSIVE"
    return env


def run_wheel(tmp_path, *args):
    pytest.importorskip("bpy")
    return subprocess.run([sys.executable, "-m", "blender_mocap_addon.runner.batch", *args], cwd=ROOT,
                          env=_env(tmp_path), capture_output=True, text=True, timeout=300)


def good_pose(path, P=2, F=20):
    arr = synthetic.pose_arrays(P, F, seed=11)
    posefile.write_posefile(str(path), **arr)
    return arr


def test_batch_good_pose_file_exits_zero(tmp_path):
    good_pose(tmp_path / "take1.npz")
    out = tmp_path / "out"
    r = run_wheel(tmp_path, "--pose-file", str(tmp_path / "take1.npz"), "--output", str(out),
                  "--format", "blend,bvh")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "take1.blend").stat().st_size > 0
    assert sorted(p.name for p in out.glob("*.bvh")) == ["take1_Mocap_P1.bvh", "take1_Mocap_P4.bvh"]
    assert "1 converted, 0 failed" in r.stdout


def test_batch_continues_past_bad_input_and_fails(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    good_pose(d / "a_good.npz", P=1)
    (d / "b_bad.npz").write_bytes(b"this is not an npz")
    newer = dict(np.load(str(d / "a_good.npz")))
    newer["format_version"] = np.array(7)
    np.savez(str(d / "c_newer.npz"), **newer)
    out = tmp_path / "out"
    r = run_wheel(tmp_path, "--pose-file", str(d), "--output", str(out), "--format", "bvh")
    assert r.returncode == 1
    assert (out / "a_good.bvh").exists()
    assert "b_bad.npz" in r.stderr and "format_version" in r.stderr
    assert "1 converted, 2 failed" in r.stdout


def test_batch_missing_video_exits_nonzero(tmp_path):
    r = run_wheel(tmp_path, "--input", str(tmp_path / "nope.mp4"), "--output", str(tmp_path / "o"))
    assert r.returncode == 1 and "video not found" in r.stderr


def test_batch_rejects_unknown_format(tmp_path, capsys):
    pytest.importorskip("bpy")
    from blender_mocap_addon.runner import batch
    with pytest.raises(SystemExit) as ex:
        batch.parse_args(["--pose-file", "x.npz", "--output", str(tmp_path), "--format", "obj"])
    assert ex.value.code != 0 and "unknown format" in capsys.readouterr().err
    assert batch.parse_args(["--input", "v.mp4", "--output", "o", "--format", "BVH, glb"]).formats == ["bvh", "glb"]


CHECK_34 = r'''
import bpy, sys, json
import numpy as np
sys.path.insert(0, {root!r})
from blender_mocap_addon.core import axes, skeleton as sk
import posefile
bpy.ops.wm.open_mainfile(filepath={blend!r})
d = posefile.load({pose!r})
worst = 0.0
for p, pid in enumerate(d.person_ids):
    ob = bpy.data.objects["Mocap_P%d" % pid]
    for f in (0, 9, 19):
        bpy.context.scene.frame_set(f + 1)
        truth = axes.cam_to_blender(d.joints3d[p, f].astype(np.float64))
        for b in sk.BONES:
            pb = ob.pose.bones[b.name]
            for attr, j in (("head", b.head), ("tail", b.tail)):
                v = np.array((ob.matrix_world @ getattr(pb, attr))[:])
                worst = max(worst, float(np.linalg.norm(v - truth[posefile.JOINT_NAMES.index(j)])))
print("WORST_M", worst)
'''


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("blender") is None, reason="no blender executable")
def test_batch_under_installed_blender(tmp_path):
    """`blender -b --python batch.py` (e.g. Debian's Blender 3.4: legacy Action.fcurves path)."""
    good_pose(tmp_path / "take.npz")
    out = tmp_path / "out"
    cmd = ["blender", "-b", "--factory-startup", "--python-exit-code", "1", "--python", BATCH, "--",
           "--pose-file", str(tmp_path / "take.npz"), "--output", str(out), "--format", "blend,bvh,fbx"]
    r = subprocess.run(cmd, env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    assert (out / "take.blend").exists() and (out / "take.fbx").exists()
    check = CHECK_34.format(root=ROOT, blend=str(out / "take.blend"), pose=str(tmp_path / "take.npz"))
    r2 = subprocess.run(["blender", "-b", "--factory-startup", "--python-exit-code", "1",
                         "--python-expr", check], env=_env(tmp_path), capture_output=True, text=True,
                        timeout=300)
    assert r2.returncode == 0, r2.stderr[-2000:]
    worst = float(r2.stdout.split("WORST_M")[1].split()[0])
    assert worst < 1e-3
    bad = subprocess.run(cmd[:cmd.index("--pose-file")] + ["--pose-file", str(tmp_path / "nope.npz"),
                                                             "--output", str(out)],
                         env=_env(tmp_path), capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1 and "no such file" in bad.stderr
