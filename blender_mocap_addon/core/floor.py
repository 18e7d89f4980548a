"""The floor (pure numpy): the pose file's world frame, the camera in it, feet on the floor.

Pose files of format version 2 may carry ``world_from_camera`` (4, 4): the rigid transform
from the camera frame (OpenCV axes, metres) to a world frame with Z up, the floor at z = 0,
the camera at (0, 0, h) and world +Y the camera's viewing direction projected on the floor.
That world frame has Blender's axes (Z up, the camera looking along +Y, as in
:mod:`.axes`), so a file with a floor is imported straight into it. Without one, joints go
through :data:`.axes.CAM_TO_BLENDER` (camera at the origin), as for version 1 files.

The mocap skeleton has no foot bones: its feet are the ankles (the rest pose stands on its
ankles, :func:`.skeleton.rest_skeleton`). "Feet on the floor" therefore means the ankles of a
contact foot at the ankle height above the floor (``ankle_height``: what the engine assumed
when it put the floor below the resting ankles; 0 when the file does not say).
"""
from __future__ import annotations

import numpy as np

from . import axes

#: Blender camera axes in OpenCV camera axes: Blender cameras look along local -Z with +Y up.
CV_TO_BLENDER_CAMERA = np.diag([1.0, -1.0, -1.0])

#: The lower ankle of a frame is taken to be on the floor in at least this share of frames
#: when a person has no contact flags (``contact_height``).
LOW_PERCENTILE = 10.0

ANKLES = ("r_ankle", "l_ankle")     # contact columns of the pose file, in this order


class FloorError(ValueError):
    """A world transform is not a rigid Z-up transform."""


def check_world_from_camera(T) -> np.ndarray:
    """(4, 4) float64 copy of ``T``; FloorError unless it is finite and rigid (rotation, det +1)."""
    T = np.asarray(T, dtype=np.float64)
    if T.shape != (4, 4) or not np.isfinite(T).all():
        raise FloorError(f"world_from_camera must be a finite (4, 4) matrix, got shape {T.shape}")
    R = T[:3, :3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-4) or np.linalg.det(R) < 0.0 \
            or not np.allclose(T[3], (0, 0, 0, 1), atol=1e-6):
        raise FloorError("world_from_camera is not a rigid transform (rotation + translation)")
    return T


def camera_to_world(points: np.ndarray, world_from_camera=None) -> np.ndarray:
    """(..., 3) camera-frame points -> (..., 3) world (Blender axes).

    world_from_camera: (4, 4) or None (None: :func:`.axes.cam_to_blender`, camera at the origin).
    """
    if world_from_camera is None:
        return axes.cam_to_blender(points)
    T = np.asarray(world_from_camera, dtype=np.float64)
    p = np.asarray(points, dtype=np.float64)
    return p @ T[:3, :3].T + T[:3, 3]


def camera_matrix_world(world_from_camera=None) -> np.ndarray:
    """(4, 4) world matrix of a Blender camera object that sees what the OpenCV camera saw."""
    M = np.eye(4)
    if world_from_camera is None:
        M[:3, :3] = axes.CAM_TO_BLENDER
    else:
        M[:] = np.asarray(world_from_camera, dtype=np.float64)
    M[:3, :3] = M[:3, :3] @ CV_TO_BLENDER_CAMERA
    return M


def camera_height_tilt(world_from_camera) -> dict:
    """Camera height above the floor (m), pitch (degrees below the horizon, > 0 looking down)
    and roll (degrees about the optical axis, > 0 when the image's +x axis points up) of a world
    transform: the conventions of the pose file's ``meta["floor"]``."""
    T = check_world_from_camera(world_from_camera)
    fwd = T[:3, :3] @ np.array([0.0, 0.0, 1.0])      # optical axis in the world
    right = T[:3, :3] @ np.array([1.0, 0.0, 0.0])
    up = T[:3, :3] @ np.array([0.0, -1.0, 0.0])
    return {"camera_height_m": float(T[2, 3]),
            "pitch_deg": float(np.degrees(np.arcsin(np.clip(-fwd[2], -1, 1)))),
            "roll_deg": float(np.degrees(np.arctan2(right[2], up[2])))}


def contact_height(ankles_z: np.ndarray, contacts: np.ndarray | None = None) -> float:
    """Height of a person's feet when they stand: (K, 2) ankle heights over the person's
    frames, contacts (K, 2) bool (right, left) or None.

    With contacts: the median ankle height over contact frames. Without (or none set): the
    ``LOW_PERCENTILE`` percentile of the lower ankle per frame. NaN when nothing is finite.
    """
    z = np.asarray(ankles_z, dtype=np.float64)
    if contacts is not None:
        c = np.asarray(contacts, dtype=bool) & np.isfinite(z)
        if c.any():
            return float(np.median(z[c]))
    low = np.nanmin(np.where(np.isfinite(z), z, np.nan), axis=1) if z.size else z
    low = low[np.isfinite(low)]
    return float(np.percentile(low, LOW_PERCENTILE)) if low.size else float("nan")


#: Largest ankle height above the floor (m) taken from a pose file's meta.
MAX_ANKLE_HEIGHT = 0.3


def ankle_height(meta: dict | None) -> float:
    """Height of the ankle above the floor when standing (m): ``meta["floor"]["ankle_height_m"]``
    when the engine wrote it (its floor is that far below the resting ankles), else 0."""
    floor = (meta or {}).get("floor")
    v = floor.get("ankle_height_m") if isinstance(floor, dict) else None
    if isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= MAX_ANKLE_HEIGHT:
        return float(v)
    return 0.0


def off_the_floor(meta: dict | None) -> set:
    """Row indices of the people the engine found standing above the floor (on a wall, a
    stage): ``meta["floor"]["people_off_the_floor"]``; they get no contacts."""
    floor = (meta or {}).get("floor")
    rows = floor.get("people_off_the_floor") if isinstance(floor, dict) else None
    return {int(r) for r in rows if isinstance(r, int)} if isinstance(rows, list) else set()


def floor_info(meta: dict | None, has_transform: bool) -> tuple[bool, str]:
    """(use the world frame?, a sentence for the user) from ``meta["floor"]`` and whether the
    file carries ``world_from_camera``."""
    floor = (meta or {}).get("floor")
    status = floor.get("status") if isinstance(floor, dict) else None
    if has_transform and status in (None, "estimated"):
        parts = []
        if isinstance(floor, dict):
            for key, fmt in (("camera_height_m", "camera {:.2f} m above the floor"),
                             ("pitch_deg", "pitch {:+.1f} deg"), ("roll_deg", "roll {:+.1f} deg")):
                v = floor.get(key)
                if isinstance(v, (int, float)):
                    parts.append(fmt.format(v))
        return True, "floor from the pose file" + (f" ({', '.join(parts)})" if parts else "")
    why = {"no_feet": "nobody's feet were seen", "moving_camera": "the camera moves",
           "too_few_frames": "too few frames", "disabled": "floor estimation was off"}.get(status)
    if has_transform:   # a transform with a status other than "estimated": do not trust it
        return False, f"floor in the pose file not used (status {status!r}); camera coordinates"
    if why:
        return False, f"no floor: {why}; imported in camera coordinates (camera at the origin)"
    return False, "no floor in the pose file; imported in camera coordinates (camera at the origin)"
