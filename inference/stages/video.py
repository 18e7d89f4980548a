"""Streaming frame reader: a video file, an image folder, or a single image.

Frames are decoded one at a time and never all held in memory; ``FrameReader`` yields
``(index, frame)`` with ``index`` the frame's position in the source (0-based) and ``frame`` a
(H, W, 3) uint8 BGR array. Corrupt frames in the middle of a video (or unreadable images in a
folder) are skipped and counted in ``reader.skipped``; their indices are simply absent, so later
frames keep their true position on the timeline.

    with FrameReader("clip.mp4", start=10, end=200) as reader:
        print(reader.info)              # VideoInfo(width, height, fps, num_frames, ...)
        for batch in reader.batches(8):
            for index, frame in batch:
                ...

Errors (missing path, not a video, no frames, bad range) raise ``InferenceError``.
"""
from __future__ import annotations

import os
import queue
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import cv2
import numpy as np

from inference.errors import InferenceError

IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".jp2", ".ppm", ".pgm"}
DEFAULT_FPS = 30.0          # used for image folders and videos that do not state a rate
MAX_CONSECUTIVE_FAILS = 32  # failed decodes in a row before a video is taken to have ended


@dataclass
class VideoInfo:
    """What a source holds. num_frames: frames in [start, end) as far as the container
    says (exact for image folders, the container's count for videos)."""

    path: str
    kind: str                  # "video" | "images"
    width: int
    height: int
    fps: float
    num_frames: int            # frames that the run will visit (estimate for videos)
    source_frames: int         # frames in the whole source (0 when the container does not say)
    start: int = 0
    warnings: list[str] = field(default_factory=list)
    rotation: int = 0          # degrees the container asks players to turn the frames by (phones
                               # store portrait video as landscape frames plus this); frames and
                               # width/height are already turned upright

    @property
    def size(self) -> tuple[int, int]:
        return self.width, self.height


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def list_images(folder: str | os.PathLike) -> list[Path]:
    """Image files of a folder (by extension), in natural order (frame2 before frame10)."""
    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    return sorted(files, key=lambda p: _natural_key(p.name))


class FrameReader:
    """Streaming reader over frames [start, end) of a video file, image folder or image.

    source: path; start/end: frame range (end exclusive, None = to the end);
    fps: override the frame rate (image folders default to DEFAULT_FPS);
    decoder_threads: the video decoder's own threads (0: FFmpeg's default, about one per core).
    One is the cheapest in CPU time (FFmpeg's frame threads cost ~15% more CPU for the same
    frames), and fast enough where decoding runs in its own thread beside the networks.
    Attributes: info (VideoInfo), skipped (corrupt frames skipped so far), read (frames yielded).
    """

    def __init__(self, source: str | os.PathLike, start: int = 0, end: int | None = None,
                 fps: float | None = None, decoder_threads: int = 0):
        self.path = Path(source)
        if start < 0:
            raise InferenceError(f"--start must be >= 0, got {start}")
        if end is not None and end <= start:
            raise InferenceError(f"--end ({end}) must be greater than --start ({start})")
        self.start, self.end = int(start), (None if end is None else int(end))
        self.skipped = 0
        self.read = 0
        self._cap = None
        self._files: list[Path] | None = None
        self._first: tuple[int, np.ndarray] | None = None
        if not self.path.exists():
            raise InferenceError(f"input not found: {self.path}")
        if self.path.is_dir() or self.path.suffix.lower() in IMAGE_EXTS:
            self._open_images(fps)
        else:
            self._open_video(fps, max(0, int(decoder_threads)))

    # ------------------------------------------------------------------ opening
    def _open_images(self, fps: float | None) -> None:
        files = list_images(self.path) if self.path.is_dir() else [self.path]
        if not files:
            raise InferenceError(f"{self.path} holds no image files (looked for {', '.join(sorted(IMAGE_EXTS))})")
        total = len(files)
        if self.start >= total:
            raise InferenceError(f"--start {self.start} is past the last frame ({total} images in {self.path})")
        stop = total if self.end is None else min(self.end, total)
        self._files = files
        self._stop = stop
        first = None
        for i in range(self.start, stop):  # the first readable image fixes the size
            img = cv2.imread(str(files[i]), cv2.IMREAD_COLOR)
            if img is not None:
                first = (i, img)
                break
            self.skipped += 1
        if first is None:
            raise InferenceError(f"{self.path}: none of the {stop - self.start} images could be read (zero frames)")
        self._first = first
        h, w = first[1].shape[:2]
        self.info = VideoInfo(str(self.path), "images", w, h, float(fps or DEFAULT_FPS), stop - self.start,
                              total, self.start)
        if fps is None and self.path.is_dir():
            self.info.warnings.append(f"image folder: frame rate unknown, assuming {DEFAULT_FPS:g} fps")

    def _open_video(self, fps: float | None, threads: int = 0) -> None:
        if not self.path.is_file():
            raise InferenceError(f"{self.path} is neither a file nor a folder")
        cap = cv2.VideoCapture(str(self.path), cv2.CAP_ANY, [cv2.CAP_PROP_N_THREADS, threads]) if threads else None
        if cap is None or not cap.isOpened():   # a backend that does not take the setting opens without it
            if cap is not None:
                cap.release()
            cap = cv2.VideoCapture(str(self.path))
        if not cap.isOpened():
            cap.release()
            raise InferenceError(f"cannot open {self.path} as a video (not a video file, or a codec that "
                                 "this OpenCV build cannot decode)")
        # Upright frames, as players and Blender show them: OpenCV's FFmpeg backend ignores the
        # container's rotation unless asked (a phone's portrait clip would arrive lying on its side).
        cap.set(cv2.CAP_PROP_ORIENTATION_AUTO, 1)
        rotation = int(round(cap.get(cv2.CAP_PROP_ORIENTATION_META) or 0)) % 360
        self._cap = cap
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        count = count if count > 0 else 0
        rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        warnings = []
        if fps is not None:
            rate = float(fps)
        elif not (np.isfinite(rate) and 0 < rate < 1000):
            warnings.append(f"{self.path.name}: the video does not state a frame rate, assuming {DEFAULT_FPS:g} fps")
            rate = DEFAULT_FPS
        if count and self.start >= count:
            cap.release()
            raise InferenceError(f"--start {self.start} is past the last frame ({count} frames in {self.path})")
        # Skip to start by decoding: seeking is unreliable for many codecs.
        for _ in range(self.start):
            if not cap.grab():
                cap.release()
                raise InferenceError(f"--start {self.start} is past the last readable frame of {self.path}")
        self._next = self.start
        first = self._read_video_frame()
        if first is None:
            cap.release()
            what = "has no readable frames" if self.start == 0 else f"has no readable frames from {self.start} on"
            raise InferenceError(f"{self.path} {what} (zero frames: empty or not a video)")
        self._first = first
        h, w = first[1].shape[:2]
        stop = count if self.end is None else (min(self.end, count) if count else self.end)
        self.info = VideoInfo(str(self.path), "video", w, h, rate, max(stop - self.start, 1) if stop else 0,
                              count, self.start, warnings, rotation)

    def _read_video_frame(self) -> tuple[int, np.ndarray] | None:
        """Next decodable frame as (index, frame), or None at the end.

        Each grab is one slot of the timeline, so a frame that fails to decode leaves its index
        unused. Failures count as skipped only once a later frame decodes: failures at the very
        end are the end of the file (containers often over-state their frame count).
        """
        cap = self._cap
        fails = 0
        while fails < MAX_CONSECUTIVE_FAILS:
            if self.end is not None and self._next >= self.end:
                return None
            ok = cap.grab()
            frame = cap.retrieve()[1] if ok else None
            self._next += 1
            if frame is None or frame.ndim != 3 or frame.shape[2] != 3:
                fails += 1
                continue
            self.skipped += fails
            return self._next - 1, frame
        return None

    # ------------------------------------------------------------------ iteration
    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        first, self._first = self._first, None
        if first is None:
            return
        self.read += 1
        yield first
        if self._files is not None:
            size = (self.info.height, self.info.width)
            for i in range(first[0] + 1, self._stop):
                img = cv2.imread(str(self._files[i]), cv2.IMREAD_COLOR)
                if img is None or img.shape[:2] != size:
                    self.skipped += 1
                    if img is not None and len(self.info.warnings) < 20:
                        self.info.warnings.append(f"{self._files[i].name}: size {img.shape[1]}x{img.shape[0]} "
                                                  f"differs from the first image's; skipped")
                    continue
                self.read += 1
                yield i, img
        else:
            while True:
                item = self._read_video_frame()
                if item is None:
                    break
                self.read += 1
                yield item
        self.close()

    def batches(self, n: int, prefetch: int = 0) -> Iterator[list[tuple[int, np.ndarray]]]:
        """Lists of up to n (index, frame) pairs. prefetch > 0 decodes that many batches ahead
        in a background thread (memory stays bounded by prefetch * n frames)."""
        if n < 1:
            raise ValueError("batch size must be >= 1")
        it = _batched(iter(self), n)
        return background(it, prefetch) if prefetch > 0 else it

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def _batched(it: Iterator, n: int) -> Iterator[list]:
    batch = []
    for item in it:
        batch.append(item)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch


_DONE = object()


def background(it: Iterable, depth: int) -> Iterator:
    """Run an iterator in a daemon thread, `depth` items ahead; exceptions re-raise in the caller.
    Closing the returned generator (``.close()``) stops the thread at its next item and waits
    for it to end."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def work():
        try:
            for item in it:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(_DONE)
        except BaseException as e:  # handed to the consumer
            q.put(e)

    t = threading.Thread(target=work, name="frame-reader", daemon=True)
    t.start()

    def gen():
        try:
            while True:
                item = q.get()
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            # Stop and wait for the thread, so that the caller may release the decoder safely.
            stop.set()
            while t.is_alive():
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
                t.join(timeout=0.05)

    return gen()
