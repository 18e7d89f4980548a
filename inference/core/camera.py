"""Pinhole camera maths used at training and at run time (pure numpy).

Camera frame: OpenCV axes (x right, y down, z forward), metres.  ``K`` is the usual 3x3
intrinsic matrix [[fx, 0, cx], [0, fy, cy], [0, 0, 1]] in pixels.

Root depth follows RootNet (Moon et al., "Camera Distance-aware Top-down Approach for 3D
Multi-person Pose Estimation from a Single RGB Image", ICCV 2019): with a person of nominal real
area A_real (2000 mm x 2000 mm) whose image bounding box has area A_img pixels^2,
``k = sqrt(fx * fy * A_real / A_img)`` approximates the distance; a learned factor corrects it.
"""
from __future__ import annotations

import numpy as np


class CameraError(ValueError):
    """Raised for invalid camera parameters."""


# Field of view across the image's long side assumed when the focal is unknown. The long side,
# not the width: a camera turned to portrait keeps its focal length in pixels, and lens fields
# of view are quoted for the sensor's long side (phones about 65-75 degrees, webcams 60-70).
DEFAULT_FOV_DEG = 60.0
A_REAL_M2 = 2.0 * 2.0            # RootNet nominal person area, m^2


def intrinsics(image_size, focal_px: float | None = None, fov_deg: float | None = None) -> np.ndarray:
    """K (3, 3) float64 for image_size (width, height); principal point at the image centre.

    focal_px wins over fov_deg (field of view across the long side, so that portrait and
    landscape video of one camera get one focal length); if neither is given DEFAULT_FOV_DEG.
    """
    w, h = float(image_size[0]), float(image_size[1])
    if w <= 0 or h <= 0:
        raise CameraError(f"bad image size {image_size!r}")
    if focal_px is None:
        fov = DEFAULT_FOV_DEG if fov_deg is None else float(fov_deg)
        if not 1.0 < fov < 179.0:
            raise CameraError(f"bad field of view {fov}")
        focal_px = 0.5 * max(w, h) / np.tan(np.deg2rad(fov) / 2.0)
    if focal_px <= 0:
        raise CameraError(f"bad focal length {focal_px}")
    return np.array([[focal_px, 0.0, (w - 1) / 2.0], [0.0, focal_px, (h - 1) / 2.0], [0.0, 0.0, 1.0]])


def check_K(K) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise CameraError(f"bad intrinsics {K!r}")
    return K


def project(X: np.ndarray, K) -> np.ndarray:
    """Camera-frame points (..., 3) metres -> pixels (..., 2). Points need z > 0."""
    K = check_K(K)
    X = np.asarray(X, dtype=np.float64)
    z = X[..., 2:3]
    xy = X[..., :2] / z
    return np.stack([K[0, 0] * xy[..., 0] + K[0, 1] * xy[..., 1] + K[0, 2],
                     K[1, 1] * xy[..., 1] + K[1, 2]], axis=-1)


def unproject(uv: np.ndarray, depth: np.ndarray, K) -> np.ndarray:
    """Pixels (..., 2) at depth z (...,) metres -> camera-frame points (..., 3)."""
    K = check_K(K)
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(depth, dtype=np.float64)
    y = (uv[..., 1] - K[1, 2]) / K[1, 1]
    x = (uv[..., 0] - K[0, 2] - K[0, 1] * y) / K[0, 0]
    return np.stack([x * z, y * z, np.broadcast_to(z, x.shape)], axis=-1)


def normalize_pixels(uv: np.ndarray, K) -> np.ndarray:
    """Pixels (..., 2) -> normalised image coordinates ((u-cx)/fx, (v-cy)/fy) (..., 2)."""
    return unproject(uv, np.ones(np.shape(uv)[:-1]), K)[..., :2]


def bbox_area(points: np.ndarray, mask: np.ndarray | None = None, square: bool = True) -> np.ndarray:
    """Area of the 2D box around points (..., J, 2) where mask (..., J) is True.

    square=True uses max(width, height)^2: the box extended to aspect ratio 1, as RootNet fixes the
    box aspect ratio before applying the area formula.  Returns (...,); 0 where < 2 points.
    """
    p = np.asarray(points, dtype=np.float64)
    x, y = p[..., 0], p[..., 1]  # per coordinate: reducing over J of (..., J, 2) is slow in numpy
    if mask is None:
        w, h = x.max(-1) - x.min(-1), y.max(-1) - y.min(-1)
        enough = p.shape[-2] >= 2
    else:
        m = np.asarray(mask, bool)
        big = 1e12
        w = np.where(m, x, -big).max(-1) - np.where(m, x, big).min(-1)
        h = np.where(m, y, -big).max(-1) - np.where(m, y, big).min(-1)
        enough = m.sum(-1) >= 2
    w = np.where(enough, np.clip(w, 0.0, None), 0.0)
    h = np.where(enough, np.clip(h, 0.0, None), 0.0)
    if square:
        s = np.maximum(w, h)
        return s * s
    return w * h


def root_depth(area_img_px2: np.ndarray, K, area_real_m2: float = A_REAL_M2) -> np.ndarray:
    """RootNet distance k = sqrt(fx * fy * A_real / A_img) in metres, (...,) from (...,) areas.

    Areas <= 0 give NaN.
    """
    K = check_K(K)
    a = np.asarray(area_img_px2, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.sqrt(K[0, 0] * K[1, 1] * area_real_m2 / a)
    return np.where(a > 0, k, np.nan)
