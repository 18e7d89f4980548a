"""Small real media for the engine's tests: synthetic clips written with OpenCV, and clips cut
from the shared sample video."""
from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
SAMPLE_CANDIDATES = [REPO / "examples" / "sports2d_demo.mp4",
                     REPO.parent / "shared" / "data" / "video" / "sports2d_demo.mp4"]


def sample_video() -> Path | None:
    for p in SAMPLE_CANDIDATES:
        if p.is_file():
            return p
    return None


def synthetic_frame(i: int, w: int = 160, h: int = 120) -> np.ndarray:
    """A frame whose mean blue value encodes i (robust to lossy compression)."""
    f = np.zeros((h, w, 3), np.uint8)
    f[..., 0] = (i * 9) % 250
    cv2.circle(f, (10 + (i * 5) % (w - 20), h // 2), 8, (255, 255, 255), -1)
    return f


def frame_number(frame: np.ndarray) -> int:
    return int(round(np.median(frame[..., 0]) / 9.0))


def write_clip(path, n: int, w: int = 160, h: int = 120, fps: float = 25.0, fourcc: str = "mp4v") -> Path:
    path = Path(path)
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert vw.isOpened(), f"cannot write {path} with {fourcc}"
    for i in range(n):
        vw.write(synthetic_frame(i, w, h))
    vw.release()
    return path


def set_mp4_rotation(path, degrees: int) -> None:
    """Write a display rotation (90, 180 or 270 degrees, as phones store portrait video) into the
    first track header ('tkhd' matrix) of an .mp4 in place; the frames stay as they are."""
    import struct

    c, s = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    one = 1 << 16                                            # 16.16 fixed point
    data = bytearray(Path(path).read_bytes())
    k = data.find(b"tkhd")
    assert k > 0, f"no track header in {path}"
    version = data[k + 4]
    off = k + 4 + 4 + (20 if version == 0 else 32) + 16      # version/flags, times..duration, reserved..volume
    data[off:off + 36] = struct.pack(">9i", c * one, s * one, 0, -s * one, c * one, 0, 0, 0, 1 << 30)
    Path(path).write_bytes(bytes(data))


def corrupt_mjpeg_frames(path, frames: list[int]) -> None:
    """Damage the JPEG data of the given frames of an MJPG .avi in place."""
    data = bytearray(Path(path).read_bytes())
    soi = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8 and data[i + 2] == 0xFF]
    for k in frames:
        s = soi[k]
        data[s:s + 4] = b"\x00\x00\x00\x00"          # no start-of-image marker
        data[s + 100:s + 600] = bytes(500)
    Path(path).write_bytes(bytes(data))


def cut_sample(path, start: int, n: int, scale: float = 1.0) -> Path | None:
    """Copy frames [start, start+n) of the sample video into a new mp4 (optionally resized)."""
    src = sample_video()
    if src is None:
        return None
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    for _ in range(start):
        cap.grab()
    vw = None
    for _ in range(n):
        ok, f = cap.read()
        if not ok:
            break
        if scale != 1.0:
            f = cv2.resize(f, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if vw is None:
            vw = cv2.VideoWriter(os.fspath(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (f.shape[1], f.shape[0]))
        vw.write(f)
    cap.release()
    if vw is not None:
        vw.release()
    return Path(path)


def sample_frames(indices=(20, 100, 150)) -> list[np.ndarray]:
    """Frames of the sample video at these indices (BGR), read in order."""
    cap = cv2.VideoCapture(str(sample_video()))
    frames, i = [], 0
    while len(frames) < len(indices):
        ok, frame = cap.read()
        assert ok, "the sample video ended early"
        if i in indices:
            frames.append(frame)
        i += 1
    cap.release()
    return frames


def sample_person_crops(runtime: str = "onnx", side: int = 128, per_box: int = 3, seed: int = 0):
    """Crops (N, side, side, 3) of the people in three sample frames and their image->crop
    affines (N, 2, 3): boxes from the shipped detector, each jittered per_box times."""
    from inference.core import crops
    from inference.stages.detect import PersonDetector
    from inference.stages.pose2d import Pyramid

    det = PersonDetector(REPO / "weights" / "detector_fast.json", "cpu", runtime=runtime)
    rng = np.random.default_rng(seed)
    frames = sample_frames()
    patches, mats = [], []
    for frame, people in zip(frames, det.detect(frames, threshold=0.05)):
        pyr = Pyramid(frame)
        for box in people.boxes:
            for _ in range(per_box):
                M = crops.crop_matrix(box + rng.normal(0, 0.05, 3) * box[2], side)
                patches.append(pyr.crop(M, side))
                mats.append(M)
    return np.stack(patches), np.stack(mats)
