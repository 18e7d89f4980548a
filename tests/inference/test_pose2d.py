"""Person boxes that cannot be cropped as they are: non-finite, degenerate, absurdly large or
far off the frame. Regression: such a box used to crash Pyramid.crop (cv2.resize 'ssize.empty')."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine_weights import untrained_weights
from inference.core import crops
from inference.stages.pose2d import MAX_BOX_FACTOR, MIN_BOX_PX, PoseEstimator, Pyramid, sanitize_boxes

torch.set_num_threads(1)

FRAME = (994, 1768)     # H, W of the frame the crash was seen on


def _frame():
    rng = np.random.default_rng(0)
    return rng.integers(0, 255, FRAME + (3,), dtype=np.uint8)


@pytest.mark.parametrize("box", [[np.nan, 497, 300.0], [884, 497, 1e30], [1e20, 497, 300.0], [884, -1e25, 300.0]])
def test_pyramid_crop_survives_absurd_matrices(box):
    out = Pyramid(_frame()).crop(crops.crop_matrix(np.array(box), 128), 128)
    assert out.shape == (128, 128, 3) and out.dtype == np.uint8


def test_pyramid_crop_of_non_finite_matrix_is_blank():
    M = np.full((2, 3), np.nan)
    assert not Pyramid(_frame()).crop(M, 64).any()
    assert not Pyramid(_frame()).crop(np.zeros((2, 3)), 64).any()     # singular


def test_pyramid_crop_unchanged_for_sane_boxes():
    # A big person (crop shrinks > 2x) still comes from the area-averaged copy: compare with a
    # direct warp of a smooth image, where both must agree closely.
    yy, xx = np.mgrid[0:FRAME[0], 0:FRAME[1]]
    img = np.dstack([(xx / 7) % 256, (yy / 5) % 256, ((xx + yy) / 9) % 256]).astype(np.uint8)
    M = crops.crop_matrix(np.array([884.0, 497.0, 700.0]), 128)
    a = Pyramid(img).crop(M, 128).astype(float)
    b = crops.warp(img, M, 128).astype(float)
    assert np.median(np.abs(a - b)) < 3


def test_sanitize_boxes():
    W, H = FRAME[1], FRAME[0]
    boxes = np.array([[884, 497, 300],            # fine
                      [np.nan, 497, 300],         # non-finite centre
                      [884, 497, np.inf],         # non-finite size
                      [884, 497, 0.0],            # degenerate
                      [884, 497, -5.0],           # negative
                      [884, 497, 2.0],            # tiny: grown to MIN_BOX_PX
                      [884, 497, 1e30],           # huge: shrunk
                      [1e20, 497, 300],           # far off the frame
                      [-400, 497, 300]],          # crop square just off the left edge
                     np.float64)
    out, ok = sanitize_boxes(boxes, (W, H))
    assert out.shape == (9, 3) and out.dtype == np.float32
    assert ok.tolist() == [True, False, False, False, False, True, True, False, False]
    assert out[0].tolist() == [884, 497, 300]
    assert out[5, 2] == MIN_BOX_PX and out[6, 2] == pytest.approx(MAX_BOX_FACTOR * W)
    assert np.isfinite(out[ok]).all()


@pytest.fixture(scope="module")
def estimator(tmp_path_factory):
    folder = untrained_weights(tmp_path_factory.mktemp("w"))
    return PoseEstimator(folder / "pose_fast.json", "cpu")


def test_estimate_skips_bad_boxes_and_keeps_order(estimator):
    frame = _frame()
    boxes = np.array([[np.nan, 497, 300], [884, 497, 300], [884, 497, 1e30], [1e20, 0, 5]], np.float32)
    before = estimator.boxes_skipped
    poses, = estimator.estimate([frame], [boxes])
    joints, scores = poses.joints, poses.scores
    assert joints.shape == (4, 16, 2) and scores.shape == (4, 16)
    assert np.isnan(joints[[0, 3]]).all() and (scores[[0, 3]] == 0).all()
    assert np.isfinite(joints[[1, 2]]).all()
    assert estimator.boxes_skipped - before == 2
    # The good box gives the same pose as when it is alone.
    alone, = estimator.estimate([frame], [boxes[1:2]])
    np.testing.assert_allclose(alone.joints[0], joints[1], atol=1e-3)


def test_batches_are_padded_to_few_sizes_without_changing_the_answers(estimator):
    from inference.stages.pose2d import padded_batch

    assert [padded_batch(n, 16) for n in (1, 4, 5, 12, 13, 16, 40)] == [4, 4, 8, 12, 16, 16, 40]
    assert padded_batch(3, 2) == 3 and padded_batch(1, 1) == 1
    rng = np.random.default_rng(0)
    patches = rng.integers(0, 255, (7, estimator.in_size, estimator.in_size, 3), np.uint8)
    before = estimator.crops_run
    together = estimator.heatmaps(patches)          # one batch of 7, padded to 8
    assert together.shape[0] == 7 and estimator.crops_run - before == 7
    alone = np.concatenate([estimator.heatmaps(patches[i:i + 1]) for i in range(7)])
    np.testing.assert_allclose(together, alone, atol=1e-4)
