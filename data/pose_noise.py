"""Replay a pose network's measured 2D errors on clean projected mocap (pure numpy).

cameras.corrupt_2d is a noise model; this is the real thing: error vectors our own network made
on held-out photographs (evaluation.pose_errors, in units of the person's size), added to the
projection of held-out mocap in the same units, with the raw scores the network gave those
joints.  A network on video makes errors that persist for a few frames (same person, same
look), so each frame takes the errors of one measured person and the person changes every
1..max_hold frames.
"""
from __future__ import annotations

import numpy as np

from inference.core.camera import bbox_area


def fill_unseen(sample: dict, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(err (N, J, 2), raw (N, J)) with each joint the annotation did not see given the error and
    score of that joint in a random person where it was seen."""
    err, raw, vis = sample["err"].copy(), sample["raw"].copy(), sample["visible"]
    for j in range(err.shape[1]):
        seen = np.nonzero(vis[:, j])[0]
        miss = np.nonzero(~vis[:, j])[0]
        if len(miss) and len(seen):
            pick = rng.choice(seen, len(miss))
            err[miss, j], raw[miss, j] = err[pick, j], raw[pick, j]
    return err, raw


def replay_errors(xn: np.ndarray, sample: dict, rng: np.random.Generator, in_image: np.ndarray | None = None,
                  max_hold: int = 10, filled: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """xn (..., T, J, 2) clean normalised 2D (one sequence, or a batch of windows)
    -> (noisy xn, raw scores (..., T, J)).

    sample: pose_errors.load_errors() result. in_image (..., T, J) bool: joints outside the image
    are dropped (score 0, coordinates 0), as the engine's poses never reach beyond the frame.
    filled: fill_unseen(sample, ...) computed once, for many calls."""
    lead, T = xn.shape[:-3], xn.shape[-3]
    err, raw = filled if filled is not None else fill_unseen(sample, rng)
    n_seq = int(np.prod(lead)) if lead else 1
    # person index per frame, constant over runs of 1..max_hold frames
    new = rng.integers(1, max_hold + 1, (n_seq, T)).cumsum(1)
    change = np.zeros((n_seq, T), bool)
    change[:, 0] = True
    for s_ in range(n_seq):
        c = new[s_][new[s_] < T]
        change[s_, c] = True
    run_id = np.cumsum(change, 1) - 1
    picks = rng.integers(0, len(err), (n_seq, T))
    who = np.take_along_axis(picks, run_id, 1).reshape(lead + (T,))
    side = np.sqrt(bbox_area(xn))[..., None, None]
    noisy = xn + err[who] * side
    scores = raw[who].astype(np.float32)
    if in_image is not None:
        scores = np.where(in_image, scores, 0.0).astype(np.float32)
        noisy = np.where(in_image[..., None], noisy, 0.0)
    return noisy, scores
