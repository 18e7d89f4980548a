"""The LSP label audit (data/label_audit.py) on constructed labels, and the shipped audit file."""
from __future__ import annotations

import numpy as np

from data.label_audit import AUDIT_FILE, GROUPS, apply_audit, load_audit, mirrored_groups, upright
from posefile.skeleton import FLIP_PERM, JOINT_INDEX as I, NUM_JOINTS


def person(shift: float = 0.0) -> np.ndarray:
    """A person facing the camera (their right on the image's left), image pixels."""
    xy = np.zeros((NUM_JOINTS, 2))
    for side, sx in (("r", -1), ("l", 1)):
        for part, (dx, y) in {"shoulder": (20, 100), "elbow": (35, 140), "wrist": (45, 180),
                              "hip": (15, 200), "knee": (18, 260), "ankle": (20, 320)}.items():
            xy[I[f"{side}_{part}"]] = (200 + sx * dx + shift, y)
    xy[I["head_top"]], xy[I["neck"]] = (200, 40), (200, 80)
    xy[I["thorax"]], xy[I["pelvis"]] = (200, 100), (200, 200)
    return xy


def test_mirrored_label_is_found_and_a_right_one_is_not():
    label = np.stack([person(), person()[FLIP_PERM]])        # right label, mirrored label
    pred = np.stack([person(2.0), person(2.0)])               # the network sees the same person
    vis = np.ones((2, NUM_JOINTS), bool)
    torso = np.full(2, 100.0)
    g = mirrored_groups(pred, label, vis, torso)
    assert g["legs"].tolist() == [False, True] and g["arms"].tolist() == [False, True]


def test_too_few_visible_joints_or_no_torso_is_never_flagged():
    label = person()[FLIP_PERM][None]
    pred = person()[None]
    vis = np.ones((1, NUM_JOINTS), bool)
    vis[0, list(GROUPS["legs"])[:3]] = False                  # 3 of 6 leg joints left
    g = mirrored_groups(pred, label, vis, np.array([100.0]))
    assert not g["legs"][0] and g["arms"][0]
    g = mirrored_groups(pred, label, np.ones((1, NUM_JOINTS), bool), np.array([np.nan]))
    assert not g["legs"][0] and not g["arms"][0]


def test_apply_audit_swaps_mirrored_and_drops_doubtful_groups():
    names = np.array(["a.jpg", "b.jpg", "c.jpg"])
    joints = np.stack([person(), person(), person()]).astype(np.float32)
    vis = np.ones((3, NUM_JOINTS), bool)
    audit = {"mirrored": ["a.jpg"], "legs": ["b.jpg", "a.jpg"], "arms": [], "held_out_mirrored": ["c.jpg"]}
    j2, v2, counts = apply_audit(names, joints, vis, audit)
    np.testing.assert_array_equal(j2[0], joints[0][FLIP_PERM])
    assert v2[0].all()                                         # fixed, not dropped
    assert not v2[1, list(GROUPS["legs"])].any() and v2[1, list(GROUPS["arms"])].all()
    np.testing.assert_array_equal(j2[2], joints[2])            # held-out lists are never applied
    assert counts == {"swapped": 1, "dropped_groups": 1}
    assert vis.all()                                           # inputs untouched


def test_upright():
    a = person()
    b = a.copy()
    b[:, 1] = 400 - b[:, 1]                                    # upside down
    vis = np.ones((2, NUM_JOINTS), bool)
    assert upright(np.stack([a, b]), vis).tolist() == [True, False]


def test_shipped_audit_file_is_consistent():
    audit = load_audit(AUDIT_FILE)
    train = audit["counts"]["train"]
    assert train["fixed_upright"] == len(audit["mirrored"]) > 0
    assert train["legs_dropped"] == len(audit["legs"]) and train["arms_dropped"] == len(audit["arms"])
    assert all(int(n[2:7]) <= 9000 for n in audit["mirrored"] + audit["legs"] + audit["arms"])
    assert all(int(n[2:7]) > 9000 for n in audit["held_out_mirrored"])
    verdicts = audit["reviewed"]["verdicts"]
    assert set(verdicts.values()) <= {"mirrored", "correct", "cannot tell"}
