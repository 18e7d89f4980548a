"""LSP / LSP-extended reader and a compact crop cache for fast CPU epochs.

The cache holds, for every image, a square crop around the annotated person that is
wider than the network's view (CACHE_ZOOM), so that scale, rotation and shift
augmentation can be done from the small cached crop instead of the full JPEG.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .. import crops
from ..joints import from_lsp

CACHE_ZOOM = 1.6   # the cached crop covers CACHE_ZOOM x the network's unaugmented view


@dataclass
class CropSet:
    """images (N, S, S, 3) uint8 BGR; joints (N, 16, 2) in crop pixels; visible (N, 16);
    is_test (N,); names (N,). The person box in crop pixels is the same for every row:
    centre S/2, size S / (CROP_MARGIN * CACHE_ZOOM)."""
    images: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    is_test: np.ndarray
    names: np.ndarray

    @property
    def box(self) -> np.ndarray:
        S = self.images.shape[1]
        return np.array([S / 2 - 0.5, S / 2 - 0.5, S / (crops.CROP_MARGIN * CACHE_ZOOM)], np.float32)


def load_annotations(root: str | os.PathLike):
    d = np.load(Path(root) / "joints.npz")
    joints, visible = from_lsp(d["joints"], d["visible"])
    return d["image_names"], joints, visible, d["is_test"]


def build_cache(root: str | os.PathLike, side: int = 192, progress=None, indices=None) -> CropSet:
    names, joints, visible, is_test = load_annotations(root)
    if indices is not None:
        names, joints, visible, is_test = names[indices], joints[indices], visible[indices], is_test[indices]
    N = len(names)
    images = np.zeros((N, side, side, 3), np.uint8)
    out_joints = np.zeros_like(joints)
    for i in range(N):
        img = cv2.imread(str(Path(root) / "images" / names[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot decode {names[i]}")
        box = crops.box_from_joints(joints[i], visible[i])
        M = crops.crop_matrix(box, side, scale=CACHE_ZOOM)
        images[i] = crops.warp(img, M, side)
        out_joints[i] = crops.apply_affine(M, joints[i])
        if progress and i % 500 == 0:
            progress(i, N)
    return CropSet(images, out_joints, visible, is_test, names)


def load_or_build_cache(root: str | os.PathLike, cache_dir: str | os.PathLike, side: int = 192,
                        progress=None) -> CropSet:
    path = Path(cache_dir) / f"lsp_crops_{side}.npz"
    if path.exists():
        d = np.load(path)
        return CropSet(d["images"], d["joints"], d["visible"], d["is_test"], d["names"])
    cs = build_cache(root, side, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=cs.images, joints=cs.joints, visible=cs.visible, is_test=cs.is_test, names=cs.names)
    os.replace(tmp, path)
    return cs
