"""Augmentation for single-person crops: scale, rotation, shift, horizontal flip with
left/right joint swap, colour jitter and random occluders. Joints always move with the
pixels (one affine for both)."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from inference.core import crops
from inference.core.codec import flip_permutation
from posefile.skeleton import FLIP_PAIRS


@dataclass(frozen=True)
class AugmentConfig:
    scale: tuple[float, float] = (0.75, 1.3)
    rotation_deg: float = 35.0
    rotation_prob: float = 0.6
    shift: float = 0.08
    flip_prob: float = 0.5
    colour: float = 0.3
    occlusion_prob: float = 0.3


NO_AUGMENT = AugmentConfig(scale=(1.0, 1.0), rotation_deg=0.0, rotation_prob=0.0, shift=0.0,
                           flip_prob=0.0, colour=0.0, occlusion_prob=0.0)


def augment(image: np.ndarray, joints: np.ndarray, visible: np.ndarray, box, out_size: int,
            cfg: AugmentConfig, rng: np.random.Generator):
    """image (H, W, 3) uint8, joints (J, 2) image px, visible (J,) -> crop (out, out, 3) uint8,
    joints (J, 2) crop px, visible (J,), and the 2x3 image->crop matrix."""
    scale = rng.uniform(*cfg.scale)
    rot = rng.uniform(-cfg.rotation_deg, cfg.rotation_deg) if rng.random() < cfg.rotation_prob else 0.0
    shift = rng.uniform(-cfg.shift, cfg.shift, 2)
    flip = rng.random() < cfg.flip_prob
    M = crops.crop_matrix(box, out_size, scale, rot, shift, flip)
    out = crops.warp(image, M, out_size)
    j = crops.apply_affine(M, joints)
    v = np.asarray(visible, bool).copy()
    if flip:
        perm = flip_permutation(len(j), FLIP_PAIRS)
        j, v = j[perm], v[perm]
    if cfg.colour > 0:
        out = _colour(out, cfg.colour, rng)
    if rng.random() < cfg.occlusion_prob:
        out = _occlude(out, rng)
    return out, j, v, M


def _colour(img: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    f = img.astype(np.float32)
    gain = 1.0 + rng.uniform(-strength, strength, 3)          # per-channel colour cast
    contrast = 1.0 + rng.uniform(-strength, strength)
    bright = rng.uniform(-strength, strength) * 64
    mean = f.mean()
    f = (f - mean) * contrast + mean + bright
    f *= gain
    if rng.random() < 0.2:                                     # sometimes grey
        f[:] = f.mean(-1, keepdims=True)
    return np.clip(f, 0, 255).astype(np.uint8)


def _occlude(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = img.shape[:2]
    ow, oh = (rng.uniform(0.1, 0.35, 2) * (w, h)).astype(int)
    x0, y0 = rng.integers(0, w - ow), rng.integers(0, h - oh)
    out = img.copy()
    if rng.random() < 0.5:
        out[y0:y0 + oh, x0:x0 + ow] = rng.integers(0, 256, 3)
    else:
        noise = rng.integers(0, 256, (oh, ow, 3), dtype=np.uint8)
        out[y0:y0 + oh, x0:x0 + ow] = cv2.GaussianBlur(noise, (5, 5), 0)
    return out
