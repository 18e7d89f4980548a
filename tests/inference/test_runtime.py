"""The networks' runtimes (inference/models/runtime.py): PyTorch and ONNX Runtime give the same
joints on real crops of the sample video with the shipped weights; the ONNX files are checked by
their hash; `--runtime onnx` without onnxruntime is one clear error; `auto` falls back to torch.

The conftest points MOCAP_ONNX_CACHE at a folder of this test session; tests that damage files
use their own cache folder.
"""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from engine_media import REPO, sample_frames, sample_person_crops, sample_video, write_clip
from engine_weights import shipped_weights, untrained_weights, WEIGHTS as WEIGHTS_DIR
from inference import cli, PipelineOptions, run
from inference.core import codec
from inference.errors import InferenceError
from inference.models import runtime
from inference.models.weights import load_manifest, WeightsError
from inference.pipeline import load_models
from inference.stages.detect import PersonDetector
from inference.stages.lifting import Lifter
from inference.stages.pose2d import PoseEstimator

torch.set_num_threads(1)

SHIPPED = shipped_weights()
needs_shipped = pytest.mark.skipif(SHIPPED is None or sample_video() is None,
                                   reason="needs the shipped weights and the sample video")
needs_ort = pytest.mark.skipif(runtime.onnxruntime_module() is None, reason="onnxruntime is not installed")


@pytest.fixture
def no_onnxruntime(monkeypatch):
    """As if onnxruntime were not installed: importing it raises ImportError."""
    monkeypatch.setitem(sys.modules, "onnxruntime", None)


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    return untrained_weights(tmp_path_factory.mktemp("weights"))


@needs_shipped
@needs_ort
def test_detector_same_people_in_both_runtimes():
    frames = sample_frames()
    nets = {rt: PersonDetector(SHIPPED / "detector_fast.json", "cpu", runtime=rt) for rt in ("torch", "onnx")}
    assert {rt: d.model.runtime for rt, d in nets.items()} == {"torch": "torch", "onnx": "onnx"}
    found = {rt: d.detect(frames, threshold=0.05) for rt, d in nets.items()}
    assert sum(len(d) for d in found["torch"]) >= 2          # the man and the woman are in these frames
    for a, b in zip(found["torch"], found["onnx"]):
        assert len(a) == len(b)
        np.testing.assert_allclose(a.boxes, b.boxes, atol=0.05)       # frame pixels
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


@needs_shipped
@needs_ort
@pytest.mark.parametrize("preset", ["fast", "balanced"])
def test_pose_joints_agree_on_real_crops(preset):
    """Crops of the people in three sample frames (boxes from the shipped detector, jittered to
    give more crops): both runtimes' joints differ far less than a heatmap pixel."""
    patches, mats = sample_person_crops(runtime="torch")
    assert len(patches) >= 6
    est = {rt: PoseEstimator(SHIPPED / f"pose_{preset}.json", "cpu", runtime=rt) for rt in ("torch", "onnx")}
    heat = {rt: e.heatmaps(patches) for rt, e in est.items()}
    assert np.abs(heat["torch"] - heat["onnx"]).max() < 1e-3
    hm = {rt: codec.decode(h) for rt, h in heat.items()}          # heatmap pixels, scores
    assert np.abs(hm["torch"][0] - hm["onnx"][0]).max() < 0.01     # well under a heatmap pixel
    assert np.abs(hm["torch"][1] - hm["onnx"][1]).max() < 1e-3
    joints = {rt: e.estimate_crops(patches, mats)[0] for rt, e in est.items()}     # frame pixels
    heatmap_px = 4.0 / np.abs(mats[:, 0, 0])                          # frame pixels per heatmap pixel
    assert (np.abs(joints["torch"] - joints["onnx"]).max(axis=(1, 2)) < 0.01 * heatmap_px).all()


@needs_ort
def test_onnx_file_is_built_once_with_its_hash(untrained, tmp_path, monkeypatch):
    monkeypatch.setenv("MOCAP_ONNX_CACHE", str(tmp_path / "cache"))
    net, manifest = runtime.load_network(untrained / "pose_fast.json", "2d", "cpu", "onnx")
    onnx, record_path = runtime.onnx_paths(manifest)
    record = json.loads(record_path.read_text())
    assert net.runtime == "onnx" and net.path == onnx
    assert record["source_sha256"] == manifest["sha256"] == load_manifest(untrained / "pose_fast.json")["sha256"]
    assert record["sha256"] == manifest["onnx_sha256"] == runtime.sha256_of(onnx)
    assert record["max_abs_diff_vs_torch"] <= runtime.BUILD_TOLERANCE
    stamp = onnx.stat().st_mtime_ns
    runtime.load_network(untrained / "pose_fast.json", "2d", "cpu", "onnx")
    assert onnx.stat().st_mtime_ns == stamp                        # the cached file was used


@needs_ort
def test_older_export_is_rebuilt_with_constant_upsampling(untrained, tmp_path, monkeypatch):
    """A cached file of an older export (record without this export's version) is rebuilt, not
    used; the graph upsamples by a constant scale and reads no shapes, which is what lets ONNX
    Runtime keep the network in its blocked layout (docs/runtime.md)."""
    import onnx as onnx_lib

    monkeypatch.setenv("MOCAP_ONNX_CACHE", str(tmp_path / "cache"))
    _, manifest = runtime.load_network(untrained / "pose_fast.json", "2d", "cpu", "onnx")
    path, record_path = runtime.onnx_paths(manifest)
    graph = onnx_lib.load(str(path)).graph
    ops = [n.op_type for n in graph.node]
    cfg = manifest["config"]
    assert ops.count("Resize") == cfg["depth"] * cfg["stacks"] and "Shape" not in ops
    record = json.loads(record_path.read_text())
    assert record["export"] == runtime.EXPORT_VERSION
    del record["export"]                                           # as an older export wrote it
    record_path.write_text(json.dumps(record))
    assert runtime.check_onnx(manifest) is None
    runtime.load_network(untrained / "pose_fast.json", "2d", "cpu", "onnx")
    assert json.loads(record_path.read_text())["export"] == runtime.EXPORT_VERSION


@needs_ort
def test_odd_level_network_exports_with_computed_sizes(tmp_path):
    """At 160 px the innermost level is odd (5 -> 2 -> 5): that upsampling keeps sizes read from
    the input, the others get constant scales, and the build's parity check with PyTorch passes."""
    import dataclasses

    import onnx as onnx_lib

    from inference.models.hourglass import StackedHourglass
    from inference.models.weights import save_state_dict, write_manifest
    from training.presets import POSE_PRESETS

    cfg = dataclasses.replace(POSE_PRESETS["fast"], in_size=160)
    save_state_dict(StackedHourglass(cfg).state_dict(), tmp_path / "pose_160.pt")
    write_manifest(tmp_path / "pose_160.pt", "2d", cfg.to_dict(), "untrained (tests)")
    manifest = load_manifest(tmp_path / "pose_160.json", kind="2d")
    path = runtime.build_onnx(manifest, tmp_path / "cache")
    graph = onnx_lib.load(str(path)).graph
    resize = [n for n in graph.node if n.op_type == "Resize"]
    computed = [n for n in resize if len(n.input) == 4 and n.input[3]]        # a 'sizes' input
    assert len(resize) == cfg.depth * cfg.stacks and len(computed) == cfg.stacks
    assert json.loads(runtime.onnx_paths(manifest, tmp_path / "cache")[1].read_text())["max_abs_diff_vs_torch"] \
        <= runtime.BUILD_TOLERANCE


@needs_ort
def test_corrupted_onnx_is_refused_by_its_hash(untrained, tmp_path, monkeypatch):
    monkeypatch.setenv("MOCAP_ONNX_CACHE", str(tmp_path / "cache"))
    _, manifest = runtime.load_network(untrained / "pose_fast.json", "2d", "cpu", "onnx")
    onnx, record_path = runtime.onnx_paths(manifest)
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF                                   # one weight byte flipped
    onnx.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="corrupt or was replaced.*delete"):
        runtime.load_network(untrained / "pose_fast.json", "2d", "cpu", "onnx")
    # ... and through the engine: an InferenceError, never a silent fallback to torch
    with pytest.raises(InferenceError, match="corrupt"):
        load_models(PipelineOptions(weights_dir=str(untrained), preset="fast", runtime="auto"))
    # a record that belongs to other weights is refused too
    record = json.loads(record_path.read_text())
    record.update(source_sha256="0" * 64, sha256=runtime.sha256_of(onnx))
    record_path.write_text(json.dumps(record))
    with pytest.raises(WeightsError, match="other weights"):
        runtime.load_network(untrained / "pose_fast.json", "2d", "cpu", "onnx")


def test_onnx_without_onnxruntime_is_one_clear_error(no_onnxruntime, untrained, tmp_path, capsys):
    clip = write_clip(tmp_path / "c.mp4", 4)
    code = cli.main([str(clip), "-o", str(tmp_path / "out.npz"), "--weights", str(untrained),
                     "--runtime", "onnx", "--progress", "none"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == cli.EXIT_FAILED and not (tmp_path / "out.npz").exists()
    assert len(err) == 1 and err[0].startswith("error: --runtime onnx needs the onnxruntime package")
    assert "--runtime torch" in err[0]


def test_auto_falls_back_to_torch_without_onnxruntime(no_onnxruntime, untrained, tmp_path):
    assert runtime.choose_runtime("auto", "cpu") == ("torch", "cpu")
    clip = write_clip(tmp_path / "c.mp4", 6, w=320, h=240)
    res = run(clip, PipelineOptions(weights_dir=str(untrained), detection_threshold=0.0, min_pose_score=0.0,
                                    max_people=1, detect_every=4, min_track_s=0.0, verify_people=False))
    assert res.meta["runtime"] == {"pose": "torch", "detector": "torch", "lifter": "torch", "device": "cpu",
                                   "onnxruntime": None, "onnx_sha256": {}}
    assert res.meta["options"]["runtime"] == "auto"


@needs_ort
def test_pose_file_meta_records_the_runtime(untrained, tmp_path):
    clip = write_clip(tmp_path / "c.mp4", 6, w=320, h=240)
    base = dict(weights_dir=str(untrained), detection_threshold=0.0, min_pose_score=0.0, max_people=1,
                detect_every=4, min_track_s=0.0, verify_people=False)
    onnx = run(clip, PipelineOptions(runtime="auto", **base)).meta["runtime"]
    torch_ = run(clip, PipelineOptions(runtime="torch", **base)).meta["runtime"]
    assert (onnx["pose"], onnx["detector"], onnx["device"]) == ("onnx", "onnx", "cpu")
    assert onnx["onnxruntime"] == runtime.onnxruntime_module().__version__
    assert set(onnx["onnx_sha256"]) == {"pose", "detector", "lifter"}
    assert all(len(h) == 64 for h in onnx["onnx_sha256"].values()) and onnx["lifter"] == "onnx"
    assert (torch_["pose"], torch_["detector"], torch_["lifter"], torch_["onnx_sha256"]) == ("torch",) * 3 + ({},)


def test_runtime_choices_and_errors(monkeypatch):
    with pytest.raises(InferenceError, match="unknown runtime"):
        runtime.choose_runtime("tflite")
    with pytest.raises(InferenceError, match="--runtime onnx runs the networks on the CPU"):
        runtime.choose_runtime("onnx", "cuda")
    assert runtime.choose_runtime("torch", "cpu") == ("torch", "cpu")
    with pytest.raises(InferenceError, match="unknown runtime"):
        PipelineOptions(runtime="tflite").check()
    assert cli.build_parser().parse_args(["v.mp4", "-o", "o.npz"]).runtime is None     # PipelineOptions' default
    monkeypatch.setenv("MOCAP_RUNTIME", "torch")
    assert PipelineOptions().runtime == "torch"
    monkeypatch.delenv("MOCAP_RUNTIME")
    assert PipelineOptions().runtime == "auto"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)     # a GPU: auto means torch
    if runtime.onnxruntime_module() is not None:
        assert runtime.choose_runtime("auto", "auto") == ("torch", "cuda")
        assert runtime.choose_runtime("onnx", "auto") == ("onnx", "cpu")


@needs_ort
def test_build_command_builds_and_checks(untrained, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MOCAP_ONNX_CACHE", str(tmp_path / "cache"))
    assert runtime.main(["--build", "--weights", str(untrained)]) == 0
    first = capsys.readouterr().out.split()
    assert first.count("built") == 4                 # pose_balanced, pose_fast, detector_fast, lifter
    assert runtime.main(["--build", "--weights", str(untrained)]) == 0
    assert capsys.readouterr().out.split().count("checked") == 4


@needs_ort
def test_lifter_agrees_in_both_runtimes():
    """The shipped lifter through ONNX Runtime lifts a moving 2D skeleton (a standing pose swaying
    and walking across a 1280 x 720 frame, one joint missing for a while) to the same 3D."""
    if not (WEIGHTS_DIR / "lifter.json").is_file():
        pytest.skip("weights/lifter.json not shipped")
    base = np.array([[610, 600], [612, 520], [615, 440], [665, 440], [668, 520], [670, 600],
                     [640, 440], [640, 330], [640, 310], [640, 260], [590, 420], [595, 370],
                     [605, 330], [675, 330], [685, 370], [690, 420]], np.float64)
    t = np.arange(120)[:, None, None]
    joints2d = base[None] + np.concatenate([2.0 * t, 8 * np.sin(t / 5.0)], -1)
    joints2d[:, [0, 5], 1] += 15 * np.sin(np.arange(120) / 4.0)[:, None] * np.array([1, -1])
    scores = np.full((120, 16), 0.8)
    scores[40:60, 10] = 0.0
    K = np.array([[1100.0, 0, 640], [0, 1100.0, 360], [0, 0, 1]])
    lifted = {rt: Lifter.load(str(WEIGHTS_DIR / "lifter.json"), runtime=rt).lift(joints2d, scores, K)
              for rt in ("torch", "onnx")}
    assert np.isfinite(lifted["onnx"]).all()
    assert np.abs(lifted["torch"] - lifted["onnx"]).max() < 1e-3          # metres: under a millimetre


def test_onnx_run_never_imports_torch(untrained, tmp_path):
    """With the ONNX files built, a whole run (CLI, all three networks) loads no torch: its
    start-up cost (about 1.4 s on 2 cores) is gone."""
    if runtime.onnxruntime_module() is None:
        pytest.skip("onnxruntime is not installed")
    runtime.build_all(untrained, say=lambda _: None)
    clip = write_clip(tmp_path / "c.mp4", 6, w=320, h=240)
    script = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch was imported')\n"
        "sys.meta_path.insert(0, Block())\n"
        "from inference import cli\n"
        "sys.exit(cli.main(sys.argv[1:]))\n")
    proc = subprocess.run([sys.executable, "-c", script, str(clip), "-o", str(tmp_path / "o.npz"), "--weights",
                           str(untrained), "--progress", "none", "--runtime", "onnx", "--keep-unconfirmed"],
                          capture_output=True, text=True, timeout=300, cwd=str(REPO))
    assert proc.returncode == 0, proc.stderr[-2000:]
    meta = json.loads(str(np.load(tmp_path / "o.npz")["meta"]))
    assert (meta["runtime"]["pose"], meta["runtime"]["detector"], meta["runtime"]["lifter"]) == ("onnx",) * 3
