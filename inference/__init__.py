"""Markerless motion capture engine: video -> people -> 2D -> tracks -> 3D -> pose file.

    from inference import PipelineOptions, run
    result = run("clip.mp4", PipelineOptions(preset="fast"))
    result.save("clip.npz")

Command line: ``python -m inference VIDEO -o out.npz`` (see ``inference/__main__.py``).
Importing this package is light: torch and OpenCV load only when ``run`` is first used.
"""
from __future__ import annotations

__all__ = ["run", "PipelineOptions", "PoseResult", "InferenceError"]


def __getattr__(name):  # PEP 562: lazy attributes keep `import inference` cheap
    if name in ("run", "PipelineOptions", "PoseResult"):
        from inference import pipeline

        return getattr(pipeline, name)
    if name == "InferenceError":
        from inference.errors import InferenceError

        return InferenceError
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
