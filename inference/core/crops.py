"""Person-centred square crops: the one geometry that training, evaluation and run-time
inference share, so a box means the same thing everywhere.

A person box is (cx, cy, size): the centre and the longer side of the tight box around
the person's joints. The network sees a square of side `size * CROP_MARGIN` around the
centre, resized to its input size.
"""
from __future__ import annotations

import cv2
import numpy as np

CROP_MARGIN = 1.3   # joints' box -> crop side (head and feet extend past the joints)
MIN_SIZE = 8.0


def box_from_joints(joints: np.ndarray, visible: np.ndarray) -> np.ndarray | None:
    """joints (J, 2), visible (J,) -> (cx, cy, size) or None when fewer than 2 joints."""
    pts = joints[np.asarray(visible, bool)]
    if len(pts) < 2:
        return None
    lo, hi = pts.min(0), pts.max(0)
    c = 0.5 * (lo + hi)
    return np.array([c[0], c[1], max(float((hi - lo).max()), MIN_SIZE)], np.float32)


def crop_matrix(box, out_size: int, scale: float = 1.0, rotation_deg: float = 0.0,
                shift=(0.0, 0.0), flip: bool = False) -> np.ndarray:
    """2x3 affine from image pixels to crop pixels.

    scale > 1 zooms out (the crop covers more of the image); rotation turns the person
    counter-clockwise in the crop; shift is in units of the crop side; flip mirrors.
    """
    cx, cy, size = (float(v) for v in box)
    side = size * CROP_MARGIN * scale
    s = out_size / side
    a = np.deg2rad(rotation_deg)
    R = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]]) * s
    if flip:
        R = np.array([[-1.0, 0.0], [0.0, 1.0]]) @ R
    centre_out = np.array([out_size / 2 - 0.5 + shift[0] * out_size, out_size / 2 - 0.5 + shift[1] * out_size])
    t = centre_out - R @ np.array([cx, cy])
    return np.hstack([R, t[:, None]]).astype(np.float64)


def apply_affine(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """(2, 3) affine on (..., 2) points."""
    pts = np.asarray(pts, np.float64)
    return (pts @ M[:, :2].T + M[:, 2]).astype(np.float32)


def invert_affine(M: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(M)


def warp(image: np.ndarray, M: np.ndarray, out_size: int) -> np.ndarray:
    return cv2.warpAffine(image, M, (out_size, out_size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
