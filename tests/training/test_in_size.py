"""A pose network at another input size than its preset's (train_2d --in-size, eval_2d --in-size):
targets, checkpoints, resume and decoding back into image pixels."""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from data.augment import NO_AUGMENT
from data.lsp import CropSet
from data.paths import data_path
from inference.core import crops
from inference.models.hourglass import HourglassConfig, StackedHourglass
from inference.stages.pose2d import decode_crops
from training.loop import save_checkpoint
from training.train_2d import initial_model, make_batch, network_config, parse_args, target_sigma

LSP = Path(data_path("lsp"))
needs_lsp = pytest.mark.skipif(not (LSP / "joints.npz").exists(), reason="shared LSP data not present")


def _save(path: Path, cfg: HourglassConfig, step: int = 7) -> StackedHourglass:
    model = StackedHourglass(cfg).eval()
    save_checkpoint(path, model, torch.optim.AdamW(model.parameters()), step, np.random.default_rng(0), {})
    return model


def test_sigma_keeps_its_size_relative_to_the_person():
    args = parse_args(["--preset", "balanced", "--in-size", "160"])
    cfg = network_config(args)
    assert (cfg.in_size, cfg.heatmap_size, cfg.features) == (160, 40, 128)
    assert target_sigma(args, cfg) == pytest.approx(1.875)
    plain = parse_args(["--preset", "balanced"])
    assert target_sigma(plain, network_config(plain)) == pytest.approx(1.5)
    assert target_sigma(parse_args(["--preset", "balanced", "--sigma", "2.5"]), cfg) == 2.5


def test_targets_at_160_px_decode_back_to_the_joints():
    # one synthetic cache row: the 160 px targets, decoded as evaluation and the engine decode
    # (40 px maps, image->crop affine), land on the labelled joints in cache pixels
    rng = np.random.default_rng(3)
    side = 192
    box_side = side / (crops.CROP_MARGIN * 1.6)
    joints = (side / 2 + rng.uniform(-0.45, 0.45, (1, 16, 2)) * box_side).astype(np.float32)
    data = CropSet(np.zeros((1, side, side, 3), np.uint8), joints, np.ones((1, 16), bool),
                   np.zeros(1, bool), np.array(["synthetic"]))
    args = parse_args(["--preset", "balanced", "--in-size", "160"])
    cfg = network_config(args)
    x, target, weights = make_batch(data, np.array([0]), cfg, NO_AUGMENT, rng, target_sigma(args, cfg))
    assert x.shape == (1, 3, 160, 160) and target.shape == (1, 16, 40, 40) and weights.all()
    M = crops.crop_matrix(data.box, 160)
    pred, _ = decode_crops(target.numpy(), M[None], 160)
    np.testing.assert_allclose(pred, joints, atol=0.15)


def test_init_and_resume_carry_the_input_size(tmp_path):
    small = HourglassConfig(stacks=1, features=16, in_size=64, out_channels=16)
    src = _save(tmp_path / "src.pt", small)
    # --init: the same weights at 96 px (fully convolutional), 24 px maps
    net = initial_model(str(tmp_path / "src.pt"), HourglassConfig(**{**small.to_dict(), "in_size": 96})).eval()
    assert net.cfg.in_size == 96
    x = torch.rand(2, 3, 96, 96)
    with torch.no_grad():
        assert net(x)[-1].shape == (2, 16, 24, 24)
        assert torch.allclose(net(x)[-1], src(x)[-1], atol=1e-6)
    # a resumed run without --in-size keeps its checkpoint's size; an explicit one or --fresh wins
    out = tmp_path / "run"
    out.mkdir()
    _save(out / "last.pt", HourglassConfig(stacks=2, features=64, in_size=160, out_channels=16))
    assert network_config(parse_args(["--out", str(out)])).in_size == 160
    assert network_config(parse_args(["--out", str(out), "--in-size", "192"])).in_size == 192
    assert network_config(parse_args(["--out", str(out), "--fresh"])).in_size == 128


def test_eval_reads_the_checkpoint_size_and_overrides_it(tmp_path):
    from evaluation.eval_2d import load_model

    _save(tmp_path / "a.pt", HourglassConfig(stacks=1, features=16, in_size=160, out_channels=16))
    model, info = load_model(checkpoint=str(tmp_path / "a.pt"))
    assert model.cfg.in_size == 160 and info["in_size"] == 160 and "trained_in_size" not in info
    model, info = load_model(checkpoint=str(tmp_path / "a.pt"), in_size=128)
    assert model.cfg.in_size == 128 and info["trained_in_size"] == 160
    with pytest.raises(ValueError):
        load_model(checkpoint=str(tmp_path / "a.pt"), in_size=144)
    with pytest.raises(ValueError):
        load_model("pose_balanced", runtime="onnx", in_size=160)


@needs_lsp
def test_shipped_network_at_160_px_finds_joints_in_image_pixels():
    # the 128 px weights run on 160 px crops of the same boxes: mapped back with the crop's own
    # size, most joints land within 0.2 torso of the label; mapped as if the crop were 128 px
    # (the mistake this guards against), almost none do
    from evaluation.eval_2d import evaluate, load_model, person_heatmaps, pck
    from data.lsp import load_annotations

    torch.set_num_threads(1)
    _, joints, visible, is_test = load_annotations(LSP)
    idx = np.where(is_test)[0][:8]
    model, info = load_model("pose_balanced", in_size=160)
    assert info["trained_in_size"] == 128 and info["in_size"] == 160
    heat, mats = person_heatmaps(model, str(LSP), idx)
    assert heat.shape[-2:] == (40, 40)
    right, _ = decode_crops(heat, mats, 160)
    wrong, _ = decode_crops(heat, mats, 128)
    assert pck(right, joints[idx], visible[idx])["mean"] > 45           # 58% measured
    assert pck(wrong, joints[idx], visible[idx])["mean"] < 20           # 10% measured
    res = evaluate(model, str(LSP), limit=8)
    assert res["mean"] == pytest.approx(pck(right, joints[idx], visible[idx])["mean"])
    assert res["pck@0.1"]["mean"] < res["mean"]


@needs_lsp
def test_in_size_study_table(tmp_path):
    # shipped weights at two sizes, a 160 px checkpoint, and a snapshot's eval_2d result, in one file
    import json

    from evaluation import eval_2d, eval_in_size

    torch.set_num_threads(1)
    _save(tmp_path / "c160.pt", HourglassConfig(stacks=1, features=16, in_size=160, out_channels=16), step=3)
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    assert eval_2d.main(["--checkpoint", str(tmp_path / "c160.pt"), "--limit", "4", "--threads", "1",
                         "--out", str(snaps / "step_3.json")]) == 0
    out = tmp_path / "study.json"
    assert eval_in_size.main(["--sizes", "128", "160", "--checkpoints", str(tmp_path / "c160.pt"), "--limit", "4",
                              "--snapshot-results", str(snaps), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    own, at160, ck = doc["rows"]
    assert (own["in_size"], own["trained_in_size"], at160["in_size"], at160["trained_in_size"]) == (128, 128, 160, 128)
    assert own["command"] == "python -m evaluation.eval_2d --weights pose_balanced"
    assert at160["command"].endswith("--in-size 160") and ck["in_size"] == 160 and ck["step"] == 3
    assert own["pck@0.1"] < own["pck@0.2"] and own["pck@0.2"] > 30     # real weights: most joints found
    assert doc["snapshots"][0]["pck@0.2"] == ck["pck@0.2"]              # the same checkpoint, the same figure
