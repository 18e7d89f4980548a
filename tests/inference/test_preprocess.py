"""Network input normalisation: the table look-up gives the arithmetic's float32 bits exactly."""
from __future__ import annotations

import cv2
import numpy as np

from engine_media import sample_video
from inference.models.preprocess import MEAN, STD, to_array


def _arithmetic(batch_bgr: np.ndarray) -> np.ndarray:
    """The definition the networks were trained with (models/preprocess.py before the table)."""
    x = batch_bgr[..., ::-1].astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def test_every_value_of_every_channel_is_bit_identical():
    rows, cols = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8), indexing="ij")
    batch = np.stack([rows, cols[:, ::-1], np.roll(rows, 7, axis=0)], -1)[None]   # every value in each channel
    got = to_array(batch)
    assert got.dtype == np.float32 and got.shape == (1, 3, 256, 256) and got.flags.c_contiguous
    assert np.array_equal(got.view(np.uint32), _arithmetic(batch).view(np.uint32))


def test_real_crops_and_odd_layouts():
    path = sample_video()
    if path is not None:
        cap = cv2.VideoCapture(str(path))
        ok, frame = cap.read()
        cap.release()
        assert ok
        crops = np.stack([frame[100:228, 600:728], frame[300:428, 800:928]])     # real pixels, 128 px
    else:
        crops = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    assert np.array_equal(to_array(crops), _arithmetic(crops))
    strided = crops[:, ::2, ::2]                        # a view, not contiguous
    assert np.array_equal(to_array(strided), _arithmetic(strided))
    assert to_array(crops[:0]).shape == (0, 3, 128, 128)
    as_float = crops.astype(np.float32)                 # not uint8: the arithmetic itself
    np.testing.assert_array_equal(to_array(as_float), _arithmetic(as_float))
