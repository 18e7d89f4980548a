"""PCK and the left/right failure report of eval_2d, on hand-made poses."""
import numpy as np

from evaluation.eval_2d import left_right, pck
from posefile.skeleton import JOINT_INDEX as INDEX, JOINT_NAMES


def _pose():
    """One upright person, 16 joints, image px: torso diagonals 100 px long."""
    p = {"head_top": (50, -20), "neck": (50, 0), "thorax": (50, 10), "r_shoulder": (20, 10),
         "l_shoulder": (80, 10), "r_elbow": (10, 50), "l_elbow": (90, 50), "r_wrist": (0, 90),
         "l_wrist": (100, 90), "pelvis": (50, 90), "r_hip": (30, 90), "l_hip": (70, 90),
         "r_knee": (25, 150), "l_knee": (75, 150), "r_ankle": (20, 210), "l_ankle": (80, 210)}
    gt = np.array([[p[n] for n in JOINT_NAMES]], np.float32)
    d = np.linalg.norm(gt[0, INDEX["r_shoulder"]] - gt[0, INDEX["l_hip"]])
    return gt * (100.0 / d), np.ones((1, len(JOINT_NAMES)), bool)


def test_exact_prediction():
    gt, vis = _pose()
    assert pck(gt, gt, vis)["mean"] == 100.0
    lr = left_right(gt, gt, vis)
    assert lr["pck_side_free"] == 100.0
    assert all(v["merged_%"] == 0 and v["swapped_%"] == 0 for v in lr["pairs"].values())


def test_merged_and_swapped_knees_are_told_apart():
    gt, vis = _pose()
    r, l = INDEX["r_knee"], INDEX["l_knee"]
    merged = gt.copy()
    merged[0, l] = merged[0, r]                          # both knee labels on the right knee
    swapped = gt.copy()
    swapped[0, [r, l]] = gt[0, [l, r]]
    a, b = left_right(merged, gt, vis), left_right(swapped, gt, vis)
    assert a["pairs"]["knee"] == {"images": 1, "merged_%": 100.0, "swapped_%": 0.0}
    assert b["pairs"]["knee"] == {"images": 1, "merged_%": 0.0, "swapped_%": 100.0}
    # a swap costs both knees, a merge one; with the sides free the swap costs nothing
    assert round(pck(swapped, gt, vis)["mean"], 2) == round(100 * 12 / 14, 2)
    assert round(pck(merged, gt, vis)["mean"], 2) == round(100 * 13 / 14, 2)
    assert b["pck_side_free"] == 100.0 and a["pck_side_free"] == round(100 * 13 / 14, 2)


def test_a_mirrored_body_is_read_as_turned():
    """Every left/right label swapped: the person faces the camera, the prediction faces away;
    the facing sign does not change when the whole picture is turned upside down."""
    from evaluation.eval_2d import facing

    gt, vis = _pose()
    mirrored = gt.copy()
    for name in JOINT_NAMES:
        if name.startswith("l_"):
            r, l = INDEX["r_" + name[2:]], INDEX[name]
            mirrored[0, [r, l]] = gt[0, [l, r]]
    assert facing(gt)[0] > 0 > facing(mirrored)[0]
    np.testing.assert_allclose(facing(-gt), facing(gt))             # turned 180 degrees
    assert left_right(gt, gt, vis)["facing"] == {"images_towards": 1, "images_away": 0,
                                                 "towards_read_as_away_%": 0.0, "away_read_as_towards_%": None}
    assert left_right(mirrored, gt, vis)["facing"]["towards_read_as_away_%"] == 100.0
    assert left_right(gt, mirrored, vis)["facing"]["away_read_as_towards_%"] == 100.0
