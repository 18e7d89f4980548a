"""training/quantize_pose.py without LSP data: the norm rewrite computes the same maps, and the
calibration rows are fixed training rows."""
from __future__ import annotations

import numpy as np
import pytest

from engine_weights import WEIGHTS
from inference.models import runtime
from inference.models.weights import load_manifest
from training.quantize_pose import CALIB_CROPS, calibration_rows, norms_as_mul_add

onnx = pytest.importorskip("onnx")


@pytest.mark.skipif(runtime.onnxruntime_module() is None, reason="onnxruntime is not installed")
def test_norms_as_mul_add_same_maps(tmp_path):
    manifest = load_manifest(WEIGHTS / "pose_balanced.json", kind="2d")
    fp32 = runtime.build_onnx(manifest, tmp_path)
    model = onnx.load(str(fp32))
    norms = sum(n.op_type == "BatchNormalization" for n in model.graph.node)
    rewritten = norms_as_mul_add(model)
    assert norms > 0 and not any(n.op_type == "BatchNormalization" for n in rewritten.graph.node)
    onnx.checker.check_model(rewritten)
    onnx.save(rewritten, str(tmp_path / "r.onnx"))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 3, 128, 128)).astype(np.float32)
    want = runtime.onnx_session(fp32, 1).run(None, {"image": x})[0]
    got = runtime.onnx_session(tmp_path / "r.onnx", 1).run(None, {"image": x})[0]
    assert np.abs(got - want).max() < 1e-4


def test_calibration_rows_are_fixed_training_rows():
    is_test = np.zeros(10000, bool)
    is_test[9000:] = True
    rows = calibration_rows(is_test)
    assert len(rows) == CALIB_CROPS and len(set(rows)) == CALIB_CROPS
    assert not is_test[rows].any() and rows[0] == 17 and (np.diff(rows) == 35).all()
    assert (calibration_rows(is_test) == rows).all()
