"""The overlay video's per-person confidence strip (inference.viz.strip): the bands' pixels
exactly (colour by mean score, hatched where interpolated, grey where absent, the track colour's
square), then written into a real overlay video of a few frames with a moving playhead."""
from __future__ import annotations

import cv2
import numpy as np

from engine_media import write_clip
from inference.viz import overlay, strip
import posefile

VIRIDIS = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)[:, 0]


def _pose(F=40, w=320, h=240):
    d = posefile.empty(2, F, fps=25.0, image_size=(w, h))
    d.valid[0] = True
    d.valid[1, F // 2:] = True                    # person 1 from the middle on
    d.scores[d.valid] = 0.75
    d.scores[0, 5:10] = 0.25                      # person 0 weak on 5..9
    d.filled = np.zeros((2, F), bool)
    d.filled[0, 25:30] = True                     # ... interpolated on 25..29
    d.joints2d[d.valid] = 60.0
    d.joints3d[d.valid] = 3.0
    d.person_ids[:] = [4, 9]
    return d


def test_strip_pixels():
    d = _pose()
    colors = [overlay.track_color(i) for i in d.person_ids]
    band_h = strip.band_height(2, 240)
    x0 = strip.strip_image(d.scores, d.valid, colors, 100, band_h)[1]       # where time starts
    img, _ = strip.strip_image(d.scores, d.valid, colors, 40 + x0, band_h, d.filled)
    assert img.shape == (2 * (band_h + 1), 40 + x0, 3)      # one column per frame here
    top, low = img[0, x0:], img[band_h + 1, x0:]              # first row of each band
    np.testing.assert_array_equal(top[0], VIRIDIS[round(0.75 * 255)])
    np.testing.assert_array_equal(top[7], VIRIDIS[round(0.25 * 255)])
    np.testing.assert_array_equal(low[3], strip.ABSENT_BGR)   # person 1 not there yet
    np.testing.assert_array_equal(low[30], VIRIDIS[round(0.75 * 255)])
    hatched = img[:band_h, x0 + 25:x0 + 30].reshape(-1, 3)
    assert (hatched == VIRIDIS[round(0.75 * 255)] // 2).all(1).any()          # darkened stripes ...
    assert (hatched == VIRIDIS[round(0.75 * 255)]).all(1).any()               # ... between plain ones
    np.testing.assert_array_equal(img[0, 0], colors[0])        # the legend square
    np.testing.assert_array_equal(img[band_h + 1, 0], colors[1])
    # a narrow strip: several frames per column keep their worst (the weak span stays visible)
    narrow, x1 = strip.strip_image(d.scores, d.valid, colors, x0 + 8, band_h, d.filled)
    assert (narrow[0, x1 + 1] == VIRIDIS[round(0.25 * 255)]).all()        # column 1: frames 5..9
    assert strip.band_height(40, 240) * 41 <= 0.2 * 240 + 40           # many people: still thin


def test_overlay_video_has_the_strip_and_a_moving_playhead(tmp_path):
    F, w, h = 12, 320, 240
    d = _pose(F, w, h)
    clip = write_clip(tmp_path / "c.mp4", F, w=w, h=h)
    plain = overlay.write_overlay(clip, d, tmp_path / "plain.mp4")
    st = overlay.write_overlay(clip, d, tmp_path / "strip.mp4", confidence_strip=True)
    assert st.frames == F and (plain.width, plain.height) == (st.width, st.height) == (w, h)
    band_h = strip.band_height(2, h)
    H = 2 * (band_h + 1)
    a, b = cv2.VideoCapture(str(tmp_path / "plain.mp4")), cv2.VideoCapture(str(tmp_path / "strip.mp4"))
    heads = []
    for f in range(F):
        ok1, fa = a.read()
        ok2, fb = b.read()
        assert ok1 and ok2
        diff = np.abs(fa.astype(int) - fb.astype(int)).mean(-1)
        assert diff[: h - H - 8].mean() < 2.0                 # the picture above the strip unchanged
        assert diff[h - H:].mean() > 10                       # the strip is there
        # person 1's band is dark grey in the first half (absent), bright later
        row = fb[h - H + band_h + 1 + band_h // 2].astype(int)
        assert np.abs(np.median(row[30:140], 0) - strip.ABSENT_BGR).max() < 20     # (median: not the playhead)
        assert np.median(row[200:300], 0).sum() > 300
        # the playhead: the brightest column of the strip moves right with the frame
        heads.append(int(np.argmax(fb[h - H:, 20:].astype(int).sum((0, 2)))) + 20)
    assert heads == sorted(heads) and heads[-1] - heads[0] > w // 2
