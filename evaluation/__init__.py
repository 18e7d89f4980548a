"""Measuring the engine on held-out data: ``eval_2d``, ``eval_detector``, ``eval_video``,
``eval_3d``, ``pose_errors`` (a network's measured errors, replayed in 3D evaluation and lifter
training) and ``report`` (docs/REPORT.md). May import ``inference`` and ``data``."""
