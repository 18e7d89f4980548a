"""Left/right flicker: keep each limb pair's sides continuous over a person's track (pure numpy).

A pose network decides left from right in every frame on its own, and in side views or fast
motion it flips a pair (both knees, both wrists) for a frame or a few. Smoothing then blends
the two limbs into one, and the 3D lift swings a leg through the body. Over a track the flip is
plain: the flipped frames jump to the other limb and back. Per left/right pair this module picks,
for every frame, "as the network said" or "swapped" by Viterbi over the track: each frame costs
the squared steps of the pair's two joints from the previous frame (in person sizes), and each
frame swapped against the network costs ``4 d^2 / (max_flip_s * fps)``, d the pair's separation
in that frame. A flip of n frames costs about 4 d^2 in steps (two jumps of both joints across
d) and n times the swap cost if undone, so flips up to about ``max_flip_s`` are undone whatever
the separation, while a pair the network labels the other way for longer is left as it is: then
the network is more likely right (the person turned), or at least consistent. Where the two
joints meet (a real crossing) both labellings cost the same and the network's is kept.

Letters: F frames, J joints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posefile.skeleton import FLIP_PAIRS


@dataclass(frozen=True)
class SideConfig:
    max_flip_s: float = 0.25    # flips up to about this long are undone (see module doc)
    step_cap: float = 1.0       # a joint's step counts at most this (person sizes): outliers
    min_score: float = 0.1      # joints scoring below this do not vote


def _person_size(joints: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """(F,) the longer side of each frame's box of confident joints (1 where none)."""
    lo = np.where(ok[..., None], joints, np.inf).min(1)
    hi = np.where(ok[..., None], joints, -np.inf).max(1)
    size = (hi - lo).max(-1)
    return np.where(np.isfinite(size) & (size > 0), size, 1.0)


def side_swaps(joints: np.ndarray, scores: np.ndarray, valid: np.ndarray, fps: float,
               cfg: SideConfig = SideConfig()) -> np.ndarray:
    """Which frames to swap, per left/right pair.

    joints (F, J, 2), scores (F, J), valid (F,), fps the frame rate -> swap (F, len(FLIP_PAIRS))
    bool. Each run of valid frames is decided on its own; invalid frames are never swapped.
    """
    joints = np.asarray(joints, np.float64)
    scores = np.asarray(scores, np.float64)
    valid = np.asarray(valid, bool)
    F = len(valid)
    out = np.zeros((F, len(FLIP_PAIRS)), bool)
    ok = valid[:, None] & (scores >= cfg.min_score) & np.isfinite(joints).all(-1)
    size = _person_size(joints, ok)
    edges = np.flatnonzero(np.diff(np.r_[0, valid.astype(np.int8), 0]))
    for a, b in zip(edges[::2], edges[1::2]):
        if b - a < 2:
            continue
        for k, (r, l) in enumerate(FLIP_PAIRS):
            out[a:b, k] = _viterbi(joints[a:b][:, [r, l]], ok[a:b][:, [r, l]], size[a:b],
                                   4.0 / max(cfg.max_flip_s * fps, 1.0), cfg)
    return out


def _viterbi(xy: np.ndarray, ok: np.ndarray, size: np.ndarray, rate: float, cfg: SideConfig) -> np.ndarray:
    """xy (F, 2, 2) one pair's joints (right, left), ok (F, 2), size (F,), rate: swap cost per
    unit of squared separation -> (F,) bool swapped."""
    F = len(xy)
    states = np.stack([xy, xy[:, ::-1]], 1)                   # (F, 2 states, 2 joints, 2)
    sok = np.stack([ok, ok[:, ::-1]], 1)                     # (F, 2, 2)
    sep = np.linalg.norm(xy[:, 0] - xy[:, 1], axis=-1) / size
    sep = np.where(ok.all(1) & np.isfinite(sep), np.minimum(sep, cfg.step_cap), 0.0)
    # swapping against the network costs; a hair more than nothing where the joints meet
    swap_cost = rate * sep ** 2 + 1e-6
    back = np.zeros((F, 2), np.int8)
    total = np.array([0.0, swap_cost[0]])
    for t in range(1, F):
        scale = 0.5 * (size[t] + size[t - 1])
        # step (prev state i -> state s): both joints' moves, each capped, squared
        d = np.linalg.norm(states[t][None, :] - states[t - 1][:, None], axis=-1) / scale   # (2, 2, 2)
        w = sok[t][None, :] & sok[t - 1][:, None]
        step = (np.minimum(d, cfg.step_cap) ** 2 * w).sum(-1)                                # (i, s)
        cand = total[:, None] + step
        back[t] = cand.argmin(0)
        total = cand.min(0) + np.array([0.0, swap_cost[t]])
    path = np.zeros(F, np.int8)
    path[-1] = int(total.argmin())
    for t in range(F - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path.astype(bool)


def apply_swaps(joints: np.ndarray, scores: np.ndarray, swap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Swap each pair's left and right where swap (F, pairs) says. Returns new arrays."""
    joints, scores = np.array(joints, copy=True), np.array(scores, copy=True)
    for k, (r, l) in enumerate(FLIP_PAIRS):
        f = swap[:, k]
        joints[f, r], joints[f, l] = joints[f, l].copy(), joints[f, r].copy()
        scores[f, r], scores[f, l] = scores[f, l].copy(), scores[f, r].copy()
    return joints, scores
