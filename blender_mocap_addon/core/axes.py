"""Camera frame (OpenCV: x right, y down, z forward) to Blender world (Z up).

The camera sits at the world origin and looks along Blender's +Y with +Z up, so a
person facing the camera faces -Y, which is Blender's "front" for characters.
The mapping (see /work/shared/README.md) is a proper rotation (det = +1):

    x_b = x,  y_b = z,  z_b = -y
"""
from __future__ import annotations

import math

import numpy as np

#: (3, 3) rotation taking camera-frame column vectors to Blender world.
CAM_TO_BLENDER = np.array([[1.0, 0.0, 0.0],
                           [0.0, 0.0, 1.0],
                           [0.0, -1.0, 0.0]])

#: Euler XYZ (radians) of a Blender camera object placed at the origin that sees
#: what the OpenCV camera saw: Blender cameras look along local -Z with +Y up.
BLENDER_CAMERA_EULER = (math.pi / 2.0, 0.0, 0.0)


def cam_to_blender(points: np.ndarray) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 3) Blender world points (copy)."""
    p = np.asarray(points)
    if p.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got shape {p.shape}")
    out = np.empty(p.shape, dtype=np.result_type(p.dtype, np.float32))
    out[..., 0] = p[..., 0]
    out[..., 1] = p[..., 2]
    out[..., 2] = -p[..., 1]
    return out


def blender_to_cam(points: np.ndarray) -> np.ndarray:
    """Inverse of :func:`cam_to_blender`: (..., 3) -> (..., 3)."""
    p = np.asarray(points)
    if p.shape[-1] != 3:
        raise ValueError(f"expected (..., 3) points, got shape {p.shape}")
    out = np.empty(p.shape, dtype=np.result_type(p.dtype, np.float32))
    out[..., 0] = p[..., 0]
    out[..., 1] = -p[..., 2]
    out[..., 2] = p[..., 1]
    return out


def camera_lens_from_K(K: np.ndarray, image_size, sensor_width_mm: float = 36.0):
    """Blender camera settings equivalent to pinhole intrinsics.

    K: (3, 3) intrinsics in pixels; image_size: (width, height) pixels.
    Returns dict(lens=mm, sensor_width=mm, sensor_fit='HORIZONTAL', shift_x, shift_y)
    with Blender's shift convention (fraction of the larger image side, +y up).
    """
    K = np.asarray(K, dtype=np.float64)
    w, h = float(image_size[0]), float(image_size[1])
    if K.shape != (3, 3) or w <= 0 or h <= 0 or K[0, 0] <= 0:
        raise ValueError("camera_lens_from_K: bad K or image size")
    lens = K[0, 0] / w * sensor_width_mm
    side = max(w, h)
    shift_x = (w / 2.0 - K[0, 2]) / side
    shift_y = (K[1, 2] - h / 2.0) / side
    return dict(lens=float(lens), sensor_width=float(sensor_width_mm),
                sensor_fit='HORIZONTAL', shift_x=float(shift_x), shift_y=float(shift_y))
