"""The per-person confidence strip of the overlay video: one thin band per person along the
bottom of the frame, time left to right over the whole clip, with a playhead at the current frame.

A band's column is coloured by the person's mean score there (the seen joints' mean, viridis
like ``preview.confidence_strip``: dark purple 0, yellow 1); frames the engine interpolated
(the pose file's ``filled``) are hatched, frames without the person dark grey. A square in the
person's track colour (the skeleton's) leads each band. The strip is made once per video
(``strip_image``) and pasted on each frame (``draw_strip``): numpy and OpenCV only.

Letters: P people, F frames, J joints, W and H the output frame's size.
"""
from __future__ import annotations

import cv2
import numpy as np

ABSENT_BGR = (48, 48, 48)
MAX_SHARE = 0.2          # the strip never covers more than this share of the frame's height


def band_height(people: int, frame_h: int) -> int:
    """Pixels per band: about 1.2% of the frame's height (12 px at 1000), at least 3, and all
    bands (with their 1-px gaps) within MAX_SHARE of the frame."""
    want = max(3, int(round(0.012 * frame_h)))
    fit = int(MAX_SHARE * frame_h) // max(people, 1) - 1
    return max(1, min(want, fit))


def mean_scores(scores: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(P, F) mean score of the seen joints (score > 0) where the person is present, NaN elsewhere."""
    sc = np.asarray(scores, np.float64)
    seen = np.asarray(valid, bool)[..., None] & (sc > 0)
    n = seen.sum(-1)
    return np.where(n > 0, (sc * seen).sum(-1) / np.maximum(n, 1), np.nan)


def _columns(values: np.ndarray, starts: np.ndarray, op) -> np.ndarray:
    """Per column, ``op`` over the frames from its start to the next column's (one frame, or
    the same frame again, when there are more columns than frames)."""
    if len(values) > len(starts):
        return op.reduceat(values, starts)
    return values[starts]


def strip_image(scores: np.ndarray, valid: np.ndarray, colors, width: int, band_h: int,
                filled: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """The strip (H, width, 3) uint8 BGR and the x where its time axis starts.

    scores (P, F, J), valid (P, F), colors: P BGR track colours, filled (P, F) bool or None.
    Column x >= x0 starts at frame (x - x0) * F // (width - x0); when a column covers several
    frames it shows their lowest mean (a short weak span stays visible) and is hatched if any
    was interpolated."""
    mean = mean_scores(scores, valid)
    P, F = mean.shape
    key = max(6, 2 * band_h)                      # the track-colour square (a band's legend)
    x0 = min(key + 2, max(width - 1, 0))
    cols = max(width - x0, 1)
    starts = np.minimum(np.arange(cols) * F // cols, F - 1)
    H = P * (band_h + 1)
    out = np.zeros((H, width, 3), np.uint8)
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_VIRIDIS)[:, 0]
    yy, xx = np.mgrid[0:band_h, 0:cols]
    hatch = (xx + yy) % 4 < 2                     # diagonal stripes over interpolated frames
    for p in range(P):
        m = _columns(mean[p], starts, np.fmin)    # fmin: NaN (absent) only where all are
        band = np.empty((cols, 3), np.uint8)
        present = np.isfinite(m)
        band[present] = lut[np.clip(np.round(m[present] * 255), 0, 255).astype(np.int64)]
        band[~present] = ABSENT_BGR
        rows = np.broadcast_to(band, (band_h, cols, 3)).copy()
        if filled is not None:
            guess = _columns(np.asarray(filled[p], bool), starts, np.logical_or) & present
            dark = hatch & guess[None]
            rows[dark] = rows[dark] // 2
        y = p * (band_h + 1)
        out[y:y + band_h, x0:] = rows[:, : width - x0]
        out[y:y + band_h, : min(key, width)] = colors[p]
    return out, x0


def draw_strip(frame: np.ndarray, strip: np.ndarray, x0: int, f: int, F: int) -> np.ndarray:
    """Paste ``strip`` along the bottom of ``frame`` (in place) with a playhead at frame f of F."""
    H, W = strip.shape[:2]
    h = frame.shape[0]
    if H == 0 or H > h or W != frame.shape[1]:
        return frame
    frame[h - H:] = strip
    cols = max(W - x0, 1)
    x = x0 + int((f + 0.5) * cols / max(F, 1))
    x = min(max(x, x0), W - 1)
    frame[h - H:, max(x - 1, 0):x + 2] = 0            # a white line with dark edges: seen on any colour
    frame[h - H:, x] = 255
    return frame
