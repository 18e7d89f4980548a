"""Joint scores in the lifter's convention (pure numpy).

The lifter is trained on 2D whose scores say how far each joint is off (cameras.corrupt_2d):
score = 1 - SCORE_PER_ERROR x (error / person size), clipped to [SCORE_MIN, 1].  A pose network's
own scores are heatmap peaks, whose scale depends on the network and on how long it trained.
A calibration measured on held-out images (``evaluation.pose_errors``) maps a network's raw score
to the score of the lifter's convention for the median error seen at that raw score, so the
lifter trusts each joint as much as it deserves.  Missing joints (score 0) stay 0.
"""
from __future__ import annotations

import numpy as np

SCORE_PER_ERROR = 2.5     # score lost per unit of error / person size (the training convention)
SCORE_MIN = 0.05          # lowest score of a joint that is present


def lifter_score(rel_error: np.ndarray, jitter: np.ndarray | float = 0.0) -> np.ndarray:
    """Score in the lifter's convention for joint errors in units of the person's size."""
    return np.clip(1.0 - SCORE_PER_ERROR * np.asarray(rel_error) + jitter, SCORE_MIN, 1.0)


def fit(raw: np.ndarray, rel_error: np.ndarray, bins: int = 12) -> dict:
    """Monotone table raw score -> lifter score from joints whose error is known.

    raw, rel_error: (n,) flat arrays (visible joints only). The raw scores are cut into quantile
    bins; each bin's median error gives its lifter score, placed at the bin's median raw score; the
    table is made non-decreasing (a higher peak never means a less trusted joint).
    """
    raw = np.asarray(raw, np.float64).ravel()
    err = np.asarray(rel_error, np.float64).ravel()
    ok = np.isfinite(raw) & np.isfinite(err)
    raw, err = raw[ok], err[ok]
    if len(raw) < 10 * bins:
        raise ValueError(f"score calibration needs at least {10 * bins} joints, got {len(raw)}")
    edges = np.quantile(raw, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, raw, side="right") - 1, 0, bins - 1)
    xs, ys = [], []
    for b in range(bins):
        sel = which == b
        if sel.sum() == 0:
            continue
        xs.append(float(np.median(raw[sel])))
        ys.append(float(lifter_score(np.median(err[sel]))))
    xs, ys = np.array(xs), np.maximum.accumulate(np.array(ys))
    keep = np.concatenate([[True], np.diff(xs) > 1e-6])   # np.interp needs increasing knots
    return {"raw": [round(float(v), 4) for v in xs[keep]], "score": [round(float(v), 4) for v in ys[keep]],
            "per_error": SCORE_PER_ERROR}


def apply(table: dict | None, raw: np.ndarray) -> np.ndarray:
    """Raw scores (any shape) -> lifter scores; 0 (missing) stays 0, no table = unchanged."""
    raw = np.asarray(raw, np.float64)
    if not table:
        return raw.copy()
    out = np.interp(raw, np.asarray(table["raw"], np.float64), np.asarray(table["score"], np.float64))
    return np.where(raw > 0, np.clip(out, SCORE_MIN, 1.0), 0.0)
