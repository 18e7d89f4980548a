"""tools/demo.py end to end on the first frames of the sample video (slow: inference + Blender).

Networks of the real architectures, untrained (the files and their plumbing are under test here,
not accuracy; tests/test_pipeline.py judges the trained weights)."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import cv2
import pytest

from engine_media import sample_video
from engine_weights import untrained_weights

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow
@pytest.mark.blender
def test_demo_writes_every_file(tmp_path):
    video = sample_video()
    if video is None:
        pytest.skip("no sample video")
    w = untrained_weights(tmp_path / "w")
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "tools/demo.py", "--weights", str(w), "--out", str(out), "--end", "16",
                        "--max-people", "2", "--overlay-width", "480"], cwd=REPO, capture_output=True, text=True,
                       timeout=900, env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    info = json.loads((out / "sample_demo.json").read_text())
    assert info["frames"] == 16 and info["people"] >= 1
    cap = cv2.VideoCapture(str(out / "sample_overlay.mp4"))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == 16 and int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)) == 480
    for name in ("sample_preview.png", "sample_trajectories.png", "sample_card.jpg"):
        img = cv2.imread(str(out / name))
        assert img is not None and img.std() > 5, name
    assert (out / "sample.blend").stat().st_size > 10_000
    bvh = sorted(out.glob("sample*.bvh"))
    assert bvh and all(b.read_text().startswith("HIERARCHY") for b in bvh)
    assert set(info["files"]) >= {"sample.npz", "sample_overlay.mp4", "sample.blend"}
