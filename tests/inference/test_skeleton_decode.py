"""Skeleton-consistent decoding (inference.core.skeleton_decode) on constructed heatmaps, with
the shipped prior (weights/skeleton_prior.*, learned from LSPET training labels)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from inference.core import codec, skeleton_decode as sd
from inference.models.weights import load_manifest
from posefile.skeleton import FLIP_PERM, JOINT_INDEX as I, NUM_JOINTS

H = 32


def standing(knee_dx: float = 2.5) -> np.ndarray:
    """A person facing the camera in heatmap pixels of a 32 x 32 map (their right on the left);
    knee_dx: how far each knee sits out from the centre line."""
    xy = np.zeros((NUM_JOINTS, 2), np.float32)
    pts = {"head_top": (16, 4), "neck": (16, 7.5), "thorax": (16, 9), "pelvis": (16, 17),
           "r_shoulder": (13, 9), "l_shoulder": (19, 9), "r_elbow": (12, 13.5), "l_elbow": (20, 13.5),
           "r_wrist": (11.5, 17.5), "l_wrist": (20.5, 17.5), "r_hip": (14, 17), "l_hip": (18, 17),
           "r_knee": (16 - knee_dx, 22.5), "l_knee": (16 + knee_dx, 22.5),
           "r_ankle": (13.5, 28), "l_ankle": (18.5, 28)}
    for name, p in pts.items():
        xy[I[name]] = p
    return xy


def maps(xy: np.ndarray, extra: dict | None = None) -> np.ndarray:
    """(1, J, H, H) Gaussian maps (sigma 1, as trained) at xy; extra {joint: [(x, y, height)]} adds
    peaks and a (x, y, h) with the joint's own position rescales its true peak to h."""
    hm, _ = codec.encode(xy, np.ones(NUM_JOINTS, bool), H, 1.0)
    for j, peaks in (extra or {}).items():
        for x, y, h in peaks:
            g, _ = codec.encode(np.array([[x, y]], np.float32), np.ones(1, bool), H, 1.0)
            if np.allclose((x, y), xy[j]):
                hm[j] *= h
            else:
                hm[j] = np.maximum(hm[j], h * g[0])
    return hm[None]


@pytest.fixture(scope="module")
def prior() -> sd.SkeletonPrior:
    manifest = load_manifest("skeleton_prior", kind="skeleton_prior")   # sha256 checked
    p = sd.load_prior(manifest["path"])
    assert p.heatmap_size == manifest["config"]["heatmap_size"] == H
    return p


def test_clean_maps_decode_to_the_joints(prior):
    xy = standing()
    coords, scores = sd.decode(maps(xy), prior)
    assert np.abs(coords[0] - xy).max() < 0.05
    assert scores.min() > 0.7          # the raw map at the integer peak, as codec.decode


def test_merged_knees_are_separated(prior):
    """Both knee maps peak on the person's left knee; the right knee map also holds a weaker
    peak on the right knee. Arg-max puts both knees on one leg; the decoder does not."""
    xy = standing()
    r, l = I["r_knee"], I["l_knee"]
    hm = maps(xy, {r: [(*xy[r], 0.4), (*xy[l], 1.0)]})
    argmax = codec.decode(hm)[0][0]
    assert np.linalg.norm(argmax[r] - argmax[l]) < 0.5          # merged
    coords, scores = sd.decode(hm, prior)
    assert np.linalg.norm(coords[0, r] - xy[r]) < 0.3
    assert np.linalg.norm(coords[0, l] - xy[l]) < 0.3
    assert 0.25 < scores[0, r] <= 0.4                            # its own map's (weak) value there


def test_legs_together_stay_together_without_other_evidence(prior):
    """Knees that really touch (one peak per map, nothing else) are left where the maps say."""
    xy = standing(knee_dx=0.2)
    coords, _ = sd.decode(maps(xy), prior)
    assert np.abs(coords[0] - xy).max() < 0.3


def test_swapped_knees_are_fixed_by_the_limbs_when_searched(prior):
    """Wide stance, knee maps swapped (each peaks on the other knee, a weaker peak on its own):
    the full search (only_merged=False) follows the hips and ankles; the shipped setting searches
    merged pairs only and keeps the arg-max."""
    xy = standing(knee_dx=6.0)
    xy[I["r_ankle"]], xy[I["l_ankle"]] = (8.5, 28), (23.5, 28)
    r, l = I["r_knee"], I["l_knee"]
    hm = maps(xy, {r: [(*xy[r], 0.5), (*xy[l], 1.0)], l: [(*xy[l], 0.5), (*xy[r], 1.0)]})
    full = dataclasses.replace(sd.DecodeWeights(), only_merged=False)
    coords, _ = sd.decode(hm, prior, full)
    assert np.linalg.norm(coords[0, r] - xy[r]) < 0.3 and np.linalg.norm(coords[0, l] - xy[l]) < 0.3
    kept, _ = sd.decode(hm, prior)
    assert np.linalg.norm(kept[0, r] - xy[l]) < 0.3               # arg-max kept


def test_prior_is_mirror_symmetric(prior):
    """A right bone's table is the left bone's mirrored (x negated): no view is preferred."""
    for b, (p, c) in enumerate(sd.PRIOR_BONES):
        m = sd.PRIOR_BONES.index((FLIP_PERM[p], FLIP_PERM[c]))
        np.testing.assert_allclose(prior.bone_logp[b], prior.bone_logp[m][:, ::-1], atol=1e-5)
    np.testing.assert_allclose(prior.sym_logp, prior.sym_logp[::-1], atol=1e-5)


def test_batch_and_empty(prior):
    hm = np.concatenate([maps(standing()), maps(standing(4.0))])
    coords, scores = sd.decode(hm, prior)
    assert coords.shape == (2, NUM_JOINTS, 2) and scores.shape == (2, NUM_JOINTS)
    c0, s0 = sd.decode(np.zeros((0, NUM_JOINTS, H, H), np.float32), prior)
    assert c0.shape == (0, NUM_JOINTS, 2) and s0.shape == (0, NUM_JOINTS)


def test_prior_tables_that_do_not_fit_are_refused(tmp_path, prior):
    bad = dataclasses.replace(prior, bone_logp=prior.bone_logp[:3])
    sd.save_prior(tmp_path / "bad.npz", bad)
    with pytest.raises(ValueError, match="bone tables"):
        sd.load_prior(tmp_path / "bad.npz")


def test_pose_estimator_can_decode_with_the_prior(tmp_path):
    """PoseEstimator(skeleton=True) (PipelineOptions.skeleton_decode) decodes its heatmaps with
    the shipped prior and maps the chosen peaks back like the arg-max path does."""
    from engine_weights import untrained_weights
    from inference.core import crops
    from inference.stages.pose2d import PoseEstimator, crop_to_image

    folder = untrained_weights(tmp_path)
    plain = PoseEstimator(folder / "pose_fast.json", "cpu")
    skel = PoseEstimator(folder / "pose_fast.json", "cpu", skeleton=True)
    assert plain.skeleton is None and skel.skeleton is not None
    S = skel.in_size
    patches = np.random.default_rng(0).integers(0, 255, (3, S, S, 3), np.uint8)
    mats = np.stack([crops.crop_matrix(np.array([200.0 + 40 * i, 150.0, 120.0]), S) for i in range(3)])
    joints, scores = skel.estimate_crops(patches, mats)
    heat = plain.heatmaps(patches)
    coords, want_scores = sd.decode(heat, *skel.skeleton)
    np.testing.assert_allclose(joints, crop_to_image(coords, mats, S, heat.shape[-1]), atol=1e-3)
    np.testing.assert_allclose(scores, want_scores, atol=1e-5)
    assert joints.dtype == np.float32 and np.isfinite(joints).all()
