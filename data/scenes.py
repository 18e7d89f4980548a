"""Detector training frames made of whole photographs (mosaics in the manner of YOLOv4's).

mosaic.py pastes person-centred tiles onto patch backgrounds; a detector trained only on those
learns cues of the composition (a tile centred on its person) and barely fires on real video.
Here every cell of the canvas is filled by a whole LSPET photograph, scaled to cover the cell and
shifted at random, so the annotated person sits wherever the photographer put them, among the
real scene around them, and the cell edges say nothing about where people are.

The photographs are kept in memory once, downscaled to at most MAX_SIDE px (a flat buffer of
about 0.5 GB for the 10,000 images), in `<cache>/lsp_scenes_<MAX_SIDE>.npz`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data.augment import _colour
from data.lsp import load_annotations
from data.mosaic import letterbox_bars
from posefile.skeleton import PELVIS

MAX_SIDE = 160


@dataclass
class SceneSet:
    """pixels: all images' bytes in one flat uint8 buffer; offsets (N,), shapes (N, 2) (h, w);
    joints (N, 16, 2) in stored-image px; visible (N, 16); is_test (N,)."""
    pixels: np.ndarray
    offsets: np.ndarray
    shapes: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    is_test: np.ndarray

    def image(self, i: int) -> np.ndarray:
        h, w = self.shapes[i]
        return self.pixels[self.offsets[i]:self.offsets[i] + h * w * 3].reshape(h, w, 3)


def build_scenes(root: str | os.PathLike, max_side: int = MAX_SIDE, progress=None, indices=None) -> SceneSet:
    names, joints, visible, is_test = load_annotations(root)
    if indices is not None:
        names, joints, visible, is_test = names[indices], joints[indices], visible[indices], is_test[indices]
    chunks, offsets, shapes = [], [], []
    out_joints = np.array(joints, np.float32)
    pos = 0
    for i, name in enumerate(names):
        img = cv2.imread(str(Path(root) / "images" / name), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot decode {name}")
        H, W = img.shape[:2]
        s = min(1.0, max_side / max(H, W))
        if s < 1.0:
            img = cv2.resize(img, (max(1, round(W * s)), max(1, round(H * s))), interpolation=cv2.INTER_AREA)
            out_joints[i] = (joints[i] + 0.5) * (img.shape[1] / W, img.shape[0] / H) - 0.5
        chunks.append(img.reshape(-1))
        offsets.append(pos)
        shapes.append(img.shape[:2])
        pos += img.size
        if progress and i % 1000 == 0:
            progress(i, len(names))
    return SceneSet(np.concatenate(chunks), np.array(offsets, np.int64), np.array(shapes, np.int32),
                    out_joints, np.asarray(visible, bool), np.asarray(is_test, bool))


def load_or_build_scenes(root: str | os.PathLike, cache_dir: str | os.PathLike, max_side: int = MAX_SIDE,
                         progress=None) -> SceneSet:
    path = Path(cache_dir) / f"lsp_scenes_{max_side}.npz"
    if path.exists():
        d = np.load(path)
        return SceneSet(*(d[k] for k in ("pixels", "offsets", "shapes", "joints", "visible", "is_test")))
    sc = build_scenes(root, max_side, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, pixels=sc.pixels, offsets=sc.offsets, shapes=sc.shapes, joints=sc.joints,
             visible=sc.visible, is_test=sc.is_test)
    os.replace(tmp, path)
    return sc


@dataclass(frozen=True)
class SceneConfig:
    canvas: int = 256
    # grid layouts (rows, cols) and how often each is drawn
    layouts: tuple = ((1, 1), (1, 2), (2, 1), (2, 2), (2, 3), (3, 2), (3, 3), (4, 4))
    layout_p: tuple = (0.15, 0.1, 0.1, 0.25, 0.1, 0.1, 0.12, 0.08)
    zoom: tuple[float, float] = (1.0, 1.4)      # image scale / the scale that just covers its cell
    jitter: float = 0.2                         # grid lines move by up to this x the cell size
    min_inside: float = 0.6                     # labelled only if this share of the joints is in the cell
    letterbox_prob: float = 0.6


def _grid(n: int, side: int, jitter: float, rng) -> np.ndarray:
    """n cells along a side of `side` px -> n + 1 edges, inner ones jittered."""
    edges = np.linspace(0, side, n + 1)
    if n > 1:
        edges[1:-1] += rng.uniform(-jitter, jitter, n - 1) * side / n
    return np.round(edges).astype(int)


def person_label(joints: np.ndarray, visible: np.ndarray):
    """-> (pelvis (2,), box (cx, cy, size)) from visible joints, as mosaic.compose labels people."""
    pts = joints[visible]
    lo, hi = pts.min(0), pts.max(0)
    box = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, max((hi - lo).max(), 2.0)], np.float32)
    pelvis = joints[PELVIS] if visible[PELVIS] else box[:2]
    return np.asarray(pelvis, np.float32), box


def compose_scene(scenes: SceneSet, pool: np.ndarray, cfg: SceneConfig, rng: np.random.Generator):
    """-> canvas (S, S, 3) uint8 BGR, people: list of (pelvis (2,), box (cx, cy, size)) in canvas px,
    ignore: list of boxes (cx, cy, size) of annotated people that a cell cut too much to label;
    the detector's loss neither rewards nor punishes a detection there."""
    S = cfg.canvas
    rows, cols = cfg.layouts[rng.choice(len(cfg.layouts), p=np.asarray(cfg.layout_p) / sum(cfg.layout_p))]
    ys, xs = _grid(rows, S, cfg.jitter, rng), _grid(cols, S, cfg.jitter, rng)
    canvas = np.zeros((S, S, 3), np.uint8)
    people, ignore = [], []
    for r in range(rows):
        for c in range(cols):
            x0, x1, y0, y1 = xs[c], xs[c + 1], ys[r], ys[r + 1]
            cw, ch = x1 - x0, y1 - y0
            if cw < 2 or ch < 2:
                continue
            i = rng.choice(pool)
            img = scenes.image(i)
            h, w = img.shape[:2]
            s = max(cw / w, ch / h) * rng.uniform(*cfg.zoom)
            tx = x0 + rng.uniform(cw - s * w, 0)
            ty = y0 + rng.uniform(ch - s * h, 0)
            flip = rng.random() < 0.5
            if flip:   # mirror the image inside its own footprint
                M = np.array([[-s, 0, tx + s * (w - 1)], [0, s, ty]])
            else:
                M = np.array([[s, 0, tx], [0, s, ty]])
            src = _colour(img, 0.25, rng)
            warped = cv2.warpAffine(src, M, (S, S), flags=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR,
                                    borderMode=cv2.BORDER_REPLICATE)
            canvas[y0:y1, x0:x1] = warped[y0:y1, x0:x1]
            v = scenes.visible[i]
            if not v.any():
                continue
            j = scenes.joints[i] @ M[:, :2].T + M[:, 2]
            inside = (j[:, 0] >= x0) & (j[:, 0] < x1) & (j[:, 1] >= y0) & (j[:, 1] < y1)
            if not inside[v].any():
                continue
            pelvis, box = person_label(j, v)
            if (x0 <= pelvis[0] < x1 and y0 <= pelvis[1] < y1
                    and inside[v].mean() >= cfg.min_inside):
                people.append((pelvis, box))
            else:
                ignore.append(box)
    if rng.random() < 0.3:   # video-like softness: down and up again
        f = rng.uniform(0.4, 0.8)
        small = cv2.resize(canvas, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        canvas = cv2.resize(small, (S, S), interpolation=cv2.INTER_LINEAR)
    if rng.random() < cfg.letterbox_prob:
        canvas, people = letterbox_bars(canvas, people, rng)
    return canvas, people, ignore


def ignore_weights(ignore: list, canvas: int, stride: int = 4) -> np.ndarray:
    """-> (H, H) float32: 0 on the heatmap cells inside any ignore box, else 1."""
    H = canvas // stride
    w = np.ones((H, H), np.float32)
    for cx, cy, size in ignore:
        half = 0.6 * size
        x0, x1 = int(np.floor((cx - half) / stride)), int(np.ceil((cx + half) / stride))
        y0, y1 = int(np.floor((cy - half) / stride)), int(np.ceil((cy + half) / stride))
        w[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = 0.0
    return w
