"""Person-free footage yields no track (evaluation.person_free, shipped weights, real video)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from data.paths import data_path
from engine_weights import shipped_weights
from evaluation.person_free import cut_person, sample_region_clip

HAVE_LSP = (Path(data_path("lsp")) / "joints.npz").exists()


def test_sample_region_clip_is_a_real_video(tmp_path):
    out = sample_region_clip(tmp_path / "region.mp4", frames=5)
    cap = cv2.VideoCapture(str(out))
    n, shape = 0, None
    while True:
        ok, img = cap.read()
        if not ok:
            break
        n, shape = n + 1, img.shape
    cap.release()
    assert n == 5 and shape == (540, 960, 3)


def test_cut_person_fills_only_the_person_box():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (200, 300, 3), np.uint8)
    joints = np.array([[100, 60], [120, 140]] * 8, np.float32)
    vis = np.ones(16, bool)
    out, box, share = cut_person(img, joints, vis)
    assert out.shape == img.shape
    changed = (out != img).any(-1)
    ys, xs = np.nonzero(changed)
    half = 0.5 * 1.6 * box[2]
    assert xs.min() >= box[0] - half - 1 and xs.max() <= box[0] + half + 1
    assert changed[int(box[1]), int(box[0])]
    x0, x1 = max(box[0] - half, 0), min(box[0] + half, 300)
    y0, y1 = max(box[1] - half, 0), min(box[1] + half, 200)
    assert share == pytest.approx((x1 - x0) * (y1 - y0) / (300 * 200), abs=0.02)


def test_a_cut_over_the_whole_photo_changes_nothing_so_it_is_skipped():
    """OpenCV's inpainting has nothing to fill from when the cut covers the whole photo and
    returns it unchanged, person and all: lsp_clips leaves such photos out (MAX_CUT_SHARE)."""
    from evaluation.person_free import MAX_CUT_SHARE

    img = np.random.default_rng(1).integers(0, 255, (60, 40, 3), np.uint8)
    joints = np.array([[20, 10], [20, 50]] * 8, np.float32)
    out, _, share = cut_person(img, joints, np.ones(16, bool))
    assert share >= MAX_CUT_SHARE and (out == img).all()


@pytest.mark.slow
@pytest.mark.skipif(shipped_weights() is None or not HAVE_LSP, reason="needs shipped weights and LSP data")
def test_person_free_clips_yield_no_track():
    from evaluation.person_free import check
    from inference.pipeline import PipelineOptions

    res = check(PipelineOptions(), lsp_clips_n=3, frames=30, sample_frames=120)
    # the sample's empty corner, im09512 and im09849 (im09637 is skipped: the cut is the whole photo)
    assert res["clips"] == 3
    assert res["tracks"] == 0, res["per_clip"]
