"""Headless batch on 2D keypoint files (issue 30 in the batch runner): OpenPose folders, COCO
results and tables, given with --keypoints or recognised from --input, lifted by the engine in a
subprocess and imported; bad input gives one clear line and exit status 1, nothing half-written.
Runs the real batch CLI under the bpy wheel and the real engine (shipped lifter)."""
import json
import os
import subprocess
import sys

import pytest

import posefile
from keypoint_files import coco_results, H, openpose_folder, table_rows, W, write_csv

pytestmark = pytest.mark.blender
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SIZE = f"{W}x{H}"


def batch(tmp_path, *args):
    pytest.importorskip("bpy")
    env = dict(os.environ, BLENDER_USER_RESOURCES=str(tmp_path / "bur"), OMP_WAIT_POLICY="PASSIVE",
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "blender_mocap_addon.runner.batch", *map(str, args)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _blend_contents(path):
    """(armature names, timeline marker names) of a saved .blend, read in a fresh process."""
    code = ("import bpy, json; bpy.ops.wm.open_mainfile(filepath=%r); "
            "print(json.dumps([sorted(o.name for o in bpy.data.objects if o.type == 'ARMATURE'), "
            "sorted(m.name for m in bpy.context.scene.timeline_markers)]))" % str(path))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, BLENDER_USER_RESOURCES=str(path.parent / "bur_read")))
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_openpose_folder_to_blend_with_interpolated_markers(tmp_path):
    folder = openpose_folder(tmp_path / "walk", F=24)
    out = tmp_path / "out"
    # one frame's file stands for its folder, as in the panel
    r = batch(tmp_path, "--keypoints", sorted(folder.iterdir())[3], "--output", out,
              "--fps", 25, "--image-size", SIZE, "--format", "blend,bvh")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "1 converted, 0 failed" in r.stdout
    d = posefile.load(out / "walk.npz")
    assert d.num_people == 2 and d.fps == 25.0 and d.meta["source_kind"] == "keypoints"
    assert d.filled.sum() == 3                          # person 1 away on frames 8..10, filled
    arms, markers = _blend_contents(out / "walk.blend")
    assert len(arms) == 2 and len(list(out.glob("walk_*.bvh"))) == 2
    pid = int(d.person_ids[d.filled.any(1)][0])
    assert f"P{pid} interpolated 9-11" in markers       # scene frames start at 1
    assert not list(out.glob("*.part.npz"))


def test_folder_of_keypoint_files_and_input_detection(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    coco_results(src / "coco_take.json", F=20)
    write_csv(src / "table_take.csv", table_rows(F=20))
    (src / "notes.txt").write_text("not an input")
    out = tmp_path / "out"
    r = batch(tmp_path, "--keypoints", src, "--output", out, "--fps", 30, "--image-size", SIZE,
              "--format", "blend")
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 converted, 0 failed" in r.stdout
    assert {p.name for p in out.iterdir()} >= {"coco_take.npz", "coco_take.blend", "table_take.npz",
                                                "table_take.blend"}
    assert posefile.load(out / "coco_take.npz").meta["keypoints"]["format"] == "coco"
    # --input given a .json is keypoints too (not a video to decode)
    r = batch(tmp_path, "--input", src / "coco_take.json", "--output", tmp_path / "out2",
              "--fps", 30, "--image-size", SIZE, "--keypoint-format", "coco")
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "out2" / "coco_take.blend").is_file()


def _one_line_failure(r, out):
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 1 and len(lines) == 1 and lines[0].startswith("batch:"), r.stderr
    assert not out.exists() or not [p for p in out.iterdir() if p.suffix in (".npz", ".blend")]
    return lines[0]


def test_bad_keypoint_input(tmp_path):
    out = tmp_path / "out"
    folder = openpose_folder(tmp_path / "op", F=12)
    # options that cannot go with keypoints, or do not parse: refused before anything runs
    assert "--start / --end" in _one_line_failure(
        batch(tmp_path, "--keypoints", folder, "--output", out, "--start", 3), out)
    assert "WIDTHxHEIGHT" in _one_line_failure(
        batch(tmp_path, "--keypoints", folder, "--output", out, "--image-size", "640by480"), out)
    assert "video not found" in _one_line_failure(
        batch(tmp_path, "--keypoints", folder, "--output", out, "--video", tmp_path / "nope.mp4"), out)
    (tmp_path / "two").mkdir()
    coco_results(tmp_path / "two" / "a.json")
    coco_results(tmp_path / "two" / "b.json")
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert "one clip" in _one_line_failure(
        batch(tmp_path, "--keypoints", tmp_path / "two", "--output", out, "--video", tmp_path / "clip.mp4"), out)
    assert "go with --keypoints" in _one_line_failure(
        batch(tmp_path, "--pose-file", tmp_path / "x.npz", "--output", out, "--fps", 25), out)
    # nothing to convert
    (tmp_path / "empty").mkdir()
    assert "no inputs found" in _one_line_failure(
        batch(tmp_path, "--keypoints", tmp_path / "empty", "--output", out), out)
    # inputs the engine refuses: its reason, on one line
    assert "keypoint file not found" in _one_line_failure(
        batch(tmp_path, "--keypoints", tmp_path / "missing.json", "--output", out), out)
    (tmp_path / "junk.json").write_text('{"hello": 1}')
    err = _one_line_failure(batch(tmp_path, "--keypoints", tmp_path / "junk.json", "--output", out,
                                  "--fps", 25, "--image-size", SIZE), out)
    assert "neither OpenPose keypoints" in err
    err = _one_line_failure(batch(tmp_path, "--keypoints", folder, "--output", out), out)
    assert "--image-size" in err and "--fps" in err      # the file does not say its size and rate


def test_paths_passed_to_pool_workers_are_absolute(tmp_path, monkeypatch):
    """--workers / --ray run each input from the checkout: path options given relative to the
    caller's folder are made absolute before they are passed on."""
    from blender_mocap_addon.runner.batch import absolute_paths
    (tmp_path / "edits.json").write_text("[]")
    monkeypatch.chdir(tmp_path)
    got = absolute_paths(["--keypoints", "in", "--edits", "edits.json", "--video=edits.json", "--fps", "25",
                          "--python", "nope"])
    assert got == ["--keypoints", "in", "--edits", str(tmp_path / "edits.json"),
                   f"--video={tmp_path / 'edits.json'}", "--fps", "25",
                   "--python", "nope"]          # a path that is not there is left for its own error
