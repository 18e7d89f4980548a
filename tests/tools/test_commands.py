"""The console scripts of pyproject.toml: installed in this venv, each `--help` answers with exit
code 0 from a folder outside the checkout, and the engine's command makes a pose file from there.

`python3 install_deps.py` installs the checkout editable, which writes .venv/bin/video-mocap*.
"""
import ast
import json
import os
import subprocess
import sys
import sysconfig
import time
import tomllib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

with open(os.path.join(REPO, "pyproject.toml"), "rb") as fh:
    SCRIPTS = tomllib.load(fh)["project"]["scripts"]


def script_path(name):
    path = os.path.join(sysconfig.get_path("scripts"), name + (".exe" if os.name == "nt" else ""))
    if not os.path.exists(path):
        pytest.fail("{} is not installed in {}: run python3 install_deps.py".format(name, sys.prefix))
    return path


def clean_env():
    """No PYTHONPATH: the command must find the packages through the editable install."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    return env


def test_every_command_names_a_main_that_takes_argv_and_returns_a_code():
    assert "video-mocap" in SCRIPTS and "video-mocap-batch" in SCRIPTS
    for name, target in SCRIPTS.items():
        assert name.startswith("video-mocap"), name
        module, func = target.split(":")
        path = os.path.join(REPO, *module.split(".")) + ".py"
        tree = ast.parse(open(path).read())
        fn = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == func]
        assert fn, "{}: no {}() in {}".format(name, func, path)
        args = fn[0].args
        assert [a.arg for a in args.args] == ["argv"] and len(args.defaults) == 1, (name, "main(argv=None)")
        returns = [n for n in ast.walk(fn[0]) if isinstance(n, ast.Return)]
        assert returns and all(r.value is not None for r in returns), (name, "every return gives an exit code")


# Commands whose --help must stay light: no torch import (the training and evaluation commands
# import torch at module top, about 1.3 s each; they are checked in one process below).
LIGHT = ["video-mocap", "video-mocap-overlay", "video-mocap-preview", "video-mocap-batch", "video-mocap-pack",
         "video-mocap-report"]

_ALL_HELP = r"""
import json, sys
from importlib.metadata import entry_points
codes = {}
for ep in entry_points(group="console_scripts"):
    if ep.name.startswith("video-mocap"):
        try:
            codes[ep.name] = ep.load()(["--help"])
        except SystemExit as ex:
            codes[ep.name] = ex.code
print("@@CODES@@" + json.dumps(codes))
"""


def test_light_commands_help_from_another_folder_without_torch(tmp_path):
    """The real console scripts; PYTHONPROFILEIMPORTTIME lists every module each one imported."""
    assert set(LIGHT) <= set(SCRIPTS)
    for name in LIGHT:
        t0 = time.time()
        proc = subprocess.run([script_path(name), "--help"], cwd=tmp_path, env=dict(clean_env(), PYTHONPROFILEIMPORTTIME="1"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
        assert proc.returncode == 0 and "usage:" in proc.stdout, (name, proc.stderr[-800:])
        imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
        assert "numpy" in imported or name == "video-mocap-report", (name, "import list not seen")
        assert "torch" not in imported, "{} --help imports torch ({:.1f} s)".format(name, time.time() - t0)
    assert not os.listdir(tmp_path)  # --help writes nothing


def test_every_installed_command_help_from_another_folder(tmp_path):
    """Every console_scripts entry point installed in this venv, loaded and given --help in one
    process started in a folder outside the checkout (torch is then imported once)."""
    for name in SCRIPTS:
        script_path(name)
    proc = subprocess.run([sys.executable, "-c", _ALL_HELP], cwd=tmp_path, env=clean_env(),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    codes = json.loads(proc.stdout.split("@@CODES@@", 1)[1])
    assert set(codes) == set(SCRIPTS), "installed commands differ from pyproject.toml: run python3 install_deps.py"
    assert all(code == 0 for code in codes.values()), codes
    assert not os.listdir(tmp_path)


def test_engine_command_runs_from_another_folder(tmp_path):
    video = os.path.join(REPO, "examples", "sports2d_demo.mp4")
    if not os.path.exists(video):
        pytest.skip("sample video missing")
    out = tmp_path / "x.npz"
    proc = subprocess.run([script_path("video-mocap"), video, "-o", "x.npz", "--end", "4", "--device", "cpu"],
                          cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    sys.path.insert(0, REPO)
    import posefile
    pose = posefile.load(str(out))
    assert pose.joints3d.shape[1:] == (4, 16, 3)  # (P, F, J, 3)


def test_bad_input_gives_a_nonzero_exit_code(tmp_path):
    proc = subprocess.run([script_path("video-mocap"), str(tmp_path / "missing.mp4"), "-o", "x.npz"],
                          cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
