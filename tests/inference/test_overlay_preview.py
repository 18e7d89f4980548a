"""Overlay video (inference.viz.overlay) and pictures (inference.viz.preview) on real clips and pose files."""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

import posefile
from blender_mocap_addon.core import synthetic
from engine_media import write_clip
from engine_weights import untrained_weights
from inference.viz import overlay, preview
from inference.errors import InferenceError
from posefile.skeleton import JOINT_INDEX as INDEX

torch.set_num_threads(1)


def _pose_for_clip(F: int, w: int, h: int, start: int = 0):
    arrays = synthetic.pose_arrays(P=2, F=F, seed=3, image_size=(w, h))
    d = posefile.PoseData(**{k: arrays[k] for k in ("joints3d", "joints2d", "scores", "valid", "person_ids",
                                                      "fps", "image_size", "camera_K")},
                          meta={"frame_start": start})
    # put the synthetic people well inside this small frame
    j2 = np.zeros_like(d.joints2d)
    for p in range(2):
        j2[p] = np.stack([np.full(16, 40.0 + 80 * p), 20 + 5.0 * np.arange(16)], -1)[None] + \
            np.arange(F)[:, None, None] * np.array([1.0, 0.0])
    d.joints2d = j2.astype(np.float32)
    d.valid[1, : F // 2] = False
    return d


def test_overlay_draws_each_present_person_in_its_colour(tmp_path):
    F, w, h = 10, 200, 120
    clip = write_clip(tmp_path / "c.mp4", 14, w=w, h=h)
    pose = _pose_for_clip(F, w, h, start=2)
    out = tmp_path / "o.mp4"
    st = overlay.write_overlay(clip, pose, out)
    assert st.frames == F and (st.width, st.height) == (w, h)
    assert st.drawn == int(pose.valid.sum())
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == F
    src = cv2.VideoCapture(str(clip))
    for _ in range(2):                                  # pose frame 0 is video frame 2
        src.read()
    for f in range(F):
        ok, got = cap.read()
        _, ref = src.read()
        assert ok
        for p in range(2):
            x, y = pose.joints2d[p, f, INDEX["r_hip"]]
            patch = got[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].astype(int)
            refp = ref[int(y) - 1:int(y) + 2, int(x) - 1:int(x) + 2].astype(int)
            changed = np.abs(patch - refp).mean() > 40
            assert changed == bool(pose.valid[p, f]), (f, p)
    assert not list(tmp_path.glob(".*part*"))


def test_overlay_downscales_and_reports_bad_input(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", 6, w=320, h=240)
    pose = _pose_for_clip(6, 320, 240)
    st = overlay.write_overlay(clip, pose, tmp_path / "small.mp4", max_width=160)
    assert (st.width, st.height) == (160, 120) and st.frames == 6
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00" * 1000)
    with pytest.raises(InferenceError):
        overlay.write_overlay(bad, pose, tmp_path / "x.mp4")
    assert not (tmp_path / "x.mp4").exists()


def test_preview_grid_and_trajectory_plot(tmp_path):
    arrays = synthetic.pose_arrays(P=2, F=60, seed=1, gaps=True)
    png = tmp_path / "grid.png"
    frames = preview.preview_grid(arrays["joints3d"], arrays["valid"], arrays["person_ids"], str(png), n=4, cols=2, dpi=60)
    assert len(frames) == 4 and frames[0] == 0 and frames[-1] == 59
    img = cv2.imread(str(png))
    assert img.shape[0] > 300 and img.shape[1] > 300 and img.std() > 5
    rng = np.random.default_rng(0)
    clean = arrays["joints3d"][0]
    valid = arrays["valid"][0]
    noisy = clean + rng.normal(0, 0.01, clean.shape).astype(np.float32)
    from inference.core.filters import smooth
    sm = smooth(noisy, 30.0, 1.0, 2.0, valid=valid)
    jit = preview.trajectory_plot(noisy, sm, valid, 30.0, str(tmp_path / "traj.png"))
    assert jit["smoothed"] < 0.5 * jit["raw"]
    assert cv2.imread(str(tmp_path / "traj.png")).shape[1] > 600
    with pytest.raises(ValueError, match="nobody"):
        preview.preview_grid(arrays["joints3d"], np.zeros_like(arrays["valid"]), arrays["person_ids"], str(png))
