"""Network input normalisation, shared by training and run time so they never drift apart."""
from __future__ import annotations

import numpy as np
import torch

MEAN = np.array([0.485, 0.456, 0.406], np.float32)  # RGB, ImageNet statistics
STD = np.array([0.229, 0.224, 0.225], np.float32)


def to_tensor(batch_bgr: np.ndarray) -> torch.Tensor:
    """(N, S, S, 3) uint8 BGR -> (N, 3, S, S) float normalised RGB."""
    x = batch_bgr[..., ::-1].astype(np.float32) / 255.0
    x = (x - MEAN) / STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
