"""Pictures of results (video overlay, 3D preview and trajectory plots). Reads pose files and
runs the pipeline; nothing in the engine imports it."""
