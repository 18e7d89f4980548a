"""evaluation/eval_floor.py: its ground-truth contacts and sliding on a known motion, and one run on
held-out mocap with the shipped lifter and our network's replayed errors (slow)."""
import json
import os

import numpy as np
import pytest

from evaluation import eval_floor


def test_true_contacts_and_sliding_of_a_stepping_foot():
    """Both ankles of a camera-frame person: the right one rests, steps forward 0.4 m in 10
    frames, rests again; the left one rests throughout."""
    F, fps = 40, 30.0
    R = np.array([[1.0, 0, 0], [0, -1, 0], [0, 0, -1]])       # world (Y up) -> camera; C at 1.5 m
    C = np.array([0.0, 1.5, 0.0])
    W = np.zeros((F, 16, 3))
    W[:, 0] = [0.1, 0.09, -5.0]
    W[:, 5] = [-0.1, 0.09, -5.0]
    step = np.clip((np.arange(F) - 15) / 10.0, 0, 1)
    W[:, 0, 2] -= 0.4 * step
    W[:, 0, 1] += 0.15 * np.sin(np.pi * step)
    Xc = (W - C) @ R.T
    tc = eval_floor.true_contacts(Xc, R, C, fps)
    assert tc[:, 1].all()
    assert tc[:14, 0].all() and tc[27:, 0].all() and not tc[18:23, 0].any()
    A = Xc[:, [0, 5]]
    assert eval_floor.sliding(A[:, 0], tc[:, 0]).max() < 0.02     # no travel while in contact
    noisy = A[:, 1] + np.random.default_rng(0).normal(0, 0.01, A[:, 1].shape)
    assert 0.01 < eval_floor.sliding(noisy, tc[:, 1]).mean() < 0.03


@pytest.mark.slow
def test_one_held_out_clip(tmp_path):
    from data import mocap
    from evaluation.eval_3d import DEFAULT_POSE_ERRORS, heldout_sequences
    from evaluation.pose_errors import load_errors
    from inference.stages.lifting import Lifter

    if not os.path.exists(mocap.default_data_dir()):
        pytest.skip("shared mocap data not available")
    ms = mocap.load(log=lambda m: None)
    seqs = heldout_sequences(ms, 1, 0, 150, clips=ms.indices("test")[:2])
    with open(DEFAULT_POSE_ERRORS.replace("_errors.npz", ".json")) as f:
        table = json.load(f)["score_calibration"]
    res = eval_floor.evaluate(Lifter.load(), seqs, load_errors(DEFAULT_POSE_ERRORS), table)
    assert sum(res["status"].values()) == len(seqs) == 2 and res["frames"] == sum(len(s["Xc"]) for s in seqs)
    assert res["root_without_floor"]["depth_pct"] > 0 and res["floor_ms_per_frame"] > 0
    md = eval_floor.to_markdown({"command": "x", "sequences": 2, "clips": 2, "cams_per_clip": 1, "seed": 0,
                                 "pose_errors": "p", "pose_net_2d_engine": res})
    assert "| all |" in md
