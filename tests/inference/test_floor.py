"""The floor stage on a synthetic scene (tests/inference/floor_scene.py): people walking on a
floor under a known tilted and rolled camera, with a lifter's depth errors and 2D noise."""
import numpy as np
import pytest

import posefile
from floor_scene import camera_pose, scene
from inference.cli import build_parser
from inference.core import floor as fl
from inference.stages.floor import place_on_floor


def true_floor(S):
    """Normal (camera frame, up) and camera height of the scene's floor."""
    Tinv = np.linalg.inv(S.T)
    return Tinv[:3, :3] @ np.array([0.0, 0.0, 1.0]), S.T[2, 3]


def run(S, **kw):
    return fl.estimate(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps, **kw)


@pytest.fixture(scope="module")
def walking():
    S = scene(height=1.6, pitch_deg=12.0, roll_deg=3.0)
    return S, run(S)


def test_recovers_the_floor(walking):
    S, res = walking
    assert res.status == "estimated", res.message
    n, h = true_floor(S)
    assert np.degrees(np.arccos(n @ res.floor.normal)) < 2.0
    assert res.floor.height == pytest.approx(h, rel=0.06)   # the people's depth biases: 1.08, 0.93, 1.03
    assert res.floor.pitch_deg == pytest.approx(12.0, abs=2.0)
    assert res.floor.roll_deg == pytest.approx(3.0, abs=2.0)


def test_world_frame_is_the_contract_one(walking):
    S, res = walking
    T = res.floor.world_from_camera().astype(np.float32)
    d = posefile.empty(1, 1)
    d.world_from_camera = T
    posefile.validate(d)                           # rigid, camera at (0, 0, h), +Y forward
    # The scene's true floor points (world z = 0) land near z = 0 in the estimated world frame.
    Tinv = np.linalg.inv(S.T)
    ground = np.array([[x, y, 0.0] for x in (-2, 0, 2) for y in (3, 6, 9)])
    cam = ground @ Tinv[:3, :3].T + Tinv[:3, 3]
    z = cam @ T[:3, :3].T.astype(np.float64)[:, 2] + T[2, 3]
    assert np.abs(z).max() < 0.15


def test_contacts_follow_the_feet(walking):
    S, res = walking
    assert res.contacts.shape == S.contacts.shape and res.contacts.dtype == bool
    agree = (res.contacts == S.contacts).mean()
    assert agree > 0.85
    # a foot high in its swing is seldom in contact (person 2 walks away from the camera: its
    # swing moves mostly in depth, which the image speed does not see)
    A = S.world[:, :, [0, 5], 2]
    assert res.contacts[A > 0.09 + 0.08].sum() < 0.06 * res.contacts.sum()
    assert not res.contacts[:2][A[:2] > 0.09 + 0.08].any()


def test_root_depth_from_the_floor_beats_the_pinhole_estimate(walking):
    S, res = walking
    z = S.cam[:, :, 6, 2]
    before = np.abs(S.lifted[:, :, 6, 2] / z - 1).mean()
    after = np.abs(res.joints3d[:, :, 6, 2] / z - 1).mean()
    assert after < 0.5 * before, (before, after)
    # moving along the root's ray keeps every joint's pose relative to the root
    rel_before = S.lifted - S.lifted[:, :, 6:7]
    rel_after = res.joints3d - res.joints3d[:, :, 6:7]
    np.testing.assert_allclose(rel_after, rel_before, atol=1e-4)


def test_one_floor_for_everyone(walking):
    """Each person's plane offset measures how far off their root depth is (person_scale); with
    FloorConfig(person_scale=1) they are moved onto the one floor (off by default: docs/floor.md)."""
    S, res = walking
    scale = np.array(res.info["person_scale"])
    bias = np.array([1.08, 0.93, 1.03])
    assert np.all(np.abs(scale * bias / np.mean(scale * bias) - 1) < 0.05)
    moved = run(S, cfg=fl.FloorConfig(person_scale=1.0, depth=False))
    ratio = (moved.joints3d[:, :, 6, 2] / S.cam[:, :, 6, 2]).mean(1)
    assert np.ptp(ratio) < 0.6 * np.ptp(bias)          # 0.08 against 0.15


def test_a_person_standing_still_alone():
    """Two footprints fix no plane: the person's up direction does (roughly: a known limit)."""
    S = scene(people=[((0.2, 5.0, 0), 0.0, 0.0, 0.0, True)], depth_bias=(1.0,))
    res = run(S)
    assert res.status == "estimated", res.message
    n, h = true_floor(S)
    assert np.degrees(np.arccos(n @ res.floor.normal)) < 8.0
    # the height extrapolates that normal from 5 m away to the camera: 0.4 m off here (docs/floor.md)
    assert res.floor.height == pytest.approx(h, rel=0.3)
    assert res.contacts[S.valid].mean() > 0.95
    placed = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps)
    assert placed.world_from_camera is not None and placed.meta["tilt_sigma_deg"] > 2.0
    assert len(placed.warnings) == 1 and "the floor is uncertain" in placed.warnings[0]


def test_someone_on_a_platform_is_left_off_the_floor():
    """A person walking on a 1 m stage (as the man on the wall in the sample clip) is not on the
    floor: the lowest plane is, and that person gets no contacts and no depth from it."""
    S = scene(raised={2: 1.0}, depth_bias=(1.0, 1.0, 1.0))
    res = run(S)
    assert res.status == "estimated" and res.info["people_off_the_floor"] == [2]
    n, h = true_floor(S)
    # the two left walk across the view, which fixes the pitch poorly (docs/floor.md): 4 degrees
    assert res.floor.height == pytest.approx(h, rel=0.35)
    assert np.degrees(np.arccos(n @ res.floor.normal)) < 6.0
    assert not res.contacts[2].any() and res.contacts[:2].any()
    np.testing.assert_array_equal(res.joints3d[2], S.lifted[2])


# --------------------------------------------------------------------------- no floor

def test_no_feet_seen():
    S = scene(F=60)
    S.scores[:, :, [0, 5]] = 0.0
    res = run(S)
    assert res.status == "no_feet" and res.floor is None and "feet" in res.message
    placed = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps)
    assert placed.world_from_camera is None and placed.contacts is None
    assert placed.joints3d is S.lifted                     # the old camera-frame behaviour
    assert placed.meta["status"] == "no_feet" and placed.meta["camera_height_m"] is None
    assert len(placed.warnings) == 1 and "no floor (no_feet)" in placed.warnings[0]


@pytest.mark.parametrize("F", [1, 3])
def test_too_few_frames(F):
    S = scene(F=F)
    placed = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps)
    assert placed.meta["status"] == "too_few_frames" and placed.world_from_camera is None
    assert "too_few_frames" in placed.warnings[0]


def test_nobody_in_the_clip():
    X = np.full((0, 30, 16, 3), np.nan, np.float32)
    placed = place_on_floor(X, X[..., :2], np.zeros((0, 30, 16), np.float32), np.zeros((0, 30), bool),
                            np.eye(3), 30.0)
    assert placed.meta["status"] == "too_few_frames" and placed.warnings == []


def test_panning_camera():
    """A camera that turns (25 degrees/s): its feet seldom rest in the image and those that do
    (moving with the pan) agree on no floor below the camera. No floor, and a warning; a pan is
    not told apart from feet that never rest (no image-motion estimate: docs/floor.md)."""
    F = 150
    Ts = np.stack([camera_pose(1.6, 12.0, 3.0, yaw_deg=25.0 * f / 30.0) for f in range(F)])
    S = scene(F=F, T_per_frame=Ts)
    res = run(S)
    assert res.status in ("moving_camera", "no_feet") and res.floor is None
    placed = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps)
    assert placed.world_from_camera is None and placed.contacts is None and len(placed.warnings) == 1


def test_feet_that_never_rest_mean_a_moving_camera():
    S = scene(F=90)
    S.joints2d[:, :, [0, 5]] += (np.arange(90)[None, :, None, None] * 8.0).astype(np.float32)  # 240 px/s
    res = run(S)
    assert res.status == "moving_camera" and "camera seems to move" in res.message


def test_camera_tilting_mid_clip():
    """The people's up direction turns by 20 degrees in the camera frame half-way (the check's
    threshold is 8 degrees from the clip's mean direction for any 2 s window)."""
    F = 180
    Ts = np.stack([camera_pose(1.6, 12.0 if f < 90 else 32.0, 3.0) for f in range(F)])
    S = scene(F=F, T_per_frame=Ts)
    res = run(S)
    assert res.status == "moving_camera" and res.info["worst_window_tilt_deg"] > 8, res.info


def test_invalid_frames_are_ignored():
    S = scene()
    S.valid[1, 40:80] = False
    S.lifted[1, 40:80] = np.nan
    S.joints2d[1, 40:80] = np.nan
    res = run(S)
    assert res.status == "estimated"
    assert not res.contacts[~S.valid].any()
    assert np.isnan(res.joints3d[1, 40:80]).all() and np.isfinite(res.joints3d[S.valid]).all()


# --------------------------------------------------------------------------- pose file and options

def test_what_the_stage_gives_is_a_valid_version_2_pose_file(tmp_path, walking):
    S, _ = walking
    placed = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps)
    assert placed.meta["status"] == "estimated" and placed.warnings == []
    assert placed.meta["camera_height_m"] == pytest.approx(1.6, rel=0.06)
    P, F = S.valid.shape
    d = posefile.write_posefile(tmp_path / "f.npz", joints3d=placed.joints3d, joints2d=S.joints2d,
                                scores=S.scores, valid=S.valid, person_ids=np.arange(P), fps=S.fps,
                                image_size=(1280, 720), camera_K=S.K, meta={"floor": placed.meta},
                                world_from_camera=placed.world_from_camera, contacts=placed.contacts)
    back = posefile.load(tmp_path / "f.npz")
    np.testing.assert_array_equal(back.contacts, placed.contacts)
    W = posefile.world_joints(back)
    ank = W[:, :, [0, 5], 2][back.contacts]
    assert abs(np.median(ank) - fl.FloorConfig().ankle_height_m) < 0.03   # contact ankles at ankle height
    assert d.meta["floor"]["status"] == "estimated"


def test_disabled():
    S = scene(F=20)
    placed = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps, enabled=False)
    assert placed.meta["status"] == "disabled" and placed.world_from_camera is None and placed.warnings == []


def test_cli_floor_flag():
    p = build_parser()
    assert p.parse_args(["v.mp4", "-o", "o.npz"]).floor is True
    assert p.parse_args(["v.mp4", "-o", "o.npz", "--no-floor"]).floor is False


def test_image_heights_straighten_a_tilted_floor(walking):
    """refine_from_heights: from a floor tilted 6 degrees off, the people's image heights (2D
    and their lifted heights only) bring the normal back near the truth."""
    S, res = walking
    n, h = true_floor(S)
    axis = np.cross(n, [1.0, 0.0, 0.0])
    axis /= np.linalg.norm(axis)
    a = np.radians(6.0)
    tilted = n * np.cos(a) + np.cross(axis, n) * np.sin(a)
    rest = fl.ankle_speed(S.lifted, S.joints2d, S.valid, S.fps, S.K) < 0.35
    up = fl.body_up(S.lifted, S.valid, S.scores)
    refined, counts = fl.refine_from_heights(fl.Floor(tilted, h), S.lifted, S.joints2d, S.scores,
                                             rest.any(-1), S.K, up)
    assert counts["height_frames"] > 100
    assert np.degrees(np.arccos(refined.normal @ n)) < 1.5


def test_no_image_height_refinement_without_a_known_focal(walking):
    S, _ = walking
    known = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps, focal_known=True)
    assumed = place_on_floor(S.lifted, S.joints2d, S.scores, S.valid, S.K, S.fps, focal_known=False)
    assert "height_frames" in known.meta and "height_frames" not in assumed.meta
    assert assumed.meta["status"] == known.meta["status"] == "estimated"
