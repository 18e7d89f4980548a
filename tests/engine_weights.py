"""Weights for the engine's tests.

``shipped_weights()``: the repository's trained weights folder when its manifests exist, else
None (tests that judge accuracy skip only then). ``untrained_weights(folder)``: randomly
initialised networks of the real architectures with real manifests (``training.untrained``),
for tests of the engine's mechanics (shapes, streaming, errors), never of its accuracy.
"""
from __future__ import annotations

from pathlib import Path

from training.untrained import untrained_weights

__all__ = ["shipped_weights", "untrained_weights"]

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights"
NEEDED = ("pose_fast.json", "detector_fast.json", "lifter.json")


def shipped_weights() -> Path | None:
    return WEIGHTS if all((WEIGHTS / n).is_file() for n in NEEDED) else None
