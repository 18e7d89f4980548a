"""Pinhole maths (inference/core/camera.py) and the virtual camera sampler / 2D corruption."""
import numpy as np
import pytest

from inference.core import camera
from data import cameras as vc


def test_intrinsics_defaults():
    K = camera.intrinsics((1920, 1080))
    f = 0.5 * 1920 / np.tan(np.deg2rad(camera.DEFAULT_FOV_DEG) / 2)
    np.testing.assert_allclose(K, [[f, 0, 959.5], [0, f, 539.5], [0, 0, 1]])
    np.testing.assert_allclose(camera.intrinsics((640, 480), focal_px=500)[0, 0], 500)
    # One camera held upright: the same focal length in pixels, the principal point turned with it.
    K_portrait = camera.intrinsics((1080, 1920))
    np.testing.assert_allclose(K_portrait, [[f, 0, 539.5], [0, f, 959.5], [0, 0, 1]])
    with pytest.raises(camera.CameraError):
        camera.intrinsics((0, 480))
    with pytest.raises(camera.CameraError):
        camera.check_K(np.zeros((3, 3)))


def test_project_unproject_round_trip():
    rng = np.random.default_rng(0)
    K = np.array([[1100.0, 0, 640.3], [0, 1050.0, 355.1], [0, 0, 1]])
    X = np.concatenate([rng.uniform(-3, 3, (100, 2)), rng.uniform(1, 20, (100, 1))], -1)
    uv = camera.project(X, K)
    np.testing.assert_allclose(camera.unproject(uv, X[:, 2], K), X, atol=1e-9)
    # a point on the optical axis lands on the principal point
    np.testing.assert_allclose(camera.project(np.array([0, 0, 5.0]), K), [640.3, 355.1])
    xn = camera.normalize_pixels(uv, K)
    np.testing.assert_allclose(xn, X[:, :2] / X[:, 2:], atol=1e-12)


def test_root_depth_recovers_known_depth():
    """A 2 m x 2 m square facing the camera at depth z has image area fx*fy*4/z^2 -> k = z."""
    K = camera.intrinsics((1280, 720), focal_px=900.0)
    for z in (2.0, 5.5, 13.0):
        sq = np.array([[-1, -1, z], [1, -1, z], [1, 1, z], [-1, 1, z]]) + [0.4, -0.2, 0]
        uv = camera.project(sq, K)
        area = camera.bbox_area(uv, square=False)
        np.testing.assert_allclose(camera.root_depth(area, K), z, rtol=1e-9)
    # non-square focal: k = sqrt(fx fy A_real / A_img)
    K2 = np.array([[800.0, 0, 300], [0, 1200.0, 200], [0, 0, 1]])
    sq = np.array([[-1, -1, 4.0], [1, 1, 4.0]])
    np.testing.assert_allclose(camera.root_depth(camera.bbox_area(camera.project(sq, K2), square=False), K2), 4.0)
    assert np.isnan(camera.root_depth(np.array(0.0), K))


def test_bbox_area_mask_and_square():
    p = np.array([[0, 0], [4, 1], [100, 100]], float)
    m = np.array([True, True, False])
    assert camera.bbox_area(p, m, square=False) == 4.0
    assert camera.bbox_area(p, m, square=True) == 16.0
    assert camera.bbox_area(p, np.array([True, False, False])) == 0.0


def test_sampler_covers_stated_ranges():
    rng = np.random.default_rng(1)
    n = 4000
    target = np.column_stack([rng.uniform(-3, 3, n), rng.uniform(0.7, 1.1, n), rng.uniform(-3, 3, n)])
    c = vc.sample_cameras(target, rng)
    for val, (lo, hi), name in [(c.focal_rel, vc.FOCAL_REL, "focal"), (c.height, vc.HEIGHT_M, "height"),
                                (c.pitch_deg, vc.PITCH_DEG, "pitch"), (c.distance, vc.DISTANCE_M, "distance"),
                                (c.yaw_deg, (0, 360), "yaw")]:
        span = hi - lo
        assert val.min() >= lo - 1e-9 and val.max() <= hi + 1e-9, name
        assert val.min() < lo + 0.05 * span and val.max() > hi - 0.05 * span, name  # covered
    np.testing.assert_allclose(np.linalg.norm(c.C[:, [0, 2]] - target[:, [0, 2]], axis=-1), c.distance)
    np.testing.assert_allclose(c.C[:, 1], c.height)
    # rotations are proper, and the target is in front of the camera and inside the image
    np.testing.assert_allclose(np.linalg.det(c.R), 1.0, atol=1e-9)
    Xc = vc.world_to_camera(target[:, None, :], c)[:, 0]
    assert (Xc[:, 2] > 0).all()
    uv = vc.project_normalized(Xc) * c.K[:, [0, 1], [0, 1]] + c.K[:, :2, 2]
    inside = ((uv >= 0) & (uv <= c.size - 1)).all(-1)
    assert inside.mean() > 0.99


def test_camera_axes_opencv():
    """Level camera looking along world +Z: world up -> image up (-y), camera right = world -X."""
    R = vc.look_rotation(np.array([0.0]), np.array([0.0]), np.array([0.0]))[0]
    np.testing.assert_allclose(R @ [0, 1, 0], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(R @ [0, 0, 1], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(R @ [-1, 0, 0], [1, 0, 0], atol=1e-12)
    # pitched down by 30 deg: the forward axis points below the horizon
    R = vc.look_rotation(np.array([0.0]), np.deg2rad(np.array([30.0])), np.array([0.0]))[0]
    np.testing.assert_allclose(R[2], [0, -0.5, np.sqrt(3) / 2], atol=1e-12)


def test_mirror_is_involution():
    X = np.random.default_rng(2).normal(size=(5, 16, 3))
    np.testing.assert_allclose(vc.mirror_world(vc.mirror_world(X)), X)
    Y = vc.mirror_world(X)
    np.testing.assert_allclose(Y[:, 0, 0], -X[:, 5, 0])  # r_ankle <- mirrored l_ankle


def test_corrupt_2d_behaviour():
    rng = np.random.default_rng(3)
    base = np.random.default_rng(4).normal(0, 0.1, (64, 20, 16, 2))
    clean, s0 = vc.corrupt_2d(base, np.zeros(64), rng)
    np.testing.assert_allclose(clean, base)
    assert (s0 > 0).all()
    noisy, s1 = vc.corrupt_2d(base, np.ones(64), rng)
    err = np.linalg.norm(noisy - base, axis=-1)[s1 > 0]
    side = np.sqrt(camera.bbox_area(base)).mean()
    assert 0.01 * side < np.median(err) < 0.2 * side
    assert 0.01 < (s1 == 0).mean() < 0.4          # some joints dropped
    assert (noisy[s1 == 0] == 0).all()
    # lower scores go with larger errors
    sc = s1[s1 > 0]
    assert np.corrcoef(sc, err)[0, 1] < -0.3
    # out-of-image joints are dropped
    in_img = np.ones((64, 20, 16), bool)
    in_img[:, :, 3] = False
    _, s2 = vc.corrupt_2d(base, np.full(64, 0.5), rng, in_image=in_img)
    assert (s2[:, :, 3] == 0).all()
