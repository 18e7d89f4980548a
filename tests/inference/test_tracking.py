"""Tracking: assignment optimality, ids through crossings and occlusions, gap filling."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from inference.stages.tracking import dense_track, fill_gaps, person_track2d, linear_assignment, pose_box, suppress_duplicates, Tracker, TrackerConfig

# A standing person of height ~100 px around the origin (MPII order).
TEMPLATE = np.array([
    [-10, 50], [-10, 25], [-10, 0], [10, 0], [10, 25], [10, 50],
    [0, 0], [0, -30], [0, -38], [0, -50],
    [-28, 0], [-24, -15], [-14, -30], [14, -30], [24, -15], [28, 0]], np.float64)


def person(x, y, scale=1.0, rng=None, noise=0.0):
    j = TEMPLATE * scale + np.array([x, y])
    if rng is not None:
        j = j + rng.normal(0, noise, j.shape)
    return j


def brute_force(cost):
    n, m = cost.shape
    best = np.inf
    if n <= m:
        for perm in itertools.permutations(range(m), n):
            best = min(best, cost[np.arange(n), list(perm)].sum())
    else:
        for perm in itertools.permutations(range(n), m):
            best = min(best, cost[list(perm), np.arange(m)].sum())
    return best


@pytest.mark.parametrize("shape", [(1, 1), (3, 3), (4, 6), (6, 4), (5, 5), (2, 7)])
def test_assignment_is_optimal(shape):
    rng = np.random.default_rng(sum(shape))
    for _ in range(20):
        cost = rng.uniform(0, 10, shape)
        if rng.random() < 0.3:
            cost = np.round(cost)  # ties
        rows, cols = linear_assignment(cost)
        assert len(rows) == min(shape)
        assert len(set(rows)) == len(rows) and len(set(cols)) == len(cols)
        assert cost[rows, cols].sum() == pytest.approx(brute_force(cost))


def test_assignment_empty():
    r, c = linear_assignment(np.zeros((0, 3)))
    assert len(r) == len(c) == 0


def _run(frames_people):
    """frames_people: list over frames of list of (label, joints). Returns {label: set of ids}."""
    tr = Tracker()
    seen = {}
    for f, people in enumerate(frames_people):
        if not people:
            tr.update(f, np.zeros((0, 16, 2)), np.zeros((0, 16)))
            continue
        labels = [p[0] for p in people]
        joints = np.stack([p[1] for p in people])
        ids = tr.update(f, joints, np.full(joints.shape[:2], 0.9))
        for lab, i in zip(labels, ids):
            seen.setdefault(lab, []).append(int(i))
    return seen, tr


def test_ids_survive_crossing_paths_and_occlusion():
    rng = np.random.default_rng(0)
    frames = []
    for f in range(50):
        xa = 40 + 10 * f          # A walks right
        xb = 520 - 10 * f         # B walks left; they meet at f = 24
        people = [("A", person(xa, 200, 1.0, rng, 1.5))]
        if not 21 <= f <= 26:     # B is hidden behind A while they cross
            people.append(("B", person(xb, 208, 0.9, rng, 1.5)))
        frames.append(people[::-1] if f % 2 else people)  # detection order must not matter
    seen, tr = _run(frames)
    assert len(set(seen["A"])) == 1, seen["A"]
    assert len(set(seen["B"])) == 1, seen["B"]
    assert seen["A"][0] != seen["B"][0]
    assert len(tr.all_tracks()) == 2


def test_ids_survive_crossing_while_both_visible():
    rng = np.random.default_rng(1)
    frames = []
    for f in range(40):
        frames.append([("A", person(100 + 8 * f, 200, 1.0, rng, 1.0)),
                       ("B", person(420 - 8 * f, 215, 1.1, rng, 1.0))])
    seen, _ = _run(frames)
    assert len(set(seen["A"])) == 1 and len(set(seen["B"])) == 1
    assert seen["A"][0] != seen["B"][0]


def test_long_absence_gets_new_id_and_new_person_new_id():
    frames = [[("A", person(100, 100))] for _ in range(5)] + [[] for _ in range(30)]
    frames += [[("A", person(100, 100)), ("C", person(400, 100))] for _ in range(3)]
    seen, _ = _run(frames)
    assert len(set(seen["A"])) == 2          # memory is max_age (15) frames
    assert not set(seen["C"]) & set(seen["A"])


def test_proposals_follow_velocity():
    tr = Tracker()
    for f in range(5):
        tr.update(f, person(100 + 10 * f, 50)[None], np.full((1, 16), 0.9))
    (tid, box), = tr.proposals(6)
    assert box[0] == pytest.approx(160, abs=1.0)   # 100 + 10 * 6
    assert box[2] == pytest.approx(100, abs=2.0)   # joints' box: 100 px tall
    assert tr.proposals(6 + 10) == []               # too old to propose


def test_unusable_pose_gets_no_id():
    tr = Tracker()
    scores = np.zeros((1, 16))
    scores[0, 0] = 0.9
    assert tr.update(0, person(0, 0)[None], scores)[0] == -1


def test_suppress_duplicates():
    a = person(100, 100)
    b = a + 2.0                   # same person, second crop
    c = person(300, 100)
    s = np.full((3, 16), 0.8)
    s[1] = 0.9
    keep = suppress_duplicates(np.stack([a, b, c]), s)
    assert keep.tolist() == [1, 2]


def test_fill_gaps_interpolates_short_gaps_only():
    F = 20
    t = np.arange(F, dtype=np.float32)
    joints = np.stack([t, 2 * t], -1)[:, None, :].repeat(16, 1)   # linear motion
    scores = np.full((F, 16), 0.8, np.float32)
    valid = np.ones(F, bool)
    valid[5:8] = False        # 3-frame gap: filled
    valid[11:17] = False      # 6-frame gap: kept
    jn = np.where(valid[:, None, None], joints, np.nan)
    j2, s2, v2, filled = fill_gaps(jn, np.where(valid[:, None], scores, 0), valid, max_gap=4)
    assert filled.tolist() == [5 <= f < 8 for f in range(F)]
    assert v2[5:8].all() and not v2[11:17].any()
    np.testing.assert_allclose(j2[5:8], joints[5:8], atol=1e-5)
    np.testing.assert_allclose(s2[5:8], 0.4, atol=1e-6)


def test_dense_track_and_pose_box():
    tr = Tracker()
    for f in (3, 4, 6):
        tr.update(f, person(50, 50)[None], np.full((1, 16), 0.9))
    (track,) = tr.all_tracks()
    joints, scores, valid = dense_track(track, 2, 6, 16)
    assert valid.tolist() == [False, True, True, False, True, False]
    assert np.isnan(joints[0]).all() and (scores[0] == 0).all()
    box = pose_box(person(50, 50), np.full(16, 0.9))
    np.testing.assert_allclose(box, [50, 50, 100], atol=1e-4)
    # What lifting takes: the same, with the 1-frame dropout at 5 filled.
    p2d = person_track2d(track, 2, 6, 16, max_gap=1)
    assert p2d.valid.tolist() == [False, True, True, True, True, False]
    assert p2d.filled.tolist() == [False, False, False, True, False, False]
    assert p2d.joints.shape == (6, 16, 2) and p2d.scores.shape == (6, 16)


def test_unmatched_pose_from_a_proposed_crop_starts_no_track():
    tr = Tracker()
    tr.update(0, person(100, 100)[None], np.full((1, 16), 0.9))
    far = person(400, 100)[None]
    ids = tr.update(1, np.concatenate([person(102, 100)[None], far]), np.full((2, 16), 0.9),
                    may_start=np.array([False, False]))
    assert ids[0] == 0 and ids[1] == -1 and len(tr.all_tracks()) == 1


def test_weak_pose_does_not_drag_the_crop():
    tr = Tracker()
    tr.update(0, person(100, 100)[None], np.full((1, 16), 0.9))
    weak = np.full((1, 16), 0.05)
    weak[0, [6, 7, 8]] = 0.9               # only 3 joints seen, squeezed together
    squeezed = person(100, 100, scale=0.3)[None]
    tr.update(1, squeezed, weak)
    (_, box), = tr.proposals(2)
    assert box[2] == pytest.approx(100, abs=1) and abs(box[0] - 100) < 1


def test_crop_shrinks_no_faster_than_min_shrink():
    # Poses that cover less and less of the person (a crop that lost the legs, then the torso)
    # must not pull the crop down with them faster than a person's image can shrink.
    factor = 0.5 ** (1 / 30)                  # at most halves per second at 30 fps
    tr, free = Tracker(TrackerConfig(min_shrink=factor)), Tracker()
    for f in range(30):
        pose = person(100, 100, scale=0.9 ** f)[None]
        for t in (tr, free):                  # each pose came from the track's own crop (hint)
            assert t.update(f, pose, np.full((1, 16), 0.9), hint=np.array([0]))[0] == 0
    (_, box), = tr.proposals(30)
    (_, loose), = free.proposals(30)
    assert box[2] == pytest.approx(100 * factor ** 29, rel=0.02)   # held at the floor: ~50 px
    assert loose[2] < 0.5 * box[2]                                  # without the floor it collapses


def test_duplicates_by_box():
    a = person(100, 100)
    b = person(104, 98) + np.random.default_rng(0).normal(0, 12, a.shape)  # same person, noisy pose
    keep = suppress_duplicates(np.stack([a, b]), np.full((2, 16), 0.8))
    assert len(keep) == 1


def test_a_crop_on_part_of_a_person_is_a_duplicate_but_a_child_in_front_is_not():
    full = person(100, 100)
    # an upper-body crop: arms, head and hips right, the legs folded up into the torso
    part = full.copy()
    part[[0, 1, 4, 5, 9]] = full[[12, 12, 13, 13, 8]] + np.array([0.0, 5.0])
    part[[10, 15]] = full[[7, 7]]
    s = np.full((2, 16), 0.8)
    s[1] = 0.7
    from inference.stages.tracking import pose_distance
    assert pose_distance(part, s[1], full, s[0], pose_box(part, s[1])[2]) > 0.15   # not the old rule
    assert suppress_duplicates(np.stack([full, part]), s).tolist() == [0]
    # a child standing in front of an adult, feet level: their boxes nest and the legs meet,
    # but fewer than 5 joints coincide, so both stay
    child = person(100, 120, scale=0.5)
    assert suppress_duplicates(np.stack([full, child]), np.full((2, 16), 0.8)).tolist() == [0, 1]


def test_lost_person_ends_the_track_and_its_weak_tail_is_cut():
    from inference.stages.tracking import TrackerConfig

    def run(tail_score):
        tr = Tracker(TrackerConfig(lost_window=10, lost_score=0.5, lost_ratio=0.8))
        ids = []
        for f in range(60):
            s = 0.75 if f < 30 else tail_score          # the crop drifts onto background at 30
            # as in the pipeline, only poses that pass the start gate may start a track
            ids.append(int(tr.update(f, person(100 + f, 100)[None], np.full((1, 16), s),
                                     may_start=np.array([s >= 0.5]))[0]))
        return tr, ids

    tr, ids = run(0.4)
    (t,) = tr.all_tracks()
    assert t.frames == list(range(30)) and tr.lost == 1 and not tr.tracks
    assert ids[:35] == [0] * 35 and ids[35:] == [-1] * 25    # ended once most of the last 10 were weak
    # a dip that stays above the lost score (a person turning away, say) keeps the track
    tr, ids = run(0.55)
    assert tr.lost == 0 and set(ids) == {0} and len(tr.all_tracks()[0].frames) == 60
    # off by default
    plain = Tracker()
    for f in range(60):
        plain.update(f, person(100, 100)[None], np.full((1, 16), 0.75 if f < 30 else 0.3))
    assert plain.lost == 0 and len(plain.all_tracks()[0].frames) == 60


def test_a_track_weak_from_its_start_ends_below_the_floor():
    from inference.stages.tracking import TrackerConfig

    def run(floor):
        tr = Tracker(TrackerConfig(lost_window=10, lost_score=0.5, lost_floor=floor))
        for f in range(60):
            s = 0.55 if f == 0 else 0.38      # passes the gate once, then weak: no drop to compare with
            tr.update(f, person(100, 100)[None], np.full((1, 16), s), may_start=np.array([s >= 0.5]))
        return tr

    tr = run(0.8)
    assert tr.lost == 1 and tr.all_tracks()[0].frames == [0]   # the weak frames are cut off
    assert run(0.0).lost == 0


def test_lost_person_compares_with_recent_history_only():
    from inference.stages.tracking import TrackerConfig

    def run(history):
        tr = Tracker(TrackerConfig(lost_window=5, lost_score=0.5, lost_ratio=0.8, lost_history=history))
        for f in range(200):
            # sharp for 100 frames, then dimmer for 40 (far away, say), then a little dimmer still
            s = 0.9 if f < 100 else 0.55 if f < 140 else 0.45
            tr.update(f, person(100, 100)[None], np.full((1, 16), s))
        return tr

    # against the last 20 observations (0.55) the final dip is not a loss...
    assert run(4).lost == 0
    # ...against the sharp start it would be (history long enough to reach back there), and all
    # of the dim part would be cut as the weak tail
    lost = run(40)
    assert lost.lost == 1 and lost.all_tracks()[0].frames[-1] == 99


def test_the_same_person_read_mirrored_is_one_person():
    """A back view read as a front view relabels every left/right pair: still the same person for
    duplicate suppression and for the tracker (one id through a frame read mirrored)."""
    from posefile.skeleton import FLIP_PERM
    from inference.stages.tracking import pose_distance, shared_joints

    rng = np.random.default_rng(0)
    front = person(100, 100)
    mirrored = front[FLIP_PERM]                            # the same positions, left and right swapped
    s = np.full(16, 0.8)
    assert pose_distance(front, s, mirrored, s, 100.0) == pytest.approx(0.0)
    assert shared_joints(front, s, mirrored, s, 5.0) == 16
    # another person beside them stays another person
    assert pose_distance(front, s, person(160, 100)[FLIP_PERM], s, 100.0) > 0.5
    # a crop on the upper body that folds the legs up and reads the person mirrored: a duplicate
    # (only the 4 middle joints coincide label by label, too few by themselves)
    upper = front.copy()
    upper[[0, 1, 4, 5, 9]] = front[[12, 12, 13, 13, 8]] + np.array([0.0, 5.0])
    upper[[10, 15]] = front[[7, 7]]
    upper = upper[FLIP_PERM] + rng.normal(0, 1, upper.shape)
    scores = np.stack([s, np.full(16, 0.7)])
    assert suppress_duplicates(np.stack([front, upper]), scores).tolist() == [0]
    # the tracker keeps one id while the network flips the person's sides every few frames
    tr = Tracker()
    ids = [int(tr.update(f, (person(100 + 3 * f, 100) if f % 4 else person(100 + 3 * f, 100)[FLIP_PERM])[None],
                         np.full((1, 16), 0.8))[0]) for f in range(20)]
    assert set(ids) == {0}
