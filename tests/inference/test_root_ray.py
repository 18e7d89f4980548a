"""The root's ray from every joint's ray (inference/core/root_ray.py), on a projected skeleton."""
import numpy as np

from inference.core.root_ray import MIN_JOINTS, root_from_rays, weighted_median
from posefile.skeleton import NUM_JOINTS as J, PELVIS


def _scene(F=20, seed=0):
    """A person-sized random skeleton 4 m away, its exact normalised 2D and root ray."""
    rng = np.random.default_rng(seed)
    rel = rng.normal(0, 0.3, (F, J, 3))
    rel[:, PELVIS] = 0.0
    root = np.stack([rng.uniform(-0.5, 0.5, F), rng.uniform(-0.3, 0.3, F), np.full(F, 4.0)], -1)
    X = rel + root[:, None]
    xn = X[..., :2] / X[..., 2:]
    return rel, root[:, 2], xn, root[:, :2] / root[:, 2:]


def test_weighted_median_follows_weights():
    v = np.array([[1.0, 2.0, 3.0, 100.0], [5.0, 1.0, 9.0, 7.0]])
    w = np.array([[1.0, 1.0, 1.0, 0.5], [0.0, 0.0, 1.0, 0.0]])
    assert np.allclose(weighted_median(v, w), [2.0, 9.0])
    assert np.isnan(weighted_median(v, np.zeros_like(w))).all()


def test_exact_joints_give_the_true_ray_and_a_wrong_pelvis_is_outvoted():
    rel, z, xn, ray = _scene()
    scores = np.ones(xn.shape[:2])
    bad = xn.copy()
    bad[:, PELVIS] += 0.05                      # the 2D pelvis 20 cm off at 4 m
    bad[:, 3] += np.array([0.3, -0.2])          # and one joint grossly wrong
    fallback = bad[:, PELVIS]
    got = root_from_rays(rel, z, bad, scores, fallback)
    assert np.abs(got - ray).max() < 1e-9      # the median ignores the two wrong joints
    assert np.abs(fallback - ray).max() > 0.04


def test_too_few_joints_keep_the_2d_root():
    rel, z, xn, ray = _scene(F=3)
    scores = np.zeros(xn.shape[:2])
    scores[:, :MIN_JOINTS - 1] = 1.0
    fallback = ray + 0.1
    assert np.array_equal(root_from_rays(rel, z, xn, scores, fallback), fallback)
    scores[1, :MIN_JOINTS] = 1.0                # frame 1 now has enough joints
    got = root_from_rays(rel, z, xn, scores, fallback)
    assert np.allclose(got[1], ray[1]) and np.array_equal(got[[0, 2]], fallback[[0, 2]])


def test_weighted_median_is_mirror_symmetric():
    v = np.random.default_rng(1).normal(size=(50, 16))
    w = np.ones_like(v)                         # an even split: lower and upper medians differ
    assert np.allclose(weighted_median(-v, w), -weighted_median(v, w))
    assert np.allclose(weighted_median(v, w), np.median(v, axis=1))


def test_a_lifted_pose_that_does_not_explain_the_2d_leaves_the_2d_root():
    """The votes of a pose unlike the one seen scatter: the 2D root stays (SPREAD_NONE)."""
    rel, z, xn, ray = _scene(F=10, seed=2)
    other, _, _, _ = _scene(F=10, seed=3)       # the lifter's answer: somebody else's pose
    scores = np.ones(xn.shape[:2])
    fallback = ray + 0.01
    got = root_from_rays(other, z, xn, scores, fallback)
    assert np.allclose(got, fallback)
    # and the true pose is trusted fully: its votes agree exactly
    assert np.allclose(root_from_rays(rel, z, xn, scores, fallback), ray)
