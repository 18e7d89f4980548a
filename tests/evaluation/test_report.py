"""evaluation.report: the page is assembled from the JSON files on disk, with their commands."""
from __future__ import annotations

import json
import sys

import pytest

from evaluation import report


@pytest.fixture
def tree(tmp_path, monkeypatch):
    weights, docs = tmp_path / "weights", tmp_path / "docs"
    (docs / "results" / "bench").mkdir(parents=True)
    weights.mkdir()
    monkeypatch.setattr(report, "WEIGHTS", str(weights))
    monkeypatch.setattr(report, "DOCS", str(docs))
    monkeypatch.setattr(report, "RESULTS", str(docs / "results"))
    monkeypatch.setattr(report, "BENCH", str(docs / "results" / "bench"))
    return tmp_path


def test_tables_come_from_files_with_their_commands(tree):
    (tree / "weights" / "pose_fast.json").write_text(json.dumps({
        "kind": "2d", "config": {"stacks": 2, "features": 64, "in_size": 128}, "eval_command": "python -m evaluation.eval_2d X",
        "eval": {"pck@0.2": {"mean": 61.25, "mean16": 63.5, "n_images": 169, "split": "held out",
                             "per_joint": {"r_ankle": 40.0}},
                 "pck@0.2_flip": {"mean": 62.75}}}))
    (tree / "docs" / "results" / "results_3d.json").write_text(json.dumps({
        "command": "python -m evaluation.eval_3d --out docs/results/results_3d", "sequences": 12, "cams_per_clip": 3,
        "seed": 0, "noise_difficulty": 0.5,
        "gt_2d": {"frames": 900, "mpjpe_mm": 71.5, "pa_mpjpe_mm": 48.25, "jitter_mm_per_frame2": 3.5,
                  "groups": {"walk": {"frames": 300, "mpjpe_mm": 60.0, "pa_mpjpe_mm": 40.0}}}}))
    (tree / "docs" / "results" / "bench" / "memory.json").write_text(json.dumps({
        "benchmark": "memory", "command": ".venv/bin/python benchmarks/bench_memory.py --seconds 60,600",
        "date": "2026-01-01 10:00", "machine": {"cpu": "Test CPU", "cores": 2},
        "tables": [{"title": "Memory", "columns": ["length", "peak RSS (MB)"], "rows": [["1 min", 512.5],
                                                                                        ["10 min", 518.0]]}]}))
    (tree / "docs" / "results" / "bench" / "keyframes_1x1k.json").write_text(json.dumps({
        "benchmark": "keyframes_1x1k", "command": ".venv/bin/python benchmarks/bench_keyframes.py --people 1",
        "stdout": "| people | frames | keys/s |\n|---|---|---|\n| 1 | 1000 | 123456 |\n"}))
    text = report.build()
    assert "| pose_fast | 2 | 64 | 128 | 61.2 | 63.5 | 62.8 | 169 | held out |" in text
    assert "Command: `python -m evaluation.eval_2d X`" in text
    assert "| gt_2d | all | 900 | 71.5 | 48.2 |" in text and "| gt_2d | walk | 300 | 60 | 40 |" in text
    assert "Command: `python -m evaluation.eval_3d --out docs/results/results_3d`" in text
    assert "| 10 min | 518 |" in text and "bench_memory.py --seconds 60,600" in text and "Test CPU" in text
    assert "| 1 | 1000 | 123456 |" in text and "bench_keyframes.py --people 1`" in text
    assert text.index("Keyframing") < text.index("Memory as the video grows")


def test_missing_results_are_said_not_invented(tree):
    text = report.build()
    assert "Not measured yet" in text and "No benchmark results yet" in text
    assert "| pose_fast" not in text


def test_capture_keeps_output_and_command(tree):
    rc = report.capture("echo", [sys.executable, "-c", "print('| a | b |'); print('|---|---|'); print('| 1 | 2 |')"])
    assert rc == 0
    doc = json.loads((tree / "docs" / "results" / "bench" / "echo.json").read_text())
    assert doc["stdout"].splitlines()[-1] == "| 1 | 2 |" and doc["command"].startswith(".venv/bin/python -c")
    assert "| 1 | 2 |" in report.build()
    assert report.capture("bad", [sys.executable, "-c", "raise SystemExit(3)"]) == 1
    assert not (tree / "docs" / "results" / "bench" / "bad.json").exists()
