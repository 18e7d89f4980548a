"""The keypoint-format cost evaluation (evaluation/eval_keypoint_formats.py): the face model sits
where a face is, each format's joints map back onto ours, and one held-out clip runs end to end."""
import os

import numpy as np
import pytest

from evaluation import eval_keypoint_formats as ekf
from inference.core.keypoint_formats import JOINT_SETS, to_ours
from posefile.skeleton import JOINT_INDEX as JI


def _standing(F=3, facing_camera=True):
    """A person 4 m in front of the camera (OpenCV frame: y down), facing it or turned away."""
    s = 1.0 if facing_camera else -1.0
    pts = {"r_ankle": (-0.1, 0.9, 0), "l_ankle": (0.1, 0.9, 0), "r_knee": (-0.1, 0.5, 0), "l_knee": (0.1, 0.5, 0),
           "r_hip": (-0.1, 0.0, 0), "l_hip": (0.1, 0.0, 0), "pelvis": (0, 0, 0), "thorax": (0, -0.5, 0),
           "neck": (0, -0.6, 0), "head_top": (0, -0.82, 0), "r_shoulder": (-0.18, -0.5, 0),
           "l_shoulder": (0.18, -0.5, 0), "r_elbow": (-0.2, -0.25, 0), "l_elbow": (0.2, -0.25, 0),
           "r_wrist": (-0.2, 0.0, 0), "l_wrist": (0.2, 0.0, 0)}
    X = np.array([pts[n] for n in JOINT_SETS["ours"]], np.float64)
    X[:, 0] *= s                        # turned away: the person's left is on the camera's left
    X[:, 2] += 4.0
    return np.repeat(X[None], F, 0)


@pytest.mark.parametrize("facing", [True, False])
def test_face_model_is_in_front_of_the_head_and_sides_follow_the_person(facing):
    X = _standing(facing_camera=facing)
    Y = ekf.format_joints_3d(X, "coco17")
    n = JOINT_SETS["coco17"]
    nose, neck = Y[0, n.index("nose")], X[0, JI["neck"]]
    assert (nose[2] < neck[2]) == facing                       # towards the camera when facing it
    l_ear, r_ear = Y[0, n.index("l_ear")], Y[0, n.index("r_ear")]
    assert np.sign(l_ear[0] - r_ear[0]) == np.sign(X[0, JI["l_shoulder"], 0] - X[0, JI["r_shoulder"], 0])
    assert neck[1] > l_ear[1] > X[0, JI["head_top"], 1]         # ears between the upper neck and the top


@pytest.mark.parametrize("name", ekf.FORMATS)
def test_every_format_maps_back_onto_our_joints(name):
    X = _standing()
    Y = ekf.format_joints_3d(X, name)
    js = ekf._joint_set(name)
    assert Y.shape == (3, len(JOINT_SETS[js]), 3)
    j16, s16 = to_ours(Y[..., :2] / Y[..., 2:], np.ones(Y.shape[:2]), js)
    assert (s16 > 0).all()
    mid_hips = 0.5 * (X[:, JI["r_hip"]] + X[:, JI["l_hip"]])
    np.testing.assert_allclose(j16[:, JI["pelvis"]], mid_hips[:, :2] / mid_hips[:, 2:], atol=1e-6)
    head = j16[:, JI["head_top"]] - X[:, JI["head_top"], :2] / X[:, JI["head_top"], 2:]
    assert np.abs(head).max() < 0.02                            # normalised units: ~8 cm at 4 m


def test_one_held_out_clip():
    from data import mocap
    from evaluation.eval_3d import heldout_sequences
    from inference.stages.lifting import Lifter

    if not os.path.exists(mocap.default_data_dir()):
        pytest.skip("shared mocap data not available")
    ms = mocap.load(log=lambda m: None)
    seqs = heldout_sequences(ms, 1, 0, 60, clips=ms.indices("test")[:1])
    lifter = Lifter.load()
    ours = ekf.evaluate(lifter, seqs, "ours", None)
    coco = ekf.evaluate(lifter, seqs, "coco17", None)
    assert ours["frames"] == coco["frames"] == len(seqs[0]["Xc"])
    assert ours["derived_2d_error_px"]["head_top"] == 0 < coco["derived_2d_error_px"]["head_top"]
    assert 0 < ours["mpjpe_mm"] < 200 and 0 < coco["mpjpe_mm"] < 200
    assert coco["mapping"]["pelvis"].startswith("derived")
