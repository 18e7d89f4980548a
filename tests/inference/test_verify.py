"""Person verification (inference.stages.verify): ghosts dropped, people kept, drift cut off."""
from __future__ import annotations

import numpy as np

from inference.stages.tracking import Track
from inference.stages.verify import VerifyConfig, strong_stretches, verify_tracks

J = 16
CFG = VerifyConfig(confirm_score=0.376, confirm_frames=6, weak_score=0.376, weak_frames=15)


def track(tid: int, mean_scores, start: int = 0, x0: float = 100.0) -> Track:
    """A walking person (a 200 px tall stick figure moving right) whose joint scores average
    ``mean_scores`` per frame."""
    rng = np.random.default_rng(tid)
    base = np.stack([np.zeros(J), np.linspace(0, 200, J)], -1)
    frames, poses, confs, means = [], [], [], []
    for k, m in enumerate(mean_scores):
        frames.append(start + k)
        poses.append((base + [x0 + 3 * k, 100.0]).astype(np.float32))
        c = np.clip(m + rng.normal(0, 0.05, J), 0, 1)
        c += m - c.mean()
        confs.append(c.astype(np.float32))
        means.append(float(c.mean()))
    return Track(id=tid, last_frame=frames[-1], joints=poses[-1], scores=confs[-1],
                 centre=np.array([x0, 200.0]), size=200.0, frames=frames, poses=poses,
                 confs=confs, mean_confs=means)


def test_ghost_dropped_person_kept():
    person = track(0, np.full(40, 0.65))
    ghost = track(1, np.full(40, 0.3), x0=600)           # a skeleton on the background: always weak
    # a ghost with a few lucky poses above the bar, fewer than confirm_frames
    lucky = track(2, np.r_[np.full(20, 0.3), np.full(4, 0.55), np.full(16, 0.3)], x0=900)
    # a ghost that passes the bar often, but less than half of the time
    flicker = track(4, np.tile([0.42, 0.2, 0.25], 14), x0=300)
    weak_person = track(3, np.full(30, 0.43), x0=1200)   # scores low, but steadily like a person
    v = verify_tracks([person, ghost, lucky, flicker, weak_person], CFG)
    assert [t.id for t in v.kept] == [0, 3]
    assert v.kept[0] is person
    assert v.dropped == 3 and v.dropped_frames == 80 + 42


def test_person_partly_hidden_for_a_moment_stays_whole():
    s = np.r_[np.full(30, 0.6), np.full(10, 0.3), np.full(30, 0.6)]   # 10 weak < weak_frames
    v = verify_tracks([track(5, s)], CFG)
    assert len(v.kept) == 1 and len(v.kept[0].frames) == 70 and v.dropped == 0


def test_drift_onto_background_is_cut_and_dropped():
    # a real person for 40 frames, then the track follows its own weak poses for 30 frames
    s = np.r_[np.full(40, 0.62), np.full(30, 0.25)]
    v = verify_tracks([track(3, s)], CFG)
    assert len(v.kept) == 1
    kept = v.kept[0]
    assert kept.id == 3 and kept.frames == list(range(40)) and len(kept.poses) == 40
    assert v.dropped_frames == 30
    np.testing.assert_allclose(kept.joints, kept.poses[-1])


def test_real_person_after_a_long_weak_stretch_gets_a_new_id():
    s = np.r_[np.full(30, 0.62), np.full(20, 0.2), np.full(30, 0.7)]
    v = verify_tracks([track(7, s), track(2, np.full(10, 0.6))], CFG)
    ids = sorted(t.id for t in v.kept)
    assert ids == [2, 7, 8]                         # the second piece gets a fresh id
    second = [t for t in v.kept if t.id == 8][0]
    assert second.frames[0] == 50 and len(second.frames) == 30


def test_strong_stretches_edges():
    assert strong_stretches(np.full(20, 0.1), CFG) == []
    assert strong_stretches(np.full(5, 0.9), CFG) == [(0, 5)]
    assert strong_stretches(np.r_[np.full(16, 0.1), np.full(5, 0.9)], CFG) == [(16, 21)]


def test_thresholds_from_the_shipped_manifest_gate():
    import json
    from pathlib import Path
    gate = json.loads((Path(__file__).resolve().parents[2] / "weights" / "pose_balanced.json")
                      .read_text())["gate"]
    cfg = VerifyConfig.from_gate(gate, fps=30.0)
    assert cfg.confirm_score == cfg.weak_score == gate["start_score"]
    assert cfg.confirm_frames == 6 and cfg.weak_frames == 15
    assert VerifyConfig.from_gate(None, fps=30.0).confirm_score == VerifyConfig().confirm_score
