"""The synthetic-video check of stage 1 (evaluation/eval_video.py)."""
import numpy as np
import pytest

from evaluation.eval_video import _match, camera_path, FRAME_H, FRAME_W, occluder_boxes, render_clip
from inference.stages.video import FrameReader


def test_camera_path_keeps_the_person_in_frame_at_the_stated_sizes():
    rng = np.random.default_rng(0)
    box = np.array([200.0, 150.0, 80.0])                     # cx, cy, side in the photo
    for _ in range(20):
        mats = camera_path(box, 30, rng)
        scale = mats[:, 0, 0]
        assert np.allclose(mats[:, 0, 0], mats[:, 1, 1]) and (np.abs(mats[:, 0, 1]) == 0).all()
        assert (scale * box[2] >= 120 - 1e-6).all() and (scale * box[2] <= 360 + 1e-6).all()
        centre = mats[:, :, :2] @ box[:2] + mats[:, :, 2]
        assert (centre[:, 0] > 0.3 * FRAME_W - 4).all() and (centre[:, 0] < 0.7 * FRAME_W + 4).all()
        assert (centre[:, 1] > 0.4 * FRAME_H - 4).all() and (centre[:, 1] < 0.6 * FRAME_H + 4).all()
        # smooth: no jumps between frames beyond the pan speed plus shake
        assert np.abs(np.diff(centre, axis=0)).max() < 0.1 * FRAME_W


def test_rendered_clip_decodes_with_the_engine_reader(tmp_path):
    image = np.random.default_rng(1).integers(0, 255, (120, 160, 3), np.uint8)
    mats = camera_path(np.array([80.0, 60.0, 50.0]), 6, np.random.default_rng(2))
    render_clip(image, mats, tmp_path / "c.mp4")
    reader = FrameReader(tmp_path / "c.mp4")
    frames = [f for _, f in reader]
    reader.close()
    assert len(frames) == 6 and frames[0].shape == (FRAME_H, FRAME_W, 3)


def test_match_takes_the_nearest_pose_within_a_torso_and_counts_the_rest():
    gt = np.zeros((16, 2)) + [100.0, 100.0]
    vis = np.ones(16, bool)
    near, far = gt + 5.0, gt + 300.0
    pred = np.stack([far, near, far])
    assert _match(pred, np.array([True, True, True]), gt, vis, torso=50.0) == (1, 2)
    assert _match(pred, np.array([True, False, True]), gt, vis, torso=50.0) == (-1, 2)
    assert _match(pred, np.zeros(3, bool), gt, vis, torso=50.0) == (-1, 0)


def test_occluder_hides_the_person_on_the_hidden_frames_only(tmp_path):
    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (200, 200, 3), np.uint8)
    joints = rng.uniform(60, 140, (16, 2))
    vis = np.ones(16, bool)
    mats = camera_path(np.array([100.0, 100.0, 80.0]), 8, rng)
    gt = np.einsum("fij,kj->fki", mats[:, :, :2], joints) + mats[:, None, :, 2]
    hidden = np.zeros(8, bool)
    hidden[3:5] = True
    boxes = occluder_boxes(gt, vis, hidden)
    assert np.isnan(boxes[~hidden]).all() and np.isfinite(boxes[hidden]).all()
    assert (boxes[hidden, :2] <= gt[hidden].min(1)).all() and (boxes[hidden, 2:] >= gt[hidden].max(1)).all()
    render_clip(image, mats, tmp_path / "c.mp4", boxes)
    reader = FrameReader(tmp_path / "c.mp4")
    frames = [f for _, f in reader]
    reader.close()
    for f in range(8):
        px = np.round(gt[f]).astype(int)
        values = frames[f][px[:, 1], px[:, 0]].astype(float)
        grey = np.abs(values - 128).max(-1) < 12          # mp4 compression moves it a little
        assert grey.all() if hidden[f] else grey.mean() < 0.5


@pytest.mark.parametrize("argv, message", [
    (["--crop-shrink", "2"], "crop_shrink_per_s must be between 0 and 1"),
    (["--stitch-gap", "-1"], "stitch_gap_s must be >= 0"),
    (["--clips", "0"], "--clips and --frames must be >= 1"),
])
def test_bad_option_values_are_one_usage_error(argv, message, capsys):
    """Bad values stop before any network loads, with argparse's one-line error (exit 2), not a
    traceback."""
    from evaluation.eval_video import main

    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
