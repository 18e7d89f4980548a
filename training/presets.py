"""Named network configurations. One code path, several sizes."""
from __future__ import annotations

from inference.models.hourglass import HourglassConfig

# 2D pose networks (single-person crops, 16 joint heatmaps).
POSE_PRESETS = {
    # CPU real-time target: 2 stacks of 64 channels at 128 px (0.42 M parameters).
    "fast": HourglassConfig(stacks=2, features=64, in_size=128, out_channels=16),
    # The fast network widened to 128 channels (1.66 M parameters, about 3x its cost), trained
    # on from the fast weights (hourglass.widen): what the CPU can grow between GPU sessions.
    "balanced": HourglassConfig(stacks=2, features=128, in_size=128, out_channels=16),
    # The configuration of the design (8 stacks, 256 px); needs a GPU to train.
    "accurate": HourglassConfig(stacks=8, features=256, in_size=256, out_channels=16),
}

# Person detector on the whole frame letterboxed to 256 px: channel 0 pelvis-centre
# heatmap (logits), 1-2 offset to the box centre / 4, 3 log box size (heatmap px).
DETECTOR_PRESETS = {
    "fast": HourglassConfig(stacks=1, features=32, in_size=256, out_channels=4),
}

HEATMAP_SIGMA = 1.5   # in heatmap pixels
