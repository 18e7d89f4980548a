"""The HOG fallback person finder on a real frame of the sample video, and its option."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.errors import InferenceError
from inference.stages.detect import HogDetector
from inference.pipeline import PipelineOptions

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sports2d_demo.mp4"


def test_hog_finds_the_person_on_the_wall():
    cap = cv2.VideoCapture(str(SAMPLE))
    ok, frame = cap.read()
    cap.release()
    assert ok
    people = HogDetector().detect([frame])[0]
    assert len(people), "nobody found"
    # frame 0: one man stands on the wall, centred near x=650, y=280 (1768x994), ~300 px tall
    best = int(np.argmin(np.hypot(people.boxes[:, 0] - 650, people.boxes[:, 1] - 280)))
    box, score = people.boxes[best], people.scores[best]
    assert np.hypot(box[0] - 650, box[1] - 280) < 80
    assert 180 < box[2] < 450 and 0.5 < score <= 1.0


def test_hog_ignores_frames_too_small_and_blank():
    hog = HogDetector()
    found = hog.detect([np.zeros((60, 40, 3), np.uint8), np.zeros((480, 640, 3), np.uint8)])
    assert [len(d) for d in found] == [0, 0]


def test_unknown_fallback_is_refused():
    with pytest.raises(InferenceError, match="fallback"):
        PipelineOptions(fallback_detector="yolo").check()


def test_fallback_runs_once_a_second_while_people_are_tracked():
    from inference.pipeline import _Stage1

    stage = _Stage1(None, PipelineOptions(fallback_detector="none", fallback_every_s=1.0), fps=30.0)
    assert stage._fallback_due(0)                      # never ran
    stage.last_fallback = 0
    assert stage._fallback_due(8)                      # nobody tracked: every chunk
    stage.tracker.tracks.append(object())              # somebody tracked
    assert not stage._fallback_due(8) and not stage._fallback_due(29)
    assert stage._fallback_due(30)


def test_fallback_interval_must_be_positive():
    with pytest.raises(InferenceError, match="fallback_every_s"):
        PipelineOptions(fallback_every_s=0).check()


def test_new_tracks_need_the_start_gate():
    from types import SimpleNamespace

    from inference.pipeline import _Stage1

    models = SimpleNamespace(pose=SimpleNamespace(manifest={"gate": {"start_score": 0.55}}, flip=False))
    opts = PipelineOptions(fallback_detector="none")
    assert _Stage1(models, opts, fps=30.0).start_score == 0.55          # the weights' own gate
    opts = PipelineOptions(fallback_detector="none", start_pose_score=0.4)
    assert _Stage1(models, opts, fps=30.0).start_score == 0.4           # the user's
    models.pose.manifest = {}
    assert _Stage1(models, PipelineOptions(fallback_detector="none"), fps=30.0).start_score == 0.2
    with pytest.raises(InferenceError, match="start_pose_score"):
        PipelineOptions(start_pose_score=1.5).check()
