"""The engine's stages, in the order data flows: video -> detect -> pose2d -> tracking ->
stitching -> lifting. Each stage imports ``inference.core`` and ``inference.models`` only, never
another stage's internals nor the pipeline that strings them together."""
