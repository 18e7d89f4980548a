"""BVH reader + forward kinematics against hand-computed poses, and one real CMU file."""
import numpy as np
import pytest

from data.bvh import BVHError, forward_kinematics, parse_bvh
from data import mocap
from mocap_samples import archive_bvh

# Root: 6 channels (ZYX); Chest: ZXY; Head: 6 channels below the root (YXZ); Leg: XYZ.
TINY = "\r\n".join("""HIERARCHY
ROOT Hips
{
  OFFSET 0 0 0
  CHANNELS 6 Xposition Yposition Zposition Zrotation Yrotation Xrotation
  JOINT Chest
  {
    OFFSET 0 10 0
    CHANNELS 3 Zrotation Xrotation Yrotation
    JOINT Head
    {
      OFFSET 0 5 0
      CHANNELS 6 Xposition Yposition Zposition Yrotation Xrotation Zrotation
      End Site
      {
        OFFSET 0 2 0
      }
    }
  }
  JOINT Leg
  {
    OFFSET 3 0 0
    CHANNELS 3 Xrotation Yrotation Zrotation
    End Site
    {
      OFFSET 0 -8 0
    }
  }
}
MOTION
Frames: 3
Frame Time: 0.0333333
1 2 3 0 0 0 0 0 0 0 5 0 0 0 0 0 0 0
0 0 0 90 0 0 0 90 0 0 5 0 0 0 0 0 0 0
0 0 0 0 0 0 0 0 0 1 5 0 0 0 90 90 90 0
""".split("\n"))

# Hand-computed world positions, joints in file order: Hips, Chest, Head, Head_End, Leg, Leg_End.
EXPECTED = np.array([
    # frame 0: rest pose translated by (1, 2, 3)
    [[1, 2, 3], [1, 12, 3], [1, 17, 3], [1, 19, 3], [4, 2, 3], [4, -6, 3]],
    # frame 1: root Rz(90) maps (x,y,z)->(-y,x,z); chest Rx(90) maps (x,y,z)->(x,-z,y)
    [[0, 0, 0], [-10, 0, 0], [-10, 0, 5], [-10, 0, 7], [0, 3, 0], [8, 3, 0]],
    # frame 2: Head position channels (1,5,0) replace its offset, Rz(90) turns the end site to -x;
    # Leg = Rx(90) @ Ry(90): (0,-8,0) -> Ry -> (0,-8,0) -> Rx -> (0,0,-8)
    [[0, 0, 0], [0, 10, 0], [1, 15, 0], [-1, 15, 0], [3, 0, 0], [3, 0, -8]],
], dtype=float)


def test_parse_structure():
    b = parse_bvh(TINY)
    assert b.names == ["Hips", "Chest", "Head", "Head_End", "Leg", "Leg_End"]
    assert list(b.parents) == [-1, 0, 1, 2, 0, 4]
    assert list(b.is_end_site) == [False, False, False, True, False, True]
    assert b.motion.shape == (3, 18)
    assert b.channels[1] == ["Zrotation", "Xrotation", "Yrotation"]
    assert abs(b.fps - 30.0) < 1e-3


def test_fk_matches_hand_computed():
    P, R = forward_kinematics(parse_bvh(TINY))
    np.testing.assert_allclose(P, EXPECTED, atol=1e-9)
    # rotations stay orthonormal
    np.testing.assert_allclose(R @ np.swapaxes(R, -1, -2), np.broadcast_to(np.eye(3), R.shape), atol=1e-12)


def test_fk_frames_subset():
    b = parse_bvh(TINY)
    P, _ = forward_kinematics(b, frames=[2])
    np.testing.assert_allclose(P[0], EXPECTED[2], atol=1e-9)


def test_rejects_bad_input():
    with pytest.raises(BVHError):
        parse_bvh("not a bvh")
    with pytest.raises(BVHError):
        parse_bvh(TINY.replace("Frames: 3", "Frames: 9"))  # too few motion values
    with pytest.raises(BVHError):
        parse_bvh(TINY.replace("Xrotation Yrotation Zrotation", "Xrotation Yrotation Wrotation"))


def _first_cmu_walk():
    return archive_bvh("cmu_walk_cs229.tar.xz", "02_01.bvh")[1]


def test_real_cmu_walk_mapping():
    """A real CMU walk: plausible bone lengths, speed, and l_hip on the left of travel."""
    b = _first_cmu_walk()
    assert b.n_frames == 343 and abs(b.fps - 120) < 0.1
    pos, fps = mocap.prepare_clip(b, "cmu31")
    assert pos.shape == (len(range(0, 343, 4)), 16, 3) and abs(fps - 30) < 0.1
    thigh = np.linalg.norm(pos[:, 2] - pos[:, 1], axis=-1)
    assert 0.3 < np.median(thigh) < 0.5
    head = np.linalg.norm(pos[:, 9] - pos[:, 8], axis=-1)
    assert 0.05 < np.median(head) < 0.15
    root = pos[:, 6]
    vel = np.diff(root[:, [0, 2]], axis=0) * fps
    speed = np.linalg.norm(vel, axis=-1)
    assert 0.5 < np.median(speed) < 2.0
    # person's left: cross(up, forward) for Y-up, facing forward d -> left = (d_z, 0, -d_x)
    left = np.stack([vel[:, 1], -vel[:, 0]], -1)
    hip = (pos[1:, 3] - pos[1:, 2])[:, [0, 2]]
    assert np.mean((hip * left).sum(-1) > 0) > 0.9
    # standing: head above pelvis above ankles (Y up)
    assert np.median(pos[:, 9, 1]) > np.median(pos[:, 6, 1]) > np.median(pos[:, 0, 1])
    # the pelvis is mid-hips, as the 2D data and the engine define it, not the file's root joint
    # (cmu31's Hips sits about 10 cm higher)
    np.testing.assert_allclose(pos[:, 6], 0.5 * (pos[:, 2] + pos[:, 3]), atol=1e-6)
