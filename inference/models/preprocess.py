"""Network input normalisation, shared by training and run time so they never drift apart."""
from __future__ import annotations

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB, ImageNet statistics
STD = np.array([0.229, 0.224, 0.225], np.float32)


def _normalise(bgr: np.ndarray) -> np.ndarray:
    """The definition: (..., 3) BGR -> (..., 3) float32 normalised RGB."""
    x = bgr[..., ::-1].astype(np.float32) / 255.0
    return (x - MEAN) / STD


# Every uint8 value of each channel through _normalise once: (3, 256) float32, RGB rows. A
# table look-up gives the same float32 bits as the arithmetic (the same operations on the same
# values) at a third to a quarter of its cost, in one pass that also writes channels-first.
_TABLE = np.ascontiguousarray(_normalise(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)).T)


def to_array(batch_bgr: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float32 normalised RGB, C-contiguous."""
    batch_bgr = np.asarray(batch_bgr)
    if batch_bgr.dtype != np.uint8:
        return np.ascontiguousarray(_normalise(batch_bgr).transpose(0, 3, 1, 2))
    out = np.empty((batch_bgr.shape[0], 3) + batch_bgr.shape[1:3], np.float32)
    for c in range(3):   # RGB channel c is BGR channel 2 - c; mode "clip" writes out unbuffered
        np.take(_TABLE[c], batch_bgr[..., 2 - c], out=out[:, c], mode="clip")
    return out


def to_tensor(batch_bgr: np.ndarray):
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float torch tensor, normalised RGB."""
    import torch  # lazy: the ONNX runtime path needs no torch here

    return torch.from_numpy(to_array(batch_bgr))
