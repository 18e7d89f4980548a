"""Left/right flicker (inference/core/sides.py): short flips are undone, lasting ones and real
crossings are left alone."""
from __future__ import annotations

import numpy as np

from inference.core.sides import apply_swaps, side_swaps
from posefile.skeleton import FLIP_PAIRS, JOINT_INDEX as I, NUM_JOINTS

KNEES = [k for k, (r, l) in enumerate(FLIP_PAIRS) if r == I["r_knee"]][0]


def walker(F: int = 60) -> np.ndarray:
    """(F, J, 2) a person 200 px tall walking right at 3 px a frame, side view: the legs swing
    back and forth (cross every 15 frames), everything else rigid."""
    t = np.arange(F)
    xy = np.zeros((F, NUM_JOINTS, 2))
    base = {"head_top": (0, -100), "neck": (0, -75), "thorax": (0, -65), "pelvis": (0, 0),
            "r_shoulder": (-3, -65), "l_shoulder": (3, -65), "r_elbow": (-3, -35), "l_elbow": (3, -35),
            "r_wrist": (-3, -10), "l_wrist": (3, -10), "r_hip": (-3, 0), "l_hip": (3, 0),
            "r_knee": (0, 50), "l_knee": (0, 50), "r_ankle": (0, 100), "l_ankle": (0, 100)}
    for name, (x, y) in base.items():
        xy[:, I[name]] = np.stack([200 + 3 * t + x, 300 + np.full(F, y)], -1)
    swing = 25 * np.sin(2 * np.pi * t / 30)
    for side, sgn in (("r", 1), ("l", -1)):
        xy[:, I[f"{side}_knee"], 0] += sgn * 0.5 * swing
        xy[:, I[f"{side}_ankle"], 0] += sgn * swing
    return xy


def flip(xy: np.ndarray, frames, pair: int) -> np.ndarray:
    out = xy.copy()
    r, l = FLIP_PAIRS[pair]
    out[frames, r], out[frames, l] = xy[frames, l], xy[frames, r]
    return out


def test_a_short_flip_is_undone_and_real_crossings_stay():
    xy = walker()
    scores = np.full(xy.shape[:2], 0.8)
    valid = np.ones(len(xy), bool)
    assert not side_swaps(xy, scores, valid, 30.0).any()          # the legs cross, nothing is swapped
    noisy = flip(xy, [20, 21, 22], KNEES)                    # knees flipped for 0.1 s at full swing
    swap = side_swaps(noisy, scores, valid, 30.0)
    assert swap[:, KNEES].tolist() == [f in (20, 21, 22) for f in range(len(xy))]
    assert not np.delete(swap, KNEES, axis=1).any()
    fixed, fixed_scores = apply_swaps(noisy, scores, swap)
    np.testing.assert_array_equal(fixed, xy)


def test_a_lasting_relabel_is_left_to_the_network():
    xy = flip(walker(), slice(30, 60), KNEES)                # the network calls them the other way from 30 on
    swap = side_swaps(xy, np.full(xy.shape[:2], 0.8), np.ones(60, bool), 30.0)
    assert not swap.any()


def test_invalid_frames_and_weak_joints():
    xy = walker()
    noisy = flip(xy, [20, 21], KNEES)
    valid = np.ones(60, bool)
    valid[40:] = False
    xy_nan = noisy.copy()
    xy_nan[~valid] = np.nan
    swap = side_swaps(xy_nan, np.full(xy.shape[:2], 0.8), valid, 30.0)
    assert swap[20:22, KNEES].all() and not swap[~valid].any()
    # knees too weak to vote: nothing to go on, the network's labels stay
    scores = np.full(xy.shape[:2], 0.8)
    scores[:, [I["r_knee"], I["l_knee"]]] = 0.05
    assert not side_swaps(noisy, scores, np.ones(60, bool), 30.0)[:, KNEES].any()
