"""Decoding in a background thread (video.background), as ONNX Runtime runs use it: the same
frames in the same order, errors raised in the caller, and a thread that always ends."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import inference.pipeline as pipeline
from engine_media import cut_sample, frame_number, write_clip
from engine_weights import shipped_weights, untrained_weights
from inference import PipelineOptions, run
from inference.errors import Cancelled, InferenceError
from inference.models import runtime
from inference.pipeline import load_models
from inference.stages.video import background, FrameReader

needs_ort = pytest.mark.skipif(runtime.onnxruntime_module() is None, reason="onnxruntime is not installed")


def _reader_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "frame-reader"]


def _wait_gone(timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while _reader_threads() and time.monotonic() < end:
        time.sleep(0.01)
    return not _reader_threads()


def test_frames_in_order_with_every_depth(tmp_path):
    path = write_clip(tmp_path / "c.mp4", 23)
    for depth in (1, 2, 5):
        got = [i for batch in FrameReader(path).batches(4, prefetch=depth) for i, _ in batch]
        assert got == list(range(23))
    frames = [frame_number(f) for batch in FrameReader(path).batches(8, prefetch=2) for _, f in batch]
    assert frames == list(range(23))
    assert _wait_gone()


def test_error_in_the_source_reaches_the_caller_after_the_items_before_it():
    def source():
        yield from range(3)
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in background(source(), 2):
            got.append(item)
    assert got == [0, 1, 2]
    assert _wait_gone()


def test_closing_early_stops_the_thread_and_the_source():
    pulled = []

    def endless():
        i = 0
        while True:
            pulled.append(i)
            yield np.full((4, 4), i)
            i += 1

    it = background(endless(), 2)
    assert int(next(it)[0, 0]) == 0
    it.close()                               # e.g. the run was cancelled
    assert _wait_gone(2.0)
    n = len(pulled)
    time.sleep(0.2)
    assert len(pulled) == n and n <= 5       # the source is no longer read, and was read little ahead


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    return untrained_weights(tmp_path_factory.mktemp("weights"))


def _opts(untrained, **kw):
    # Untrained networks' poses are noise, but deterministic: every gate that judges them is off,
    # so that tracks exist and any frame out of order would change the result.
    return PipelineOptions(weights_dir=str(untrained), runtime="onnx", detection_threshold=0.0, min_pose_score=0.0,
                           max_people=2, detect_every=4, min_track_s=0.0, verify_people=False, **kw)


@needs_ort
def test_onnx_run_decodes_ahead_and_gives_the_same_result(untrained, tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "c.mp4", 30, w=320, h=240)
    models = load_models(_opts(untrained))
    opened = []

    class Reader(FrameReader):
        def __init__(self, *args, **kw):
            opened.append(kw.get("decoder_threads", 0))
            super().__init__(*args, **kw)

    monkeypatch.setattr(pipeline, "FrameReader", Reader)
    threaded = run(clip, _opts(untrained), models=models)
    ahead = 2 if (pipeline.os.cpu_count() or 1) > 1 else 0
    assert threaded.stats["decode_chunks_ahead"] == ahead
    assert opened == [1 if ahead else 0]           # decoding in its own thread: FFmpeg on one thread
    assert pipeline._decodes_ahead(_opts(untrained), None) == bool(ahead)   # told before the models load
    monkeypatch.setattr(pipeline, "_prefetch_depth", lambda models: 0)
    inline = run(clip, _opts(untrained), models=models)
    assert inline.stats["decode_chunks_ahead"] == 0
    if ahead:   # the chunks' detections were made in the decoding thread, the fallback's first run too
        assert threaded.stats["fallback_frames_ahead"] >= 1
    assert inline.stats["fallback_frames_ahead"] == 0
    assert threaded.stats["fallback_frames"] == inline.stats["fallback_frames"]
    assert threaded.valid.any()
    assert np.array_equal(threaded.valid, inline.valid)
    assert np.array_equal(threaded.joints2d, inline.joints2d, equal_nan=True)
    assert np.array_equal(threaded.joints3d, inline.joints3d, equal_nan=True)
    assert _wait_gone()


@needs_ort
def test_cancel_during_a_threaded_run_ends_the_decoding_thread(untrained, tmp_path, monkeypatch):
    clip = write_clip(tmp_path / "c.mp4", 40, w=320, h=240)
    monkeypatch.setattr(pipeline, "_prefetch_depth", lambda models: 2)
    cancel = threading.Event()
    seen = []

    def progress(update):
        seen.append(update["frame"])
        cancel.set()                         # after the first chunk, with chunks decoded ahead

    with pytest.raises(Cancelled):
        run(clip, _opts(untrained), progress=progress, cancel=cancel)
    assert seen and seen[0] < 40
    assert _wait_gone()


def test_single_threaded_decoder_gives_the_same_frames(tmp_path):
    path = write_clip(tmp_path / "c.mp4", 20, w=320, h=240)
    default = [(i, f) for i, f in FrameReader(path, start=3)]
    single = [(i, f) for i, f in FrameReader(path, start=3, decoder_threads=1)]
    assert [i for i, _ in single] == [i for i, _ in default] == list(range(3, 20))
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(default, single))


def test_single_threaded_decoder_keeps_the_clear_errors(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is text, not a video\n" * 50)
    with pytest.raises(InferenceError, match="cannot open|no readable frames"):
        FrameReader(p, decoder_threads=1)
    with pytest.raises(InferenceError, match="not found"):
        FrameReader(tmp_path / "missing.mp4", decoder_threads=1)


@pytest.mark.slow
@needs_ort
def test_sample_clip_same_poses_with_detections_made_ahead(tmp_path, monkeypatch):
    """Real people, shipped weights: the learned detector and the HOG fallback run in the decoding
    thread (look_ahead), and every joint comes out as when everything runs in line."""
    if shipped_weights() is None:
        pytest.skip("shipped weights not there")
    clip = cut_sample(tmp_path / "sample.mp4", 0, 70)
    if clip is None:
        pytest.skip("sample video not found")
    opts = PipelineOptions(preset="fast", runtime="onnx")
    models = load_models(opts)
    monkeypatch.setattr(pipeline, "_prefetch_depth", lambda models: 2)
    ahead = run(clip, opts, models=models)
    monkeypatch.setattr(pipeline, "_prefetch_depth", lambda models: 0)
    inline = run(clip, opts, models=models)
    assert ahead.stats["fallback_frames_ahead"] >= 2 and inline.stats["fallback_frames_ahead"] == 0
    assert ahead.stats["fallback_detections"] == inline.stats["fallback_detections"] >= 1
    assert ahead.num_people == inline.num_people >= 1
    assert np.array_equal(ahead.valid, inline.valid)
    assert np.array_equal(ahead.joints2d, inline.joints2d, equal_nan=True)
    assert _wait_gone()
