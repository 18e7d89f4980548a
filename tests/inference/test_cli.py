"""`python -m inference`: exit codes, messages, progress lines, Ctrl-C, pose file on disk."""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

import posefile
from engine_media import cut_sample, REPO, synthetic_frame, write_clip
from engine_weights import shipped_weights, untrained_weights
from inference.cli import main


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    return untrained_weights(tmp_path_factory.mktemp("weights"))


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _frames_folder(tmp_path, n: int):
    """A folder of n small synthetic PNG frames."""
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), synthetic_frame(i, 160, 120))
    return folder


def _cli(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "inference", *map(str, args)], cwd=REPO, env=_env(),
                          capture_output=True, text=True, timeout=timeout)


def test_missing_file(tmp_path, capsys):
    out = tmp_path / "o.npz"
    assert main([str(tmp_path / "nope.mp4"), "-o", str(out), "--progress", "none"]) == 1
    assert "not found" in capsys.readouterr().err
    assert not out.exists()


def test_not_a_video(tmp_path, capsys):
    bad = tmp_path / "movie.mp4"
    bad.write_bytes(os.urandom(4096))
    assert main([str(bad), "-o", str(tmp_path / "o.npz")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and ("cannot open" in err or "no readable frames" in err)


def test_zero_frames(tmp_path, capsys):
    p = tmp_path / "empty.avi"
    cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48)).release()
    assert main([str(p), "-o", str(tmp_path / "o.npz")]) == 1
    err = capsys.readouterr().err
    assert "zero frames" in err or "cannot open" in err


def test_empty_folder(tmp_path, capsys):
    assert main([str(tmp_path), "-o", str(tmp_path / "o.npz")]) == 1
    assert "no image files" in capsys.readouterr().err


def test_usage_errors(tmp_path, capsys):
    assert main([str(tmp_path), "-o", str(tmp_path / "o.npz"), "--preset", "huge"]) == 2
    assert main([str(tmp_path)]) == 2                       # -o is required
    assert main([str(tmp_path), "-o", str(tmp_path / "no" / "dir" / "o.npz")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_accurate_preset_message(tmp_path, untrained, capsys):
    clip = write_clip(tmp_path / "c.mp4", 3)
    assert main([str(clip), "-o", str(tmp_path / "o.npz"), "--preset", "accurate", "--weights", str(untrained)]) == 1
    err = capsys.readouterr().err
    assert "accurate" in err and "GPU" in err and not (tmp_path / "o.npz").exists()


def test_image_folder_in_process(tmp_path, untrained, capsys):
    folder = _frames_folder(tmp_path, 4)
    out = tmp_path / "o.npz"
    assert main([str(folder), "-o", str(out), "--weights", str(untrained), "--progress", "none"]) == 0
    data = posefile.load(out)
    assert data.num_frames == 4 and data.image_size == (160, 120)
    assert "wrote" in capsys.readouterr().err


def test_jsonl_progress_subprocess(tmp_path, untrained):
    clip = write_clip(tmp_path / "c.mp4", 10, w=160, h=120)
    out = tmp_path / "o.npz"
    r = _cli(clip, "-o", out, "--weights", untrained, "--progress", "jsonl", "--max-people", 1, "--smoothing", 0)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines and all({"frame", "total", "fps", "eta"} <= set(d) for d in lines)
    assert lines[-1]["done"] is True and lines[-1]["frame"] == lines[-1]["total"] == 10
    assert posefile.load(out).num_frames == 10


def test_interrupt_writes_nothing(tmp_path, untrained):
    clip = write_clip(tmp_path / "long.mp4", 1500, w=160, h=120)   # long enough to outlast the signal on a fast machine (300 frames finished first once)
    out = tmp_path / "o.npz"
    proc = subprocess.Popen([sys.executable, "-m", "inference", str(clip), "-o", str(out), "--weights",
                             str(untrained), "--progress", "jsonl", "--max-people", "1"], cwd=REPO, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()          # the run has started
        assert json.loads(first)["frame"] > 0
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "nothing was written" in err
    assert not out.exists() and not list(tmp_path.glob(".posefile-*"))


def test_end_to_end_on_sample_clip(tmp_path):
    if shipped_weights() is None:
        pytest.skip("trained weights (weights/pose_fast.json, detector_fast.json, lifter.json) not there yet")
    clip = cut_sample(tmp_path / "sample.mp4", 100, 10)
    if clip is None:
        pytest.skip("sample video not found")
    out = tmp_path / "sample.npz"
    r = _cli(clip, "-o", out, "--progress", "none", "--max-people", 4, timeout=300)
    assert r.returncode == 0, r.stderr
    data = posefile.load(out)
    # Whether people are found depends on the weights' quality (test_pipeline checks that);
    # here: a valid pose file of the right length and size, sha256 of the weights recorded.
    assert data.num_frames == 10 and data.image_size == (1768, 994)
    assert set(data.meta["weights_sha256"]) == {"pose", "detector", "lifter"}
    assert np.isfinite(data.joints3d[data.valid]).all()


def test_help(capsys):
    assert main(["--help"]) == 0
    assert "--max-people" in capsys.readouterr().out


def test_progress_bar_line():
    import io

    from inference.cli import Bar

    buf = io.StringIO()
    bar = Bar(buf, width=10)
    bar({"frame": 5, "total": 10, "fps": 12.5, "eta": 65.0})
    bar.close()
    text = buf.getvalue()
    assert text.startswith("\r[#####.....] 5/10 frames") and "12.5 fps" in text and "ETA 1:05" in text


def test_initial_boxes_parsing(capsys):
    from inference.cli import parse_boxes

    assert parse_boxes("320,240,200") == [(320.0, 240.0, 200.0)]
    assert parse_boxes(" 10.5, 20 ,30 ; 1e2,2e2,3e2;") == [(10.5, 20.0, 30.0), (100.0, 200.0, 300.0)]
    for bad in ("", ";", "1,2", "1,2,3,4", "a,b,c", "1,2,nan", "1,inf,3", "1,2,0", "1,2,-5", "1,2,3;4,5"):
        with pytest.raises(argparse.ArgumentTypeError):
            parse_boxes(bad)
    # Through the CLI: a usage error (exit 2) that names the option and the bad box.
    assert main(["x.mp4", "-o", "o.npz", "--initial-boxes", "1,2"]) == 2
    err = capsys.readouterr().err
    assert "--initial-boxes" in err and "'1,2' is not CX,CY,SIZE" in err


def test_initial_boxes_reach_the_run(tmp_path, untrained, capsys):
    folder = _frames_folder(tmp_path, 4)
    out = tmp_path / "o.npz"
    assert main([str(folder), "-o", str(out), "--weights", str(untrained), "--progress", "none",
                 "--initial-boxes", "80,60,50;40,30,20"]) == 0
    data = posefile.load(out)
    assert data.meta["options"]["initial_boxes"] == [[80.0, 60.0, 50.0], [40.0, 30.0, 20.0]]


def test_detection_threshold_reaches_the_run_and_bad_values_fail(tmp_path, untrained, capsys):
    folder = _frames_folder(tmp_path, 3)
    out = tmp_path / "o.npz"
    assert main([str(folder), "-o", str(out), "--weights", str(untrained), "--progress", "none",
                 "--detection-threshold", "0.07"]) == 0
    assert posefile.load(out).meta["options"]["detection_threshold"] == 0.07
    assert main([str(folder), "-o", str(tmp_path / "b.npz"), "--weights", str(untrained), "--progress", "none",
                 "--detection-threshold", "-0.5"]) == 1
    assert "--detection-threshold must be >= 0" in capsys.readouterr().err
    assert not (tmp_path / "b.npz").exists()


def test_flip_test_option_reaches_the_run(tmp_path, untrained):
    folder = _frames_folder(tmp_path, 3)
    for flag, want in ((["--flip-test"], True), ([], False), (["--no-flip-test"], False)):
        out = tmp_path / f"o{len(flag)}{want}.npz"
        assert main([str(folder), "-o", str(out), "--weights", str(untrained), "--progress", "none", *flag]) == 0
        assert posefile.load(out).meta["flip_test"] is want
