"""Key reduction for editable curves (pure numpy): keep a key only where the linearly
interpolated curve would otherwise depart from the capture by more than a tolerance.

Top-down (Douglas-Peucker) over time: a segment between two kept keys is split at its worst
frame while that frame's error is above the tolerance. Channels that move together are reduced
together: a bone's quaternion (error = the angle between the interpolated, normalised rotation
and the captured one, degrees) and a location (error = distance, millimetres, with the values
in metres). The first and last keys always stay.
"""
from __future__ import annotations

import numpy as np


def quat_error_deg(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Angle (degrees) between rotations (n, 4) (w, x, y, z); approx need not be normalised."""
    a = approx / np.maximum(np.linalg.norm(approx, axis=1, keepdims=True), 1e-12)
    e = exact / np.maximum(np.linalg.norm(exact, axis=1, keepdims=True), 1e-12)
    dot = np.clip(np.abs(np.sum(a * e, axis=1)), 0.0, 1.0)
    return np.degrees(2.0 * np.arccos(dot))


def location_error_mm(approx: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """Distance (mm) between positions (n, C) in metres."""
    return 1000.0 * np.linalg.norm(approx - exact, axis=1)


def reduce(frames: np.ndarray, values: np.ndarray, tolerance: float, error=location_error_mm) -> np.ndarray:
    """Indices (sorted) of the keys to keep. frames (K,) increasing; values (K, C) keyed
    together; error(approx (n, C), exact (n, C)) -> (n,) in the tolerance's unit."""
    frames = np.asarray(frames, np.float64)
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        values = values[:, None]
    K = len(frames)
    if K <= 2:
        return np.arange(K)
    keep = np.zeros(K, bool)
    keep[0] = keep[-1] = True
    stack = [(0, K - 1)]
    while stack:
        a, b = stack.pop()
        if b - a < 2:
            continue
        t = (frames[a + 1:b] - frames[a]) / (frames[b] - frames[a])
        approx = values[a] + t[:, None] * (values[b] - values[a])
        err = error(approx, values[a + 1:b])
        i = int(np.argmax(err))
        if err[i] > tolerance:
            m = a + 1 + i
            keep[m] = True
            stack.append((a, m))
            stack.append((m, b))
    return np.flatnonzero(keep)
