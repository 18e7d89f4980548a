"""Pictures a person reads at a glance (inference.viz.preview): 3D panels fitted to the people,
the floor's grid, and each person's joint scores over time."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

import posefile
from blender_mocap_addon.core import synthetic
from inference.viz import preview


def test_panel_box_fits_the_people_not_the_whole_clip():
    rng = np.random.default_rng(0)
    two = np.concatenate([rng.uniform([0, 5, 0], [0.5, 5.4, 1.8], (16, 3)),
                          rng.uniform([1.5, 5, 0], [2.0, 5.4, 1.8], (16, 3))])
    centre, half = preview.panel_box(two)
    assert half == pytest.approx(0.5 * (two[:, 0].max() - two[:, 0].min()) + 0.1, abs=0.05)
    assert (np.abs(two - centre) <= half).all()
    one = rng.uniform([0, 5, 0], [0.3, 5.2, 1.7], (16, 3))
    assert preview.panel_box(one)[1] == 1.0                         # at least 2 m wide
    on_wall = one + [0, 0, 2.2]                                     # standing 2.2 m above the floor
    c, h = preview.panel_box(on_wall, floor=True)
    assert c[2] - h == pytest.approx(0.0) and c[2] + h >= on_wall[:, 2].max()
    nan = np.full((16, 3), np.nan)
    assert preview.panel_box(np.concatenate([one, nan]))[1] == 1.0   # NaN joints ignored


def test_grid_with_floor_and_confidence_strip(tmp_path):
    arr = synthetic.pose_arrays(P=2, F=40, seed=3, gaps=True)
    T = np.eye(4, dtype=np.float32)
    T[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]                   # camera y down -> world z up
    T[2, 3] = 1.0
    png = tmp_path / "grid.png"
    frames = preview.preview_grid(arr["joints3d"], arr["valid"], arr["person_ids"], str(png), n=4, cols=2,
                                  dpi=50, world_from_camera=T)
    assert len(frames) == 4 and cv2.imread(str(png)).std() > 5
    scores = np.array(arr["scores"], np.float32)
    scores[0, :, 3] = 0.0                                              # a joint never seen
    conf = tmp_path / "conf.png"
    means = preview.confidence_strip(scores, arr["valid"], arr["person_ids"], 30.0, str(conf), dpi=50)
    for p in range(2):
        s = scores[p][arr["valid"][p]]
        seen = s > 0
        want = np.mean((s * seen).sum(1) / seen.sum(1))
        assert means[p] == pytest.approx(want, rel=1e-6)
    img = cv2.imread(str(conf))
    assert img.shape[1] == 300 and img.shape[0] > 100 and img.std() > 5       # 6 in x 50 dpi
    with pytest.raises(ValueError, match="no person"):
        preview.confidence_strip(scores[:0], arr["valid"][:0], arr["person_ids"][:0], 30.0, str(conf))


def test_preview_command_draws_the_floor_and_confidence(tmp_path):
    arr = synthetic.pose_arrays(P=1, F=20, seed=5)
    pose = tmp_path / "p.npz"
    posefile.write_posefile(str(pose), **arr)
    out, conf = tmp_path / "g.png", tmp_path / "c.png"
    assert preview.main([str(pose), "-o", str(out), "--frames", "2", "--confidence", str(conf)]) == 0
    assert out.is_file() and conf.is_file()
    assert preview.main([str(tmp_path / "missing.npz"), "-o", str(out)]) == 1
