"""Weights for the engine's tests.

``shipped_weights()``: the repository's trained weights folder when its manifests exist, else
None (tests that judge accuracy skip only then). ``untrained_weights(folder)``: randomly
initialised networks of the real architectures with real manifests, for tests of the engine's
mechanics (shapes, streaming, errors), never of its accuracy.
"""
from __future__ import annotations

from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = REPO / "weights"
NEEDED = ("pose_fast.json", "detector_fast.json", "lifter.json")


def shipped_weights() -> Path | None:
    return WEIGHTS if all((WEIGHTS / n).is_file() for n in NEEDED) else None


def untrained_weights(folder: Path, seed: int = 0) -> Path:
    from inference.models.hourglass import StackedHourglass
    from inference.models.lifter import build_model
    from training.presets import DETECTOR_PRESETS, POSE_PRESETS
    from inference.models.weights import save_state_dict, write_manifest

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    # One small random network serves every shipped preset's name (the mechanics tests need the
    # default preset's files, not its width; the engine builds each network from its manifest).
    pose = StackedHourglass(POSE_PRESETS["fast"])
    for preset in ("fast", "balanced"):
        save_state_dict(pose.state_dict(), folder / f"pose_{preset}.pt")
        write_manifest(folder / f"pose_{preset}.pt", "2d", POSE_PRESETS["fast"].to_dict(), "untrained (tests)")
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
