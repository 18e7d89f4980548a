"""Network input normalisation, shared by training and run time so they never drift apart."""
from __future__ import annotations

import numpy as np

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB, ImageNet statistics
STD = np.array([0.229, 0.224, 0.225], np.float32)


def to_array(batch_bgr: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float32 normalised RGB, C-contiguous."""
    x = batch_bgr[..., ::-1].astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def to_tensor(batch_bgr: np.ndarray):
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float torch tensor, normalised RGB."""
    import torch  # lazy: the ONNX runtime path needs no torch here

    return torch.from_numpy(to_array(batch_bgr))
