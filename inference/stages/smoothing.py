"""Stage-2 post-process of one person: temporal smoothing, then constant bone lengths (numpy).

``post_process`` is the one definition: the pipeline applies it to every lifted person, the
raw-vs-smoothed preview to a raw run, and eval_3d to the lifter's output, so all three measure
or show what the pose file gets.

* 3D: ``filters.smooth_track`` (zero-lag One-Euro on the joints, a Whittaker smoother on the
  pelvis path), on each segment of present frames.
* 2D: One-Euro in pixels, with the speed converted to metres/s at the person's depth.
* Bone lengths: each bone's median length over the valid frames, every frame rebuilt from the
  root outward (``filters.enforce_bone_lengths``).

Letters: F frames, J joints.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from inference.core.filters import bone_lengths, enforce_bone_lengths, runs, smooth, smooth_track
from inference.stages.types import PersonMotion
from posefile.skeleton import PELVIS


@dataclass(frozen=True)
class SmoothingConfig:
    """The post-process settings of a run (PipelineOptions.smoothing_config())."""

    smoothing: float = 1.0       # 0: off; larger: smoother (divides the filter cutoffs)
    min_cutoff: float = 1.0      # One-Euro min cutoff (Hz) at smoothing 1
    beta: float = 2.0            # One-Euro speed coefficient (1/m) at smoothing 1
    root_cutoff: float = 2.0     # pelvis path's half-power frequency (Hz) at smoothing 1; 0: One-Euro
    bone_lengths: bool = True    # constant bone lengths


def smooth_segment(X: np.ndarray, joints2d: np.ndarray | None, fps: float, K: np.ndarray,
                   cfg: SmoothingConfig, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Smooth one segment of present frames (cfg.smoothing > 0): 3D joints X (F, J, 3) m,
    2D joints (F, J, 2) px or None; valid (F,) marks the frames to use (None: all)."""
    assert cfg.smoothing > 0, cfg
    mc, beta = cfg.min_cutoff / cfg.smoothing, cfg.beta / cfg.smoothing
    cut = cfg.root_cutoff / cfg.smoothing if cfg.root_cutoff > 0 else None
    X = smooth_track(X, fps, mc, beta, cut, root=PELVIS, valid=valid)
    if joints2d is None:
        return X, None
    # 2D in pixels: the speed in metres/s is pixels/s over pixels per metre at the person's
    # depth (f / z).
    ok = np.ones(len(X), bool) if valid is None else np.asarray(valid, bool)
    z = float(np.nanmedian(X[ok][:, :, 2])) if ok.any() else float("nan")
    px_per_m = K[0, 0] / max(z, 0.1) if np.isfinite(z) else K[0, 0]
    return X, smooth(joints2d, fps, mc, beta, speed_scale=px_per_m, valid=valid)


def post_process(motion: PersonMotion, fps: float, K: np.ndarray, cfg: SmoothingConfig,
                 segments: list[tuple[int, int]] | None = None) -> PersonMotion:
    """Smoothing + constant bone lengths of one person; returns a new PersonMotion (same valid).

    motion: joints3d (F, J, 3) m, joints2d (F, J, 2) px or None, valid (F,); K (3, 3) px.
    segments: the [a, b) frame ranges smoothed one by one (default: the runs of valid frames).
    The pipeline passes the runs it lifted: a frame dropped inside one (a non-finite lift) is
    skipped by the filters, and the 2D speed scale stays the whole run's median depth.
    """
    valid = np.asarray(motion.valid, bool)
    j3 = np.array(motion.joints3d, copy=True)
    j2 = None if motion.joints2d is None else np.array(motion.joints2d, copy=True)
    if cfg.smoothing > 0:
        for a, b in (runs(valid) if segments is None else segments):
            if not valid[a:b].any():
                continue
            X, x2 = smooth_segment(j3[a:b], None if j2 is None else j2[a:b], fps, K, cfg, valid=valid[a:b])
            j3[a:b] = X
            if j2 is not None:
                j2[a:b] = x2
    if cfg.bone_lengths and valid.any():
        j3[valid] = enforce_bone_lengths(j3[valid], bone_lengths(j3, valid))
    return dataclasses.replace(motion, joints3d=j3, joints2d=j2)
