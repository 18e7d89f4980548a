"""2D -> 3D lifter networks and their input features.

Input features (per frame, ``pose_features``, pure numpy) are independent of image size and
focal length: joints in normalised image coordinates ((u - cx)/fx, (v - cy)/fy), centred on the 2D
root and divided by the side s of the square 2D box around the visible joints; plus the scores and
the root's normalised position (its viewing ray).  Missing joints (score 0) are zeros.

Outputs per frame: root-relative 3D joints in metres, camera axes (16 x 3), and a log correction
c of the RootNet pinhole depth: z_root = exp(c) * sqrt(A_real) / s (camera.root_depth in
normalised units; Moon et al., ICCV 2019).

Models:
* ``TemporalLifter``: dilated 1D convolutions over a window of frames with residual blocks
  (Pavllo et al., "3D human pose estimation in video with temporal convolutions and
  semi-supervised training", CVPR 2019).  ``forward(x, strided=True)`` evaluates only the centre
  frame of a receptive-field window (cheap training); ``strided=False`` runs the same weights
  with dilations over a whole sequence.
* ``MLPLifter``: per-frame residual MLP (Martinez et al., "A simple yet effective baseline for 3D
  human pose estimation", ICCV 2017).
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

# The input features and output layout are numpy (lifter_features.py, usable without torch);
# re-exported here under their old names.
from inference.models.lifter_features import (J, L_HIP, N_FEAT, N_OUT, PELVIS, pose_features,  # noqa: F401
                                              R_HIP, receptive_field, root_2d)
from inference.models.widening import widen_state

class TemporalLifter(nn.Module):
    """Dilated temporal conv net. Input (B, T, 50) -> output (B, T - RF + 1, 49)."""

    def __init__(self, filter_widths=(3, 3, 3), channels=256, dropout=0.25, n_in=N_FEAT, n_out=N_OUT):
        super().__init__()
        self.filter_widths = tuple(int(w) for w in filter_widths)
        self.expand = nn.Conv1d(n_in, channels, self.filter_widths[0], bias=False)
        self.expand_bn = nn.BatchNorm1d(channels, momentum=0.1)
        self.convs = nn.ModuleList()
        self.bns = nn.ModuleList()
        for w in self.filter_widths[1:]:
            self.convs.append(nn.Conv1d(channels, channels, w, bias=False))
            self.bns.append(nn.BatchNorm1d(channels, momentum=0.1))
            self.convs.append(nn.Conv1d(channels, channels, 1, bias=False))
            self.bns.append(nn.BatchNorm1d(channels, momentum=0.1))
        self.drop = nn.Dropout(dropout)
        self.head = nn.Conv1d(channels, n_out, 1)

    @property
    def receptive_field(self) -> int:
        rf = 1
        for w in reversed(self.filter_widths):
            rf = rf * w
        return rf

    def load_grown(self, state: dict, new_gain: float = 0.01) -> int:
        """Start from the weights of a shallower lifter whose filter widths are a prefix of ours
        (e.g. receptive field 27 -> 81): its layers and head are copied and each added residual
        block's last BatchNorm starts at a small gain, so the grown network begins almost exactly
        where the shallow one was (not exactly zero: ReLU's gradient at 0 would keep it dead).
        Returns the number of blocks added."""
        n_old = sum(1 for k in state if k.startswith("convs.") and k.endswith(".weight")) // 2
        n_new = len(self.filter_widths) - 1 - n_old
        if n_new < 0 or state["expand.weight"].shape != self.expand.weight.shape:
            raise ValueError("load_grown: the given weights are not a shallower version of this network")
        missing, unexpected = self.load_state_dict(state, strict=False)
        if unexpected or any(not k.startswith(("convs.", "bns.")) for k in missing):
            raise ValueError(f"load_grown: weights do not fit (missing {missing}, unexpected {unexpected})")
        with torch.no_grad():
            for i in range(n_old, n_old + n_new):
                self.bns[2 * i + 1].weight.fill_(new_gain)
                self.bns[2 * i + 1].bias.zero_()
        return n_new

    def load_widened(self, state: dict) -> int:
        """Start from the weights of a narrower lifter with the same filter widths (e.g. 256 -> 512
        channels): widening.widen_state keeps its function exactly (the added channels have zero
        links into the original ones) while the added channels learn.  Returns the old width."""
        if state["expand.weight"].shape[1:] != self.expand.weight.shape[1:]:    # same inputs, first kernel
            raise ValueError("load_widened: the given weights are not a narrower version of this network")
        self.load_state_dict(widen_state(state, self.state_dict()))   # checks depth, kernels, widths
        return int(state["expand.weight"].shape[0])

    def forward(self, x: torch.Tensor, strided: bool = True) -> torch.Tensor:
        x = x.transpose(1, 2)
        fw = self.filter_widths
        if strided:
            x = F.conv1d(x, self.expand.weight, stride=fw[0])
        else:
            x = F.conv1d(x, self.expand.weight)
        x = self.drop(F.relu(self.expand_bn(x)))
        dil = fw[0]
        for i, w in enumerate(fw[1:]):
            if strided:
                res = x[:, :, w // 2::w]
                y = F.conv1d(x, self.convs[2 * i].weight, stride=w)
            else:
                pad = (w - 1) * dil // 2
                res = x[:, :, pad:x.shape[2] - pad]
                y = F.conv1d(x, self.convs[2 * i].weight, dilation=dil)
            y = self.drop(F.relu(self.bns[2 * i](y)))
            y = self.drop(F.relu(self.bns[2 * i + 1](self.convs[2 * i + 1](y))))
            x = res + y
            dil *= w
        return self.head(x).transpose(1, 2)


class MLPLifter(nn.Module):
    """Per-frame residual MLP. Input (B, T, 50) -> (B, T, 49) (T may be 1)."""

    def __init__(self, hidden=512, blocks=2, dropout=0.25, n_in=N_FEAT, n_out=N_OUT):
        super().__init__()
        self.inp = nn.Linear(n_in, hidden)
        self.inp_bn = nn.BatchNorm1d(hidden)
        self.layers = nn.ModuleList()
        for _ in range(blocks):
            self.layers.append(nn.ModuleList([nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden),
                                              nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden)]))
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, n_out)

    receptive_field = 1

    def forward(self, x: torch.Tensor, strided: bool = True) -> torch.Tensor:
        B, T, _ = x.shape
        h = x.reshape(B * T, -1)
        h = self.drop(F.relu(self.inp_bn(self.inp(h))))
        for l1, b1, l2, b2 in self.layers:
            y = self.drop(F.relu(b1(l1(h))))
            y = self.drop(F.relu(b2(l2(y))))
            h = h + y
        return self.out(h).reshape(B, T, -1)


def build_model(config: dict) -> nn.Module:
    """Model from a config dict: {"arch": "tcn", "filter_widths": [...], "channels": C, "dropout": p}
    or {"arch": "mlp", "hidden": H, "blocks": n, "dropout": p}."""
    arch = config.get("arch", "tcn")
    if arch == "tcn":
        return TemporalLifter(config.get("filter_widths", (3, 3, 3)), config.get("channels", 256),
                              config.get("dropout", 0.25))
    if arch == "mlp":
        return MLPLifter(config.get("hidden", 512), config.get("blocks", 2), config.get("dropout", 0.25))
    raise ValueError(f"unknown lifter arch {arch!r}")


from inference.models.lifter_features import split_output  # noqa: E402,F401  (works on tensors and arrays)
