"""Network shapes, heatmap decoding, crop geometry round trips, detector decoding, root depth."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from inference.core import codec, crops
from posefile.skeleton import FLIP_PAIRS
from inference.models.hourglass import HourglassConfig, StackedHourglass
from inference.stages.detect import decode_people, letterbox
from inference.stages.pose2d import decode_crops, fold_batchnorm, Pyramid

torch.set_num_threads(1)


@pytest.mark.parametrize("cfg", [
    HourglassConfig(stacks=1, features=16, depth=2, in_size=64, out_channels=16),
    HourglassConfig(stacks=2, features=32, depth=3, in_size=128, out_channels=16),
    HourglassConfig(stacks=3, features=16, depth=4, in_size=64, out_channels=4),
])
def test_network_shapes(cfg):
    model = StackedHourglass(cfg).eval()
    with torch.no_grad():
        outs = model(torch.zeros(2, 3, cfg.in_size, cfg.in_size))
    assert len(outs) == cfg.stacks
    for o in outs:
        assert o.shape == (2, cfg.out_channels, cfg.in_size // 4, cfg.in_size // 4)
        assert torch.isfinite(o).all()


def test_batchnorm_folding_is_exact():
    torch.manual_seed(0)
    model = StackedHourglass(HourglassConfig(stacks=2, features=32, depth=3, in_size=64, out_channels=16))
    for m in model.modules():          # non-trivial statistics
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    model.eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)[-1]
        n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
        fold_batchnorm(model)
        out = model(x)[-1]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules()) < n_bn / 2
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4)


def test_bad_input_size_is_refused():
    with pytest.raises(ValueError):
        StackedHourglass(HourglassConfig(depth=4, in_size=80))


def test_160_px_input_gives_40_px_heatmaps():
    # 160 px is not a multiple of 64: the innermost pooling drops a row (5 -> 2), and the
    # upsampling must still restore every level's size
    model = StackedHourglass(HourglassConfig(stacks=2, features=16, depth=4, in_size=160, out_channels=16)).eval()
    with torch.no_grad():
        outs = model(torch.rand(1, 3, 160, 160))
    assert [o.shape for o in outs] == [(1, 16, 40, 40)] * 2


@pytest.mark.parametrize("sigma", [1.0, 1.5, 2.0])
def test_encode_decode_round_trip(sigma):
    rng = np.random.default_rng(int(sigma * 10))
    H = 32
    joints = rng.uniform(2, H - 3, (16, 2)).astype(np.float32)
    heat, w = codec.encode(joints, np.ones(16, bool), H, sigma)
    assert (w == 1).all()
    coords, scores = codec.decode(heat[None])
    err = np.abs(coords[0] - joints).max()
    assert err < 0.05, err
    assert scores.min() > 0.75


@pytest.mark.parametrize("blur, atol", [(0.0, 1e-4), (codec.DECODE_BLUR, 0.01)])
def test_decode_exact_integer_peaks(blur, atol):
    # Without smoothing the peak is exact; with it, only the map's edge (3 px from the first
    # joint) moves it, by a fraction of a thousandth of a pixel.
    H = 16
    joints = np.array([[3, 4], [10, 12], [7, 7]], np.float32)
    heat, _ = codec.encode(joints, np.ones(3, bool), H, 1.5)
    coords, scores = codec.decode(heat[None], blur=blur)
    np.testing.assert_allclose(coords[0], joints, atol=atol)
    np.testing.assert_allclose(scores[0], 1.0, atol=1e-6)


def test_smoothing_keeps_a_ragged_peak_near_its_centre():
    # A Gaussian peak with a spike next to it: the raw Taylor step is thrown towards the spike,
    # the smoothed map's peak stays within a fifth of a pixel of the centre.
    H = 32
    heat, _ = codec.encode(np.array([[15.3, 16.6]], np.float32), np.ones(1, bool), H, 1.5)
    heat = 0.5 * heat
    heat[0, 17, 15] += 0.25
    raw, _ = codec.decode(heat[None], blur=0.0)
    smooth, score = codec.decode(heat[None])
    truth = np.array([15.3, 16.6])
    assert np.abs(smooth[0, 0] - truth).max() < 0.2 < np.abs(raw[0, 0] - truth).max()
    assert score[0, 0] == pytest.approx(heat[0].max(), abs=1e-6)   # the raw map's value at the peak


def test_invisible_joint_decodes_with_zero_score():
    heat, w = codec.encode(np.array([[5, 5], [8, 8]], np.float32), np.array([True, False]), 16, 1.5)
    _, scores = codec.decode(heat[None])
    assert w.tolist() == [1.0, 0.0] and scores[0, 1] == 0.0


def test_heatmap_stride_mapping_is_inverse():
    xy = np.array([[0.0, 0.0], [127.0, 63.5], [12.25, 99.75]])
    np.testing.assert_allclose(codec.from_heatmap(codec.to_heatmap(xy, 4), 4), xy, atol=1e-5)


def test_flip_heatmaps_matches_flipped_crop():
    # Joints in a crop, mirrored by crop_matrix(flip=True): the heatmaps of the mirrored crop,
    # flipped back, equal the heatmaps of the plain crop.
    rng = np.random.default_rng(3)
    S, H = 128, 32
    box = np.array([200.0, 150.0, 90.0])
    frame_joints = box[:2] + rng.uniform(-40, 40, (16, 2))
    M = crops.crop_matrix(box, S)
    Mf = crops.crop_matrix(box, S, flip=True)
    hm = codec.encode(codec.to_heatmap(crops.apply_affine(M, frame_joints), S / H), np.ones(16, bool), H, 1.5)[0]
    flipped_joints = crops.apply_affine(Mf, frame_joints)[codec.flip_permutation(16, FLIP_PAIRS)]
    hm_f = codec.encode(codec.to_heatmap(flipped_joints, S / H), np.ones(16, bool), H, 1.5)[0]
    np.testing.assert_allclose(codec.flip_heatmaps(hm_f[None], FLIP_PAIRS)[0], hm, atol=1e-5)


def test_crop_decode_back_to_frame():
    """Frame joints -> crop -> heatmaps -> decode_crops -> frame joints within 0.05 heatmap px."""
    rng = np.random.default_rng(4)
    S, H = 128, 32
    boxes = [np.array([400.0, 300.0, 180.0]), np.array([50.0, 60.0, 40.0])]
    truth, heat, mats = [], [], []
    for box in boxes:
        j = box[:2] + rng.uniform(-0.45, 0.45, (16, 2)) * box[2]
        M = crops.crop_matrix(box, S)
        hm, _ = codec.encode(codec.to_heatmap(crops.apply_affine(M, j), S / H), np.ones(16, bool), H, 1.5)
        truth.append(j)
        heat.append(hm)
        mats.append(M)
    joints, scores = decode_crops(np.stack(heat), np.stack(mats), S)
    for b, j_true, j in zip(boxes, truth, joints):
        px_per_hm = b[2] * crops.CROP_MARGIN / H
        assert np.abs(j - j_true).max() < 0.05 * px_per_hm
    assert scores.min() > 0.75


def test_pyramid_crop_matches_direct_warp_geometry():
    # A bright dot in a big frame lands on the same crop pixel whether the crop is cut from
    # the full frame or from a half-resolution level.
    frame = np.zeros((2000, 3000, 3), np.uint8)
    frame[990:1010, 1490:1510] = 255          # centre (1499.5, 999.5)
    box = np.array([1400.0, 900.0, 1500.0])   # shrinks ~15x: the pyramid is used
    M = crops.crop_matrix(box, 128)
    expect = crops.apply_affine(M, np.array([1499.5, 999.5]))
    crop = Pyramid(frame).crop(M, 128).astype(np.float64).sum(-1)
    ys, xs = np.nonzero(crop > 0)
    w = crop[ys, xs]
    centre = np.array([(xs * w).sum() / w.sum(), (ys * w).sum() / w.sum()])
    assert np.abs(centre - expect).max() < 0.3


def test_pyramid_crop_matches_direct_warp_on_smooth_image():
    # On a smooth image, cutting from a shrunk region must look like the plain warp (also for a
    # crop that hangs over the frame's edge).
    yy, xx = np.mgrid[0:1500, 0:2500].astype(np.float64)
    img = 127 + 60 * np.sin(xx / 150.0) + 60 * np.cos(yy / 110.0)
    frame = np.repeat(img[..., None], 3, -1).astype(np.uint8)
    for box in ([1200.0, 700.0, 900.0], [150.0, 1400.0, 700.0]):
        M = crops.crop_matrix(np.array(box), 128)
        a = Pyramid(frame).crop(M, 128).astype(np.float64)
        b = crops.warp(frame, M, 128).astype(np.float64)
        assert np.abs(a - b).mean() < 1.5
        assert ((a == 0) == (b == 0)).mean() > 0.98     # the same part is outside the frame


def _detector_maps(people, H=64):
    """Maps following the detector contract for people given as (peak cell (x, y), box centre in
    heatmap px, size in heatmap px)."""
    maps = np.zeros((4, H, H), np.float32)
    maps[0] = -8.0
    for (px, py), (cx, cy), size, logit in people:
        maps[0, py, px] = logit
        maps[1, py, px] = (cx - px) / 4
        maps[2, py, px] = (cy - py) / 4
        maps[3, py, px] = np.log(size)
    return maps


def test_decode_people_recovers_boxes_in_frame_pixels():
    W, Hf = 1920, 1080
    frame = np.zeros((Hf, W, 3), np.uint8)
    canvas, scale = letterbox(frame)
    assert canvas.shape == (256, 256, 3)
    assert scale[0] == pytest.approx(256 / 1920) and scale[1] == pytest.approx(144 / 1080)
    people = [((10, 20), (10.5, 21.25), 12.0, 3.0), ((40, 15), (39.0, 14.0), 20.0, 1.0),
              ((41, 15), (41.0, 15.0), 20.0, 0.5),   # suppressed: next to a stronger peak
              ((60, 60), (60.0, 60.0), 5.0, -3.0)]   # below threshold
    found = decode_people(_detector_maps(people), threshold=0.3, max_people=10, nms_radius=2, scale=scale)
    assert len(found) == 2
    (b0, s0), (b1, s1) = found
    assert s0 > s1 > 0.3
    for (_, c_hm, size_hm, _), b in zip(people[:2], (b0, b1)):
        c_canvas = codec.from_heatmap(np.array(c_hm), 4)
        expect = np.array([(c_canvas[0] + 0.5) / scale[0] - 0.5, (c_canvas[1] + 0.5) / scale[1] - 0.5])
        np.testing.assert_allclose(b[:2], expect, atol=1e-3)
        assert b[2] == pytest.approx(size_hm * 4 / 0.5 / (scale[0] + scale[1]), rel=1e-4)
    assert len(decode_people(_detector_maps(people), max_people=1, scale=scale)) == 1


def test_decode_people_empty_frame():
    assert decode_people(_detector_maps([]), threshold=0.3) == []


def test_letterbox_places_frame_top_left():
    frame = np.full((400, 1000, 3), 200, np.uint8)
    canvas, (sx, sy) = letterbox(frame)
    assert canvas[:102, :256].min() == 200 and canvas[103:].max() == 0


def test_root_depth_recovers_known_depth():
    camera = pytest.importorskip("inference.core.camera")
    K = camera.intrinsics((1920, 1080), fov_deg=60.0)
    f = K[0, 0]
    for Z in (2.0, 4.5, 11.0):
        # A person of 2 m box side (RootNet's nominal 2 m x 2 m) at depth Z.
        side_px = f * 2.0 / Z
        pts = np.array([[0.0, 0.0], [side_px, side_px * 0.4]])
        area = camera.bbox_area(pts)
        assert camera.root_depth(area, K) == pytest.approx(Z, rel=1e-9)
    X = np.array([[0.3, -0.2, 4.0]])
    np.testing.assert_allclose(camera.unproject(camera.project(X, K), X[:, 2], K), X, atol=1e-12)
    assert f == pytest.approx(0.5 * 1920 / np.tan(np.deg2rad(30.0)))
