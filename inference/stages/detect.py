"""Finding people: a centre heatmap and a box per person on the whole (letterboxed) frame.

Detector contract (the one ``train_detector`` trains for):

* input: the frame letterboxed into a 256 x 256 square: scaled by s = 256 / max(W, H), placed
  at the top-left, the rest black; BGR -> ``preprocess.to_tensor``.
* output: 4 maps at 64 x 64 (stride 4):
  channel 0: pelvis-centre heatmap (logits; sigmoid -> 0..1; each peak is a person),
  channels 1, 2: (box centre - peak cell) / 4, in heatmap pixels,
  channel 3: log(box size in heatmap pixels), box size = longer side of the joints' box
  (crops.py's definition).

This is the centre-point formulation of CenterNet (Zhou, Wang and Krähenbühl, "Objects as
Points", 2019), with the pelvis as the centre so the peak sits on the body.
"""
from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from inference.core import codec
from inference.models.runtime import load_network
from inference.models.weights import WeightsError
from inference.stages.types import Detections

INPUT_SIZE = 256
STRIDE = 4


def letterbox(frame: np.ndarray, size: int = INPUT_SIZE) -> tuple[np.ndarray, tuple[float, float]]:
    """frame (H, W, 3) uint8 -> (canvas (size, size, 3) uint8, (sx, sy)).

    The frame is resized to (round(W*s), round(H*s)) with s = size / max(W, H) and placed at the
    top-left of a black square; (sx, sy) are the exact per-axis scales, so a frame pixel centre
    x maps to (x + 0.5) * sx - 0.5 on the canvas.
    """
    H, W = frame.shape[:2]
    s = size / max(W, H)
    w, h = max(1, min(size, round(W * s))), max(1, min(size, round(H * s)))
    small = frame
    # Halve first while far too big (fast, area-averaged), then one area resize.
    while small.shape[1] >= 4 * w and small.shape[0] >= 4 * h:
        small = cv2.resize(small, (small.shape[1] // 2, small.shape[0] // 2), interpolation=cv2.INTER_AREA)
    small = cv2.resize(small, (w, h), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((size, size, 3), np.uint8)
    canvas[:h, :w] = small
    return canvas, (w / W, h / H)


def _local_maxima(heat: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) -> bool mask of cells that are the maximum of their (2r+1)^2 window."""
    k = 2 * radius + 1
    padded = np.pad(heat, radius, mode="constant", constant_values=-np.inf)
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k))
    return heat >= windows.max(axis=(-2, -1))


def decode_people(maps: np.ndarray, threshold: float = 0.3, max_people: int = 20, nms_radius: int = 2,
                  scale: float | tuple[float, float] = 1.0) -> list[tuple[np.ndarray, float]]:
    """Detector maps (4, 64, 64) -> list of (box (cx, cy, size) float32 in frame pixels, score),
    best first.

    threshold: least centre score (after sigmoid); max_people: most people kept; nms_radius:
    a peak must be the maximum of its (2r+1)^2 window (heatmap cells); scale: the letterbox
    scale (sx, sy) (or one s) from frame to canvas pixels.
    """
    maps = np.asarray(maps, np.float32)
    if maps.ndim != 3 or maps.shape[0] != 4:
        raise ValueError(f"detector maps must be (4, H, W) (heat, dx, dy, log size), got {maps.shape}")
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    heat = 1.0 / (1.0 + np.exp(-maps[0].astype(np.float64)))
    peaks = _local_maxima(heat, nms_radius) & (heat >= threshold)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-heat[ys, xs], kind="stable")[:max(0, int(max_people))]
    out = []
    for i in order:
        y, x = ys[i], xs[i]
        centre_hm = np.array([x + STRIDE * maps[1, y, x], y + STRIDE * maps[2, y, x]])
        centre = codec.from_heatmap(centre_hm, STRIDE)                    # canvas pixels
        size = float(np.exp(np.clip(maps[3, y, x], -5.0, 8.0))) * STRIDE  # canvas pixels
        box = np.array([(centre[0] + 0.5) / sx - 0.5, (centre[1] + 0.5) / sy - 0.5,
                        size / (0.5 * (sx + sy))], np.float32)
        out.append((box, float(heat[y, x])))
    return out


class PersonDetector:
    """Finds people in whole frames. weights: manifest name ('detector_fast') or path (kind
    'detector'); runtime: 'auto' | 'torch' | 'onnx' (models/runtime.py)."""

    def __init__(self, weights="detector_fast", device: str = "auto", threshold: float | None = None,
                 max_people: int = 20, nms_radius: int = 2, batch_size: int = 8, runtime: str = "auto",
                 threads: int = 0):
        self.model, self.manifest = load_network(weights, "detector", device, runtime, threads)
        self.device = self.model.device
        cfg = self.model.cfg
        if cfg.out_channels != 4 or cfg.in_size != INPUT_SIZE:
            raise WeightsError(f"detector weights must map {INPUT_SIZE} px to 4 maps, "
                               f"got in_size {cfg.in_size}, {cfg.out_channels} maps")
        # None: the threshold chosen at export (best F1 on held-out mosaics), else 0.3
        if threshold is None:
            threshold = float(self.manifest.get("threshold", 0.3))
        self.threshold, self.max_people, self.nms_radius = threshold, max_people, nms_radius
        self.batch_size = batch_size
        self.frames_run = 0

    def detect(self, frames: Sequence[np.ndarray], threshold: float | None = None,
               max_people: int | None = None) -> list[Detections]:
        """F frames (H, W, 3) uint8 BGR -> per frame its Detections (best first).
        threshold, max_people: this call's settings (None: the detector's own), so that a run
        never changes a detector that other runs share."""
        threshold = self.threshold if threshold is None else threshold
        max_people = self.max_people if max_people is None else max_people
        out = []
        for i in range(0, len(frames), self.batch_size):
            chunk = frames[i:i + self.batch_size]
            boxed = [letterbox(f) for f in chunk]
            maps = self.model(np.stack([b[0] for b in boxed]))
            for m, (_, scale) in zip(maps, boxed):
                found = decode_people(m, threshold, max_people, self.nms_radius, scale)
                out.append(Detections([b for b, _ in found], [s for _, s in found]) if found
                           else Detections.empty())
            self.frames_run += len(chunk)
        return out


class HogDetector:
    """Fallback person finder: OpenCV's built-in HOG + linear SVM pedestrian detector
    (Dalal and Triggs, CVPR 2005). It ships inside OpenCV (nothing to download) and finds
    upright people well; the pipeline runs it beside the learned detector and keeps only the
    people the learned detector and the tracks do not already cover, so that someone the
    learned detector misses can still start a track.

    Box convention: the 64x128 HOG window holds a person about 96 px tall, so the joints' box
    (crops.py) is taken as 0.75 x the window height, centred on the window.
    """

    def __init__(self, max_side: int = 720, min_weight: float = 0.3):
        self.max_side, self.min_weight = max_side, min_weight
        self.hog = cv2.HOGDescriptor()
        self.hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        self.frames_run = 0

    def detect(self, frames: Sequence[np.ndarray]) -> list[Detections]:
        """F frames (H, W, 3) uint8 BGR -> per frame its Detections (best first, scores 0..1)."""
        out = []
        for frame in frames:
            H, W = frame.shape[:2]
            s = min(1.0, self.max_side / max(H, W))
            small = cv2.resize(frame, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else frame
            if small.shape[0] < 128 or small.shape[1] < 64:
                out.append(Detections.empty())
                continue
            rects, weights = self.hog.detectMultiScale(small, winStride=(8, 8), padding=(8, 8), scale=1.05)
            people = []
            for (x, y, w, h), wt in zip(np.reshape(rects, (-1, 4)), np.ravel(weights)):
                if wt < self.min_weight:
                    continue
                box = np.array([(x + w / 2) / s, (y + h / 2) / s, 0.75 * h / s], np.float32)
                people.append((box, float(1.0 / (1.0 + np.exp(-wt)))))
            people.sort(key=lambda p: -p[1])
            out.append(Detections([b for b, _ in people], [s for _, s in people]) if people
                       else Detections.empty())
            self.frames_run += 1
        return out
