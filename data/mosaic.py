"""Multi-person training frames composed from single-person crops.

LSP has one annotated person per image. To teach the detector to find every person,
small and large, we paste several annotated crops (each with its own real background
around the person) at random scales and positions onto a background made from real
image regions, then letterbox the canvas like a video frame. Distractor patches of
background only (with the same hard edges) keep the network from using paste edges as
a person cue.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from posefile.skeleton import PELVIS
from data.augment import _colour
from data.lsp import CropSet


@dataclass(frozen=True)
class MosaicConfig:
    canvas: int = 256
    max_people: int = 5
    person_size: tuple[float, float] = (0.07, 0.75)   # joints' box side / canvas side
    distractors: tuple[int, int] = (0, 3)


def _background(data: CropSet, idx_pool: np.ndarray, side: int, rng) -> np.ndarray:
    """A real-image background: a corner region of a random crop (away from its person), zoomed."""
    i = rng.choice(idx_pool)
    img = data.images[i]
    S = img.shape[0]
    q = S // 3
    y0, x0 = [0, 2 * q][rng.integers(2)], [0, 2 * q][rng.integers(2)]
    patch = img[y0:y0 + q, x0:x0 + q]
    bg = cv2.resize(patch, (side, side), interpolation=cv2.INTER_LINEAR)
    return _colour(bg, 0.3, rng)


def compose(data: CropSet, idx_pool: np.ndarray, cfg: MosaicConfig, rng: np.random.Generator):
    """-> canvas (S, S, 3) uint8 BGR, people: list of (pelvis (2,), box (cx, cy, size)) in canvas px."""
    S = cfg.canvas
    canvas = _background(data, idx_pool, S, rng)
    people = []
    occupied = []
    n = rng.integers(0, cfg.max_people + 1) if rng.random() < 0.9 else 0
    n = max(n, 1) if rng.random() < 0.8 else n
    crop_box = data.box
    Sc = data.images.shape[1]
    for _ in range(n):
        i = rng.choice(idx_pool)
        size = rng.uniform(*cfg.person_size) ** 1.0 * S  # target person size in canvas px
        if rng.random() < 0.5:  # favour small people: they are the hard case in video
            size = np.exp(rng.uniform(np.log(cfg.person_size[0] * S), np.log(cfg.person_size[1] * S)))
        scale = size / crop_box[2]
        # how much context around the person comes along (fraction of the cached crop)
        ctx = rng.uniform(0.55, 1.0)
        half = ctx * Sc / 2
        src = np.array([[crop_box[0] - half, crop_box[1] - half], [crop_box[0] + half, crop_box[1] + half]])
        tile = int(round(2 * half * scale))
        if tile < 4 or tile > 2 * S:
            continue
        cx, cy = rng.uniform(0, S, 2)
        # avoid heavy overlap of people centres
        if any(np.hypot(cx - ox, cy - oy) < 0.35 * (size + os_) for ox, oy, os_ in occupied):
            continue
        flip = rng.random() < 0.5
        M = np.array([[scale, 0, cx - scale * crop_box[0]], [0, scale, cy - scale * crop_box[1]]])
        if flip:
            M = np.array([[-scale, 0, cx + scale * crop_box[0]], [0, scale, cy - scale * crop_box[1]]])
        x0, y0 = int(max(0, np.floor(cx - tile / 2))), int(max(0, np.floor(cy - tile / 2)))
        x1, y1 = int(min(S, np.ceil(cx + tile / 2))), int(min(S, np.ceil(cy + tile / 2)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        warped = cv2.warpAffine(_colour(data.images[i], 0.25, rng), M, (S, S), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        canvas[y0:y1, x0:x1] = warped[y0:y1, x0:x1]
        j = data.joints[i] @ M[:, :2].T + M[:, 2]
        v = data.visible[i]
        pts = j[v]
        lo, hi = pts.min(0), pts.max(0)
        box = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, max((hi - lo).max(), 2.0)], np.float32)
        pelvis = j[PELVIS] if v[PELVIS] else box[:2]
        # keep earlier people whose centre this tile covers out of the labels
        people = [p for p in people if not (x0 <= p[0][0] < x1 and y0 <= p[0][1] < y1)]
        people.append((pelvis.astype(np.float32), box))
        occupied.append((cx, cy, size))
    for _ in range(rng.integers(*cfg.distractors, endpoint=True)):
        w, h = (rng.uniform(0.1, 0.5, 2) * S).astype(int)
        x0, y0 = rng.integers(0, S - w), rng.integers(0, S - h)
        patch = _background(data, idx_pool, max(w, h), rng)[:h, :w]
        if any(x0 <= p[0][0] < x0 + w and y0 <= p[0][1] < y0 + h for p in people):
            continue
        canvas[y0:y0 + h, x0:x0 + w] = patch
    if rng.random() < 0.6:
        canvas, people = letterbox_bars(canvas, people, rng)
    return canvas, people


def letterbox_bars(canvas: np.ndarray, people: list, rng: np.random.Generator):
    """Black bars on one side, as a landscape (bottom) or portrait (right) video frame has after
    the detector's top-left letterbox; people whose centre falls under a bar are dropped."""
    S = canvas.shape[0]
    cut = int(S * rng.uniform(0.5, 0.8))
    canvas = canvas.copy()
    if rng.random() < 0.7:
        canvas[cut:] = 0
        return canvas, [p for p in people if p[0][1] < cut]
    canvas[:, cut:] = 0
    return canvas, [p for p in people if p[0][0] < cut]


def detector_targets(people, canvas: int, stride: int = 4):
    """-> heat (1, H, H) in [0,1], reg (3, H, H), reg_mask (H, H) for the detector contract:
    ch0 pelvis heatmap, ch1-2 (box centre - peak cell) / 4 in heatmap px, ch3 log(box size in heatmap px)."""
    H = canvas // stride
    heat = np.zeros((H, H), np.float32)
    reg = np.zeros((3, H, H), np.float32)
    mask = np.zeros((H, H), np.float32)
    grid = np.arange(H, dtype=np.float32)
    for pelvis, box in people:
        p = (pelvis + 0.5) / stride - 0.5
        size_hm = box[2] / stride
        sigma = max(0.8, size_hm / 10)
        g = np.exp(-((grid[None, :] - p[0]) ** 2 + (grid[:, None] - p[1]) ** 2) / (2 * sigma ** 2))
        heat = np.maximum(heat, g)
        c = (box[:2] + 0.5) / stride - 0.5
        px, py = int(round(p[0])), int(round(p[1]))
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                x, y = px + dx, py + dy
                if 0 <= x < H and 0 <= y < H:
                    reg[0, y, x] = (c[0] - x) / 4
                    reg[1, y, x] = (c[1] - y) / 4
                    reg[2, y, x] = np.log(max(size_hm, 0.5))
                    mask[y, x] = 1.0
    return heat[None], reg, mask
