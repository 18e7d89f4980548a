"""The floor stage (after lifting and smoothing): one floor for everyone in the clip.

    placed = place_on_floor(j3, j2, scores, valid, K, fps)       # inference.core.floor.estimate
    placed.joints3d            # (P, F, J, 3) root depths from the floor (camera frame, as before)
    placed.world_from_camera   # (4, 4) float32 or None: the pose file's world frame
    placed.contacts            # (P, F, 2) bool or None: feet on the floor (r_ankle, l_ankle)
    placed.meta                # meta["floor"] of the pose file: status, camera height, pitch, roll, ...

Without a floor (``--no-floor``, nobody's feet at rest, too few frames, a moving camera) the joints
are returned unchanged, world frame and contacts are None, and a warning says why. A floor whose
expected error is large (few footprints, close together or far away) is written with a warning.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from inference.core.floor import estimate, FloorConfig


# A floor whose expected error (inference.core.floor: fit_floor's tilt_sigma_deg and
# height_sigma_pct) exceeds these comes with a warning.
UNCERTAIN_TILT_DEG = 2.0
UNCERTAIN_HEIGHT_PCT = 10.0


@dataclass
class PlacedOnFloor:
    joints3d: np.ndarray
    world_from_camera: np.ndarray | None
    contacts: np.ndarray | None
    meta: dict
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _round(v, nd):
    return None if v is None else round(float(v), nd)


def place_on_floor(joints3d: np.ndarray, joints2d: np.ndarray, scores: np.ndarray, valid: np.ndarray,
                   K: np.ndarray, fps: float, enabled: bool = True, focal_known: bool = True,
                   cfg: FloorConfig = FloorConfig()) -> PlacedOnFloor:
    """joints3d (P, F, J, 3) m camera frame, joints2d (P, F, J, 2) px, scores (P, F, J), valid (P, F),
    K (3, 3), fps -> PlacedOnFloor. Never raises for odd input (status and warning instead).
    focal_known: K's focal length is the camera's (--focal), not assumed; the people's image
    heights refine the floor only then (core.floor.refine_from_heights: on the sample clip, with
    the assumed 60 degree field of view, it turned the floor 40 degrees the wrong way)."""
    t0 = time.perf_counter()
    if not focal_known:
        cfg = dataclasses.replace(cfg, refine_heights=False)
    empty = {"camera_height_m": None, "pitch_deg": None, "roll_deg": None, "inliers": 0}
    if not enabled:
        return PlacedOnFloor(joints3d, None, None, {"status": "disabled", **empty,
                                                    "message": "floor estimation was turned off (--no-floor)"})
    res = estimate(joints3d, joints2d, scores, valid, K, fps, cfg)
    seconds = time.perf_counter() - t0
    if res.status != "estimated":
        meta = {"status": res.status, **empty, "message": res.message, **res.info,
                "seconds": round(seconds, 4)}
        meta["inliers"] = int(res.info.get("inliers", 0))
        warnings = []
        if np.asarray(valid).any():
            warnings.append(f"no floor ({res.status}): {res.message}; the pose file keeps camera coordinates "
                            "only (no world frame, no foot contacts)")
        return PlacedOnFloor(joints3d, None, None, meta, warnings, seconds)
    fl = res.floor
    T = fl.world_from_camera().astype(np.float32)
    meta = {"status": "estimated", "camera_height_m": _round(fl.height, 4), "pitch_deg": _round(fl.pitch_deg, 3),
            "roll_deg": _round(fl.roll_deg, 3), "ankle_height_m": cfg.ankle_height_m,
            "normal_camera": [round(float(v), 6) for v in fl.normal], **res.info,
            "seconds": round(seconds, 4)}
    warnings = []
    if fl.tilt_sigma_deg > UNCERTAIN_TILT_DEG or res.info.get("height_sigma_pct", 0) > UNCERTAIN_HEIGHT_PCT:
        warnings.append(f"the floor is uncertain (about +-{fl.tilt_sigma_deg:.0f} degrees of tilt, +-"
                        f"{res.info['height_sigma_pct']:.0f}% camera height): the feet rested in few places, "
                        "close together or far away; check it in Blender, or use --no-floor")
    return PlacedOnFloor(res.joints3d, T, res.contacts, meta, warnings, seconds)
