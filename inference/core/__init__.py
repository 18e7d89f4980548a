"""Engine maths with no network and no video: camera model, heatmap codec, crops, filters,
metrics, score calibration. Imports only numpy (and OpenCV for image warps) and ``posefile``;
never torch, never another part of ``inference``."""
