"""Streaming frame reader: real OpenCV decoding of small clips written here."""
from __future__ import annotations

import tracemalloc

import cv2
import numpy as np
import pytest

from inference.errors import InferenceError
from inference.stages.video import FrameReader
from engine_media import corrupt_mjpeg_frames, frame_number, set_mp4_rotation, synthetic_frame, write_clip


def test_reads_all_frames_in_order(tmp_path):
    path = write_clip(tmp_path / "c.mp4", 12)
    with FrameReader(path) as r:
        assert r.info.kind == "video"
        assert (r.info.width, r.info.height) == (160, 120)
        assert r.info.fps == pytest.approx(25.0)
        assert r.info.num_frames == 12
        items = list(r)
    assert [i for i, _ in items] == list(range(12))
    assert [frame_number(f) for _, f in items] == list(range(12))
    assert all(f.shape == (120, 160, 3) and f.dtype == np.uint8 for _, f in items)


@pytest.mark.parametrize("degrees", [90, 180, 270])
def test_rotated_phone_video_is_read_upright(tmp_path, degrees):
    """A clip whose container says "turn by 90 degrees" (how phones store portrait video) comes out
    turned, as players and Blender show it, with the size to match and the rotation recorded."""
    path = write_clip(tmp_path / "c.mp4", 6)
    plain = next(iter(FrameReader(path)))[1]
    set_mp4_rotation(path, degrees)
    with FrameReader(path) as r:
        assert r.info.rotation == degrees
        assert (r.info.width, r.info.height) == ((120, 160) if degrees in (90, 270) else (160, 120))
        items = list(r)
    assert [frame_number(f) for _, f in items] == list(range(6))
    turn = {90: cv2.ROTATE_90_CLOCKWISE, 180: cv2.ROTATE_180, 270: cv2.ROTATE_90_COUNTERCLOCKWISE}[degrees]
    assert np.abs(items[0][1].astype(int) - cv2.rotate(plain, turn)).mean() < 2.0


def test_start_end_and_batches(tmp_path):
    path = write_clip(tmp_path / "c.mp4", 20)
    r = FrameReader(path, start=5, end=16)
    assert r.info.num_frames == 11
    batches = list(r.batches(4))
    assert [len(b) for b in batches] == [4, 4, 3]
    idx = [i for b in batches for i, _ in b]
    assert idx == list(range(5, 16))
    assert [frame_number(f) for b in batches for _, f in b] == idx


def test_prefetch_gives_same_frames(tmp_path):
    path = write_clip(tmp_path / "c.mp4", 15)
    a = [(i, f.copy()) for b in FrameReader(path).batches(4) for i, f in b]
    b = [(i, f) for bt in FrameReader(path).batches(4, prefetch=2) for i, f in bt]
    assert [i for i, _ in a] == [i for i, _ in b]
    assert all(np.array_equal(x, y) for (_, x), (_, y) in zip(a, b))


def test_corrupt_frames_are_skipped_and_counted(tmp_path):
    path = write_clip(tmp_path / "c.avi", 20, fourcc="MJPG")
    corrupt_mjpeg_frames(path, [7, 12])
    r = FrameReader(path)
    items = list(r)
    idx = [i for i, _ in items]
    assert r.skipped == 2
    assert idx == [i for i in range(20) if i not in (7, 12)]
    # The frames that remain keep their place on the timeline.
    assert [frame_number(f) for _, f in items] == idx


def test_memory_stays_flat(tmp_path):
    # 150 frames of 320x240 are 35 MB decoded; streaming holds about one.
    path = write_clip(tmp_path / "long.mp4", 150, w=320, h=240)
    tracemalloc.start()
    n = 0
    for batch in FrameReader(path).batches(4, prefetch=2):
        n += len(batch)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 150
    assert peak < 8 * 1024 * 1024, peak


def test_missing_file(tmp_path):
    with pytest.raises(InferenceError, match="not found"):
        FrameReader(tmp_path / "nope.mp4")


def test_not_a_video(tmp_path):
    p = tmp_path / "notes.mp4"
    p.write_text("this is text, not a video\n" * 50)
    with pytest.raises(InferenceError, match="cannot open|no readable frames"):
        FrameReader(p)


def test_zero_frames(tmp_path):
    p = tmp_path / "empty.avi"
    vw = cv2.VideoWriter(str(p), cv2.VideoWriter_fourcc(*"MJPG"), 25, (64, 48))
    vw.release()
    assert p.exists()
    with pytest.raises(InferenceError, match="cannot open|zero frames"):
        FrameReader(p)


def test_start_past_end(tmp_path):
    path = write_clip(tmp_path / "c.mp4", 5)
    with pytest.raises(InferenceError, match="past the last"):
        FrameReader(path, start=9)
    with pytest.raises(InferenceError, match="greater than"):
        FrameReader(path, start=3, end=2)


def test_image_folder(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"frame{i}.png"), synthetic_frame(i))
    (folder / "notes.txt").write_text("ignored")
    (folder / "frame5.png").write_bytes(b"broken png")   # unreadable: skipped, counted
    r = FrameReader(folder, fps=12.5)
    assert r.info.kind == "images" and r.info.fps == 12.5 and r.info.num_frames == 12
    items = list(r)
    # Natural order: frame2 before frame10.
    assert [i for i, _ in items] == [i for i in range(12) if i != 5]
    assert [frame_number(f) for _, f in items] == [i for i in range(12) if i != 5]
    assert r.skipped == 1


def test_empty_folder(tmp_path):
    (tmp_path / "x.txt").write_text("no images")
    with pytest.raises(InferenceError, match="no image files"):
        FrameReader(tmp_path)
