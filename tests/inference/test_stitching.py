"""Stitching: a person's broken track is joined again, different people are not."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from data.paths import data_path
from inference.stages.stitching import join_cost, stitch_pairs, stitch_tracks, StitchConfig
from inference.stages.tracking import Tracker
from test_tracking import person

FPS = 30.0


def _track_of(frames, xs, y=200.0, scale=1.0, score=0.9):
    """One tracker Track with the template person at (xs[i], y) on frames[i]."""
    tr = Tracker()
    for f, x in zip(frames, xs):
        tr.update(int(f), person(x, y, scale)[None], np.full((1, 16), score))
    (track,) = tr.all_tracks()
    return track


def test_walker_lost_for_half_a_second_is_joined():
    # Walks right at 4 px/frame (a ~100 px tall person: 1.2 sizes/s), unseen on frames 40-54.
    a = _track_of(range(0, 40), [100 + 4 * f for f in range(0, 40)])
    b = _track_of(range(55, 90), [100 + 4 * f for f in range(55, 90)])
    assert join_cost(a, b, FPS) < 1.0
    assert join_cost(b, a, FPS) == np.inf           # time runs one way
    out, joins = stitch_tracks([b, a], FPS)
    assert joins == 1 and len(out) == 1
    t = out[0]
    assert t.frames == list(range(0, 40)) + list(range(55, 90))
    assert len(t.poses) == len(t.confs) == len(t.mean_confs) == len(t.frames)
    np.testing.assert_allclose(t.poses[-1], person(100 + 4 * 89, 200), atol=1e-3)
    assert len(a.frames) == 40 and len(b.frames) == 35      # the inputs are not changed


def test_someone_else_far_away_or_of_another_size_is_not_joined():
    a = _track_of(range(0, 40), [100.0] * 40)
    far = _track_of(range(50, 80), [600.0] * 30)                       # 5 sizes away
    child = _track_of(range(50, 80), [110.0] * 30, scale=0.5)          # same place, half the size
    late = _track_of(range(75, 100), [100.0] * 25)                     # 35 frames later: > max_gap_s
    overlap = _track_of(range(30, 60), [100.0] * 30)                   # starts before a ends
    for b in (far, child, late, overlap):
        assert join_cost(a, b, FPS) == np.inf or join_cost(a, b, FPS) > 1.0
    out, joins = stitch_tracks([a, far], FPS)
    assert joins == 0 and len(out) == 2


def test_two_people_leaving_together_are_ambiguous_and_stay_apart():
    # Two people side by side vanish together and two tracks come back in between them:
    # either pairing is about as good, so nothing is joined.
    a1 = _track_of(range(0, 30), [100.0] * 30)
    a2 = _track_of(range(0, 30), [160.0] * 30)
    b1 = _track_of(range(45, 70), [125.0] * 25)
    b2 = _track_of(range(45, 70), [135.0] * 25)
    assert stitch_pairs([a1, a2, b1, b2], FPS) == []
    # ...while with clear positions each piece finds its own continuation.
    c1 = _track_of(range(45, 70), [100.0] * 25)
    c2 = _track_of(range(45, 70), [160.0] * 25)
    assert sorted(stitch_pairs([a1, a2, c1, c2], FPS)) == [(0, 2), (1, 3)]


def test_chains_and_off_switch():
    pieces = [_track_of(range(s, s + 20), [100.0 + 2 * f for f in range(s, s + 20)]) for s in (0, 30, 60)]
    out, joins = stitch_tracks(pieces, FPS)
    assert joins == 2 and len(out) == 1 and len(out[0].frames) == 60
    out, joins = stitch_tracks(pieces, FPS, StitchConfig(max_gap_s=0))
    assert joins == 0 and len(out) == 3
    empty = _track_of([0], [100.0])
    empty.frames, empty.poses, empty.confs, empty.mean_confs = [], [], [], []
    out, joins = stitch_tracks(pieces + [empty], FPS)
    assert joins == 2 and len(out) == 1


def test_jittery_end_velocity_falls_back_to_the_plain_distance():
    # The later piece starts with weak, jumping poses (a made-up fast upward velocity); it
    # starts where the first piece ended, so it is still the same person.
    a = _track_of(range(0, 40), [300.0] * 40)
    b = _track_of(range(50, 80), [300.0] * 30)
    for k, f in enumerate(b.frames[:6]):
        b.poses[k] = (person(300, 200 - 25 * k)).astype(np.float32)
    assert join_cost(a, b, FPS) < 1.0


def test_pipeline_option_validation():
    from inference.errors import InferenceError
    from inference.pipeline import PipelineOptions

    with pytest.raises(InferenceError, match="stitch_gap_s"):
        PipelineOptions(stitch_gap_s=-1).check()
    with pytest.raises(InferenceError, match="crop_shrink_per_s"):
        PipelineOptions(crop_shrink_per_s=1.5).check()


@pytest.mark.skipif(not (Path(data_path("lsp")) / "joints.npz").exists(),
                    reason="shared LSP data not present")
@pytest.mark.parametrize("image", ["im09081.jpg", "im09757.jpg"])
def test_trained_engine_keeps_one_id_through_an_occlusion(tmp_path, image):
    """A held-out LSPET photograph filmed by eval_video's virtual camera, the person hidden behind
    a panel for 0.6 s (longer than the tracker's 0.5 s memory): the tracker alone gives the
    person a new id afterwards, stitching gives them back their own."""
    import cv2

    from engine_weights import shipped_weights
    from inference.core import crops
    from evaluation.eval_video import _match, camera_path, FPS as CLIP_FPS, occluder_boxes, render_clip
    from evaluation.eval_2d import torso_size
    from inference.pipeline import load_models, PipelineOptions, run
    from data.lsp import DEFAULT_LSP, load_annotations

    weights = shipped_weights()
    if weights is None:
        pytest.skip("no shipped weights")
    names, joints, visible, _ = load_annotations(DEFAULT_LSP)
    i = list(names).index(image)
    vis = visible[i]
    frames = 60
    mats = camera_path(crops.box_from_joints(joints[i], vis), frames, np.random.default_rng(5))
    gt = np.einsum("fij,kj->fki", mats[:, :, :2], joints[i]) + mats[:, None, :, 2]
    hidden = np.zeros(frames, bool)
    hidden[21:39] = True
    path = tmp_path / "occluded.mp4"
    render_clip(cv2.imread(str(Path(DEFAULT_LSP) / "images" / image)), mats, path, occluder_boxes(gt, vis, hidden))
    torso = torso_size(gt, np.repeat(vis[None], frames, 0))
    opts = PipelineOptions(weights_dir=str(weights), preset="fast", threads=1)
    models = load_models(opts)

    def ids(stitch_gap_s):
        res = run(path, PipelineOptions(weights_dir=str(weights), preset="fast", threads=1,
                                        stitch_gap_s=stitch_gap_s), models=models)
        seen = {}
        for f in np.nonzero(~hidden)[0]:
            k, _ = _match(res.joints2d[:, f], res.valid[:, f], gt[f], vis, torso[f])
            if k >= 0:
                seen.setdefault("before" if f < 21 else "after", set()).add(int(res.person_ids[k]))
        return seen, res.stats["tracks_stitched"]

    seen, joins = ids(0.0)
    assert joins == 0 and seen["before"] and seen["after"] and not seen["before"] & seen["after"], seen
    seen, joins = ids(1.0)
    assert joins >= 1 and seen["before"] == seen["after"] and len(seen["before"]) == 1, seen
    assert CLIP_FPS == 30.0          # the 18 hidden frames are 0.6 s


IMAGE = (640, 360)


def test_person_who_leaves_over_the_edge_and_comes_back_keeps_one_id():
    # Walks left out of the picture (gone from frame 30), turns round outside and walks back in
    # on the same side, found again 1.2 s after it was last seen: beyond max_gap_s, and the two
    # ends' velocities point away from each other.
    a = _track_of(range(0, 30), [150 - 5 * f for f in range(0, 30)])
    b = _track_of(range(66, 100), [40 + 4 * (f - 66) for f in range(66, 100)])
    assert join_cost(a, b, FPS) == np.inf                   # no frame size: the plain rule only
    assert join_cost(a, b, FPS, image_size=IMAGE) <= 1.0
    out, joins = stitch_tracks([a, b], FPS, image_size=IMAGE)
    assert joins == 1 and len(out) == 1 and out[0].id == a.id


def test_edge_rule_needs_the_exit_side_the_gap_and_the_size():
    a = _track_of(range(0, 30), [150 - 5 * f for f in range(0, 30)])
    other_side = _track_of(range(66, 100), [600 - 4 * (f - 66) for f in range(66, 100)])
    too_late = _track_of(range(80, 110), [40 + 4 * (f - 80) for f in range(80, 110)])
    bigger = _track_of(range(66, 100), [60 + 4 * (f - 66) for f in range(66, 100)], scale=2.0)
    for b in (other_side, too_late, bigger):
        assert join_cost(a, b, FPS, image_size=IMAGE) == np.inf
    # A track that ends in the middle of the picture did not leave it: the plain rule only.
    mid = _track_of(range(0, 30), [320.0] * 30)
    back = _track_of(range(66, 100), [60 + 4 * (f - 66) for f in range(66, 100)])
    assert join_cost(mid, back, FPS, image_size=IMAGE) == np.inf
    # Two people coming in on that side: ambiguous, neither is joined.
    b1 = _track_of(range(66, 100), [40 + 4 * (f - 66) for f in range(66, 100)])
    b2 = _track_of(range(64, 100), [60 + 4 * (f - 64) for f in range(64, 100)], y=250.0)
    assert stitch_pairs([a, b1, b2], FPS, image_size=IMAGE) == []
