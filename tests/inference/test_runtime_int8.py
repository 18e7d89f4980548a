"""The shipped int8 balanced pose network (--runtime onnx-int8): its hash, its refusal when
corrupt, its joints against the fp32 network on real crops, and its one clear error without
onnxruntime. Building it needs LSP data (python -m training.quantize_pose); these tests need only
the shipped files and the sample video."""
from __future__ import annotations

import json
import shutil
import sys

import numpy as np
import pytest

from engine_media import sample_person_crops, sample_video, write_clip
from engine_weights import shipped_weights
from inference import cli, PipelineOptions, run
from inference.core import codec
from inference.errors import InferenceError
from inference.models import runtime
from inference.models.weights import load_manifest, sha256_of, WeightsError
from inference.stages.pose2d import PoseEstimator

SHIPPED = shipped_weights()
needs_int8 = pytest.mark.skipif(SHIPPED is None or not (SHIPPED / "pose_balanced_int8.json").is_file(),
                                reason="needs the shipped weights and the int8 balanced network")
needs_ort = pytest.mark.skipif(runtime.onnxruntime_module() is None, reason="onnxruntime is not installed")


def _copy_balanced(dest):
    for name in ("pose_balanced.json", "pose_balanced.pt", "pose_balanced_int8.json", "pose_balanced_int8.onnx"):
        shutil.copy(SHIPPED / name, dest / name)
    return dest / "pose_balanced.json"


@needs_int8
def test_int8_file_matches_its_manifest():
    record = json.loads((SHIPPED / "pose_balanced_int8.json").read_text())
    onnx = SHIPPED / record["file"]
    assert record["kind"] == runtime.INT8_KIND and onnx.stat().st_size < 5e6
    assert record["sha256"] == sha256_of(onnx)
    fp32 = load_manifest(SHIPPED / "pose_balanced.json")
    assert record["source_sha256"] == fp32["sha256"]
    calib = record["calibration"]
    assert calib["method"] == "percentile" and calib["crops"] == 256 and calib["crops_like"] == "ground-truth"
    assert calib["float_nodes"] == [] and "gate" not in record   # the shipped file runs with the fp32 gate


@needs_int8
@needs_ort
def test_int8_gate_replaces_the_fp32_gate_only_for_int8(tmp_path):
    """An int8 manifest with its own gate (quantize_pose --own-gate) gives it to the engine, which
    reads manifest['gate'] for the start gate, track loss and person verification, when the int8
    file runs; the fp32 runtimes keep the fp32 gate; without one the int8 file runs with the fp32 gate."""
    mpath = _copy_balanced(tmp_path)
    fp32_gate = load_manifest(mpath)["gate"]
    assert runtime.load_network(mpath, "2d", "cpu", "onnx-int8", threads=1)[1]["gate"] == fp32_gate
    record_path = tmp_path / "pose_balanced_int8.json"
    own = dict(fp32_gate, start_score=0.369, runtime="onnx-int8")
    record_path.write_text(json.dumps(dict(json.loads(record_path.read_text()), gate=own)))
    assert runtime.load_network(mpath, "2d", "cpu", "onnx-int8", threads=1)[1]["gate"] == own
    assert runtime.load_network(mpath, "2d", "cpu", "onnx", threads=1)[1]["gate"] == fp32_gate


@needs_int8
@needs_ort
def test_int8_loads_for_balanced_only():
    net, manifest = runtime.load_network(SHIPPED / "pose_balanced.json", "2d", "cpu", "onnx-int8", threads=1)
    assert net.runtime == "onnx-int8" and net.path.name == "pose_balanced_int8.onnx"
    assert manifest["onnx_sha256"] == sha256_of(net.path)
    # networks without an int8 file run their fp32 ONNX file
    fast, _ = runtime.load_network(SHIPPED / "pose_fast.json", "2d", "cpu", "onnx-int8", threads=1)
    det, _ = runtime.load_network(SHIPPED / "detector_fast.json", "detector", "cpu", "onnx-int8", threads=1)
    assert (fast.runtime, det.runtime) == ("onnx", "onnx")


@needs_int8
@needs_ort
def test_corrupted_int8_file_is_refused(tmp_path):
    mpath = _copy_balanced(tmp_path)
    onnx = tmp_path / "pose_balanced_int8.onnx"
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="int8 file .* is corrupt or was replaced"):
        runtime.load_network(mpath, "2d", "cpu", "onnx-int8")
    onnx.unlink()
    with pytest.raises(WeightsError, match="is missing"):
        runtime.load_network(mpath, "2d", "cpu", "onnx-int8")
    shutil.copy(SHIPPED / "pose_balanced_int8.onnx", onnx)
    record_path = tmp_path / "pose_balanced_int8.json"
    record = json.loads(record_path.read_text())
    record_path.write_text(json.dumps(dict(record, source_sha256="0" * 64)))
    with pytest.raises(WeightsError, match="built from other weights"):
        runtime.load_network(mpath, "2d", "cpu", "onnx-int8")
    record_path.write_text(json.dumps(record))
    assert runtime.load_network(mpath, "2d", "cpu", "onnx-int8")[0].runtime == "onnx-int8"




@needs_int8
@needs_ort
@pytest.mark.skipif(sample_video() is None, reason="needs the sample video")
def test_int8_joints_close_to_fp32_on_real_crops():
    """Crops of the two people in three sample frames: the int8 network's joints stay within a
    fraction of a heatmap pixel of the fp32 network's (median; measured 0.26, 0.13 where fp32's
    score > 0.3), its scores close."""
    patches, _ = sample_person_crops()
    assert len(patches) >= 6
    est = {rt: PoseEstimator(SHIPPED / "pose_balanced.json", "cpu", runtime=rt, threads=1)
           for rt in ("onnx", "onnx-int8")}
    assert est["onnx-int8"].model.runtime == "onnx-int8"
    hm = {rt: codec.decode(e.heatmaps(patches)) for rt, e in est.items()}    # heatmap pixels, scores
    dist = np.linalg.norm(hm["onnx"][0] - hm["onnx-int8"][0], axis=-1)
    confident = hm["onnx"][1] > 0.3
    assert confident.sum() >= 40
    assert np.median(dist) < 0.5 and np.median(dist[confident]) < 0.3
    assert np.percentile(dist[confident], 90) < 1.0
    # scores move more than joints (measured: median 0.03, up to 0.20 on a weak joint)
    assert np.median(np.abs(hm["onnx"][1] - hm["onnx-int8"][1])) < 0.05
    assert abs(hm["onnx"][1].mean() - hm["onnx-int8"][1].mean()) < 0.03


def test_int8_without_onnxruntime_is_one_clear_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    clip = write_clip(tmp_path / "c.mp4", 4)
    code = cli.main([str(clip), "-o", str(tmp_path / "out.npz"), "--runtime", "onnx-int8", "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_FAILED and not (tmp_path / "out.npz").exists()
    assert len(err) == 1 and err[0].startswith("error: --runtime onnx-int8 needs the onnxruntime package")
    with pytest.raises(InferenceError, match="--runtime onnx-int8 runs the networks on the CPU"):
        runtime.choose_runtime("onnx-int8", "cuda")


@needs_int8
@needs_ort
def test_pose_file_meta_records_int8(tmp_path):
    clip = write_clip(tmp_path / "c.mp4", 6, w=320, h=240)
    res = run(clip, PipelineOptions(preset="balanced", runtime="onnx-int8", threads=1, detection_threshold=0.0,
                                    min_pose_score=0.0, max_people=1, detect_every=4, min_track_s=0.0,
                                    verify_people=False))
    meta = res.meta["runtime"]
    assert (meta["pose"], meta["detector"], meta["lifter"]) == ("onnx-int8", "onnx", "onnx")
    assert meta["onnx_sha256"]["pose"] == json.loads((SHIPPED / "pose_balanced_int8.json").read_text())["sha256"]
    assert res.meta["options"]["runtime"] == "onnx-int8"


def test_onnx_int8_is_a_choice_everywhere():
    """The CLI, the options, the batch runner and the add-on's job argv all take 'onnx-int8'."""
    from blender_mocap_addon.runner import batch, jobs

    assert cli.build_parser().parse_args(["v.mp4", "-o", "o.npz", "--runtime", "onnx-int8"]).runtime == "onnx-int8"
    PipelineOptions(runtime="onnx-int8").check()
    assert batch.parse_args(["--input", "v.mp4", "--output", "out", "--runtime", "onnx-int8"]).runtime == "onnx-int8"
    argv = jobs.inference_argv("py", "v.mp4", "o.npz", jobs.InferenceOptions(runtime="onnx-int8"))
    assert argv[argv.index("--runtime") + 1] == "onnx-int8"
    assert "onnx-int8" in runtime.RUNTIMES
