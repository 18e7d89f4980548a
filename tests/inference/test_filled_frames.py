"""The pose file says which frames the engine interpolated (``filled``), for a keypoint run and a
video run alike: the frames filled are exactly the short dropouts, and their count is the
run's ``filled_person_frames``."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import posefile
from engine_media import write_clip
from engine_weights import untrained_weights
from inference import PipelineOptions, run
from inference.pipeline import KeypointOptions, load_models, run_keypoints
from keypoint_files import H, openpose_folder, W

torch.set_num_threads(1)


def test_keypoint_run_marks_the_frames_it_filled(tmp_path):
    # person 1 is away on frames 8..10 (openpose_folder): 3 frames bridged
    res = run_keypoints(openpose_folder(tmp_path / "op", F=30), PipelineOptions(fps=25.0),
                        KeypointOptions(image_size=(W, H)))
    assert res.filled is not None and res.filled.shape == res.valid.shape
    rows = [p for p in range(res.num_people) if res.filled[p].any()]
    assert len(rows) == 1 and np.flatnonzero(res.filled[rows[0]]).tolist() == [8, 9, 10]
    assert res.meta["stats"]["filled_person_frames"] == 3
    back = posefile.load(res.save(tmp_path / "k.npz"))
    np.testing.assert_array_equal(back.filled, res.filled)


def test_no_gap_filling_marks_nothing(tmp_path):
    res = run_keypoints(openpose_folder(tmp_path / "op", F=30), PipelineOptions(fps=25.0, max_gap_s=0.0),
                        KeypointOptions(image_size=(W, H)))
    assert res.filled is not None and not res.filled.any()
    assert res.valid.sum() == 57                  # the 3 frames away stay away


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    return untrained_weights(tmp_path_factory.mktemp("weights"))


def test_video_run_writes_filled(untrained, tmp_path):
    clip = write_clip(tmp_path / "c.mp4", 12, w=320, h=240)
    opts = PipelineOptions(weights_dir=str(untrained), detection_threshold=0.0, min_pose_score=0.0,
                           max_people=2, detect_every=4, min_track_s=0.0, verify_people=False)
    res = run(clip, opts, models=load_models(opts))
    assert res.filled is not None and res.filled.dtype == bool and res.filled.shape == res.valid.shape
    assert not (res.filled & ~res.valid).any()
    assert int(res.filled.sum()) == res.meta["stats"]["filled_person_frames"]
    back = posefile.load(res.save(tmp_path / "v.npz"))
    np.testing.assert_array_equal(back.filled, res.filled)
