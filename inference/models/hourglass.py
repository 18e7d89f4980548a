"""Stacked hourglass network (Newell, Yang and Deng, ECCV 2016), config-driven.

One code path serves every preset: the stem brings the input down to 1/4 of its
resolution, each stack is an hourglass of residual bottleneck modules followed by a
1x1 head that predicts `out_channels` maps, and the prediction of every stack but the
last is merged back into the features (intermediate supervision).

Input (N, 3, S, S) float in [0, 1] (RGB); output: a list of `stacks` tensors, each
(N, C, S/4, S/4). The last one is the prediction.
"""
from __future__ import annotations

import torch
from torch import nn

from inference.models.hourglass_config import HourglassConfig  # noqa: F401  (re-exported: defined without torch)
from inference.models.widening import widen_state


class Residual(nn.Module):
    """Pre-activation bottleneck: BN-ReLU-1x1 (c/2), BN-ReLU-3x3 (c/2), BN-ReLU-1x1 (c)."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        mid = cout // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, mid, 1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, mid, 3, padding=1, bias=False),
            nn.BatchNorm2d(mid), nn.ReLU(inplace=True), nn.Conv2d(mid, cout, 1),
        )
        self.skip = nn.Identity() if cin == cout else nn.Conv2d(cin, cout, 1)

    def forward(self, x):
        return self.skip(x) + self.body(x)


class Hourglass(nn.Module):
    """Recursive hourglass: a skip branch at this resolution plus a half-resolution branch."""

    def __init__(self, depth: int, c: int):
        super().__init__()
        self.skip = Residual(c, c)
        self.down = nn.Sequential(nn.MaxPool2d(2), Residual(c, c))
        self.inner = Hourglass(depth - 1, c) if depth > 1 else Residual(c, c)
        self.up = Residual(c, c)

    def forward(self, x):
        low = self.up(self.inner(self.down(x)))
        if 2 * low.shape[-2] == x.shape[-2] and 2 * low.shape[-1] == x.shape[-1]:
            # The same numbers as size=, but exported as a constant scale: ONNX Runtime then keeps
            # the whole network in its blocked (NCHWc) layout, where sizes read from the input's
            # shape cost a layout change around every upsampling (docs/runtime.md, 1.1-1.2x).
            up = nn.functional.interpolate(low, scale_factor=2.0, mode="nearest")
        else:   # an odd side (160 px input: 5 -> 2 -> 5)
            up = nn.functional.interpolate(low, size=x.shape[-2:], mode="nearest")
        return self.skip(x) + up


class StackedHourglass(nn.Module):
    def __init__(self, cfg: HourglassConfig):
        super().__init__()
        self.check_size(cfg)
        self.cfg = cfg
        c = cfg.features
        # Stem: 7x7 stride 2, residual, max-pool: 1/4 resolution, as in the paper.
        self.stem = nn.Sequential(
            nn.Conv2d(3, c // 2, 7, stride=2, padding=3, bias=False), nn.BatchNorm2d(c // 2),
            nn.ReLU(inplace=True), Residual(c // 2, c // 2), nn.MaxPool2d(2),
            Residual(c // 2, c // 2), Residual(c // 2, c),
        )
        self.hourglasses = nn.ModuleList(Hourglass(cfg.depth, c) for _ in range(cfg.stacks))
        self.features = nn.ModuleList(
            nn.Sequential(*[Residual(c, c) for _ in range(cfg.modules_per_stack)],
                          nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            for _ in range(cfg.stacks))
        self.heads = nn.ModuleList(nn.Conv2d(c, cfg.out_channels, 1) for _ in range(cfg.stacks))
        self.merge_features = nn.ModuleList(nn.Conv2d(c, c, 1) for _ in range(cfg.stacks - 1))
        self.merge_preds = nn.ModuleList(nn.Conv2d(cfg.out_channels, c, 1) for _ in range(cfg.stacks - 1))

    @staticmethod
    def check_size(cfg: HourglassConfig) -> None:
        # The heatmap side must halve evenly down to the innermost level; that level's pooling may
        # drop an odd row (160 px: 40, 20, 10, 5 -> 2) since the nearest upsampling is to the
        # skip branch's own size.
        if cfg.in_size % (4 * 2 ** (cfg.depth - 1)):
            raise ValueError(f"in_size {cfg.in_size} must be a multiple of {4 * 2 ** (cfg.depth - 1)}")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        outs = []
        for i in range(self.cfg.stacks):
            f = self.features[i](self.hourglasses[i](x))
            pred = self.heads[i](f)
            outs.append(pred)
            if i < self.cfg.stacks - 1:
                x = x + self.merge_features[i](f) + self.merge_preds[i](pred)
        return outs


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def widen(model: StackedHourglass, features: int, seed: int = 0) -> StackedHourglass:
    """A wider copy of `model` that computes exactly the same outputs (widening.widen_state:
    the added channels get fresh random incoming weights and zero links into the original
    ones, so training grows from the trained network's accuracy)."""
    old = model.cfg
    if features < old.features or features % 2:
        raise ValueError(f"can only widen to an even width >= {old.features}, got {features}")
    torch.manual_seed(seed)
    new = StackedHourglass(HourglassConfig(**{**old.to_dict(), "features": features}))
    new.load_state_dict(widen_state(model.state_dict(), new.state_dict()))
    return new.train(model.training)
