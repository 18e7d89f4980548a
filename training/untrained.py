"""Randomly initialised networks of the real architectures, with real manifests.

For what must not depend on training: the engine's mechanics tests (shapes, streaming, errors)
and the speed and memory benchmarks (``--untrained``). Never for accuracy.
"""
from __future__ import annotations

from pathlib import Path

import torch

from inference.models.hourglass import StackedHourglass
from inference.models.lifter import build_model
from inference.models.weights import save_state_dict, write_manifest
from training.presets import DETECTOR_PRESETS, POSE_PRESETS


def untrained_weights(folder: Path, seed: int = 0) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    # One small random network serves every shipped preset's name (the mechanics tests need the
    # default preset's files, not its width; the engine builds each network from its manifest).
    pose = StackedHourglass(POSE_PRESETS["fast"])
    for preset in ("fast", "balanced"):
        save_state_dict(pose.state_dict(), folder / f"pose_{preset}.pt")
        # An untrained network's scores mean nothing: no start gate, so that person verification
        # (which takes its thresholds from the gate) lets the mechanics through.
        write_manifest(folder / f"pose_{preset}.pt", "2d", POSE_PRESETS["fast"].to_dict(), "untrained (tests)",
                       gate={"start_score": 0.0})
    det = StackedHourglass(DETECTOR_PRESETS["fast"])
    with torch.no_grad():
        det.heads[-1].bias[0] = -1.0
    save_state_dict(det.state_dict(), folder / "detector_fast.pt")
    write_manifest(folder / "detector_fast.pt", "detector", DETECTOR_PRESETS["fast"].to_dict(), "untrained (tests)")
    cfg = {"arch": "tcn", "filter_widths": [3, 3], "channels": 32, "dropout": 0.0}
    lifter = build_model(cfg)
    save_state_dict(lifter.state_dict(), folder / "lifter.pt", fp16=False)
    write_manifest(folder / "lifter.pt", "3d", cfg, "untrained (tests)")
    return folder
