"""Where the root lies across the image: from every joint's ray, not the 2D pelvis alone (numpy).

The lifter gives a person's joints relative to the root and the root's depth Z; the root's ray
(its normalised image position) was the 2D pelvis, the midpoint of two hip joints that the pose
network finds worst of all (LSP marks no joint centre there). Every other joint says where the
root must be too: joint j, seen at normalised position x_j and lying rel_j from the root, puts the
root at x_j * (Z + rel_jz) - rel_jx across (and likewise in y). The score-weighted median of those
votes outvotes a misplaced hip, a merged knee or a swapped wrist; the root-relative pose and the
depth are left as they are. The votes only agree when the lifted pose explains the 2D: for a pose
the lifter does not know (a gymnast folded in two, lifted as someone upright) they drag the root
along the body, so where they scatter the 2D root takes over.

Held out (``python -m evaluation.eval_3d``, mocap seen through the balanced network's replayed
errors, the engine's smoothing after): root lateral error 141 -> 126 mm; on real photographs the
root stays about where the 2D pelvis put it (docs/lifter.md).

Letters: F frames, J joints.
"""
from __future__ import annotations

import numpy as np

MIN_JOINTS = 3   # fewer scored joints than this: keep the 2D root's ray (nothing to outvote)
# The votes' spread: the weighted median distance from their median, over the lifted pose's largest
# joint distance from the root. On the lifter's validation clips (training-side mocap it was not
# trained on) through the balanced network's errors its median is 0.09, 75th percentile 0.13; on
# the photographs of evaluation.eval_video its median is 0.22 (poses the lifter does not know).
# Full trust in the votes up to SPREAD_FULL, none from SPREAD_NONE, linear between; chosen among
# (0.09, 0.23), (0.09, 0.15), (0.05, 0.12) on eval_video's 80 clips of seed 1 as the one that does
# not move the root off the photographs' annotated mid-hips (root_pck 70.6 against 70.9% for the
# 2D pelvis; 67.2 and 68.7 for the others) while keeping most of the mocap gain (docs/lifter.md).
SPREAD_FULL = 0.05
SPREAD_NONE = 0.12


def _lower_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    order = np.argsort(values, axis=1)
    v = np.take_along_axis(values, order, 1)
    cw = np.cumsum(np.take_along_axis(weights, order, 1), 1)
    total = cw[:, -1:]
    mid = np.minimum((cw < 0.5 * total).sum(1), values.shape[1] - 1)
    return np.where(total[:, 0] > 0, v[np.arange(len(v)), mid], np.nan)


def weighted_median(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(F, J) values and weights >= 0 -> (F,) each row's weighted median, the mean of the lower
    and the upper one where the weights split evenly (so a mirrored input gives the mirrored
    answer); NaN where a row's weights are all 0."""
    return 0.5 * (_lower_median(values, weights) - _lower_median(-values, weights))


def root_from_rays(rel: np.ndarray, z: np.ndarray, xn: np.ndarray, scores: np.ndarray,
                   fallback: np.ndarray) -> np.ndarray:
    """The root's normalised image position (F, 2) that the joints' rays agree on.

    rel (F, J, 3) joints relative to the root (metres, camera axes), z (F,) root depth, xn (F, J, 2)
    normalised 2D joints, scores (F, J) (0 = missing), fallback (F, 2) the 2D root, kept in frames
    with fewer than MIN_JOINTS scored joints or a joint at or behind the camera, and blended in
    where the votes disagree (SPREAD_FULL, SPREAD_NONE).
    """
    rel, xn, s = np.asarray(rel, np.float64), np.asarray(xn, np.float64), np.asarray(scores, np.float64)
    w = np.where(s > 0, s, 0.0)
    z = np.asarray(z, np.float64)
    depth = z[:, None] + rel[..., 2]                                  # (F, J) each joint's depth
    ok = ((w > 0).sum(1) >= MIN_JOINTS) & (depth > 0).all(1) & (z > 0)
    out = np.array(fallback, np.float64, copy=True)
    if not ok.any():
        return out
    votes = np.stack([xn[..., a] * depth - rel[..., a] for a in (0, 1)], -1)   # (F, J, 2) metres
    med = np.stack([weighted_median(votes[ok][..., a], w[ok]) for a in (0, 1)], -1)
    # How well the lifted pose explains the 2D: the votes' spread over the pose's size. Where they
    # disagree (a pose the lifter does not know), the 2D root is the safer anchor.
    spread = weighted_median(np.linalg.norm(votes[ok] - med[:, None], axis=-1), w[ok])
    spread = spread / np.maximum(np.linalg.norm(rel[ok], axis=-1).max(1), 1e-6)
    trust = np.clip((SPREAD_NONE - spread) / (SPREAD_NONE - SPREAD_FULL), 0.0, 1.0)
    trust = np.where(np.isfinite(med).all(1) & np.isfinite(trust), trust, 0.0)[:, None]
    out[ok] = trust * np.nan_to_num(med) / z[ok, None] + (1.0 - trust) * out[ok]
    return out
