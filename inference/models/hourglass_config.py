"""The stacked hourglass's configuration, without torch (the ONNX runtime path reads it from a
manifest without loading torch; hourglass.py re-exports it)."""
from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class HourglassConfig:
    stacks: int = 2
    features: int = 128          # channels inside the hourglasses
    depth: int = 4               # downsamplings per hourglass
    in_size: int = 128           # square input side in pixels (heatmap side = in_size // 4)
    out_channels: int = 16       # heatmaps (+ any extra maps the head predicts)
    modules_per_stack: int = 1   # residual modules after each hourglass

    @property
    def heatmap_size(self) -> int:
        return self.in_size // 4

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HourglassConfig":
        keys = cls.__dataclass_fields__.keys()
        return cls(**{k: v for k, v in d.items() if k in keys})
