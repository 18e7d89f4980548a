"""The import rules (pyproject.toml [tool.importlinter], docs/setup.md "Import rules") hold, and
the contracts really catch a break: a copy of the packages with one forbidden import written into
each contract's territory fails every contract, by name.

Runs the venv's `lint-imports` (import-linter, pinned in install_deps.py) without its cache, so
nothing is written into the checkout.
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
with open(os.path.join(REPO, "pyproject.toml"), "rb") as fh:
    CONFIG = tomllib.load(fh)["tool"]["importlinter"]
CONTRACTS = {c["id"]: c for c in CONFIG["contracts"]}

# One forbidden import per contract: (file, line appended). Each breaks that contract only.
VIOLATIONS = {
    "inference-layers": ("inference/models/__init__.py", "import inference.pipeline"),
    "posefile-numpy-only": ("posefile/format.py", "import torch"),
    "inference-core-numpy-only": ("inference/core/camera.py", "import torch"),
    "nothing-imports-training-evaluation": ("blender_mocap_addon/errors.py", "import training"),
    "data-uses-only-inference-core": ("data/paths.py", "import inference.stages.video"),
    "evaluation-not-training": ("evaluation/report.py", "import training.loop"),
    "addon-via-subprocess-only": ("blender_mocap_addon/runner/jobs.py", "import cv2"),
    "addon-core-numpy-only": ("blender_mocap_addon/core/axes.py", "import bpy"),
}


def lint_imports(cwd):
    """(exit code, {contract name: "KEPT" | "BROKEN"}, output) of lint-imports run in cwd."""
    exe = os.path.join(sysconfig.get_path("scripts"), "lint-imports" + (".exe" if os.name == "nt" else ""))
    if not os.path.exists(exe):
        pytest.fail("lint-imports is not installed in {}: run python3 install_deps.py".format(sys.prefix))
    # PYTHONPATH first: the packages in cwd, not the editable install; wide COLUMNS: one line a contract
    env = dict(os.environ, PYTHONPATH=str(cwd), COLUMNS="400", NO_COLOR="1")
    proc = subprocess.run([exe, "--no-cache", "--no-logo"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=120)
    verdicts = {}
    for line in proc.stdout.splitlines():
        for word in ("KEPT", "BROKEN"):
            if line.rstrip().endswith(" " + word):
                verdicts[line.rstrip()[:-len(word)].strip()] = word
    return proc.returncode, verdicts, proc.stdout


def test_every_violation_case_names_a_contract():
    assert set(VIOLATIONS) == set(CONTRACTS)


def test_third_party_packages_are_seen():
    """Forbidding torch, cv2 or bpy only works when the graph includes external packages."""
    roots = set(CONFIG["root_packages"])
    external = {m for c in CONTRACTS.values() for m in c.get("forbidden_modules", ())
                if m.split(".")[0] not in roots}
    assert {"torch", "cv2", "bpy"} <= external
    assert CONFIG.get("include_external_packages") is True


def test_the_checkout_keeps_every_contract():
    rc, verdicts, out = lint_imports(REPO)
    assert rc == 0, out[-4000:]
    assert sorted(verdicts) == sorted(c["name"] for c in CONTRACTS.values()), out[-4000:]
    assert set(verdicts.values()) == {"KEPT"}


def test_a_forbidden_import_breaks_its_contract(tmp_path):
    for package in CONFIG["root_packages"]:
        shutil.copytree(os.path.join(REPO, package), tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy(os.path.join(REPO, "pyproject.toml"), tmp_path)
    for path, line in VIOLATIONS.values():
        with open(tmp_path / path, "a") as fh:
            fh.write("\n" + line + "  # written by tests/test_import_rules.py\n")
    rc, verdicts, out = lint_imports(tmp_path)
    assert rc != 0, out[-4000:]
    assert verdicts == {c["name"]: "BROKEN" for c in CONTRACTS.values()}, out[-4000:]
    for path, _ in VIOLATIONS.values():  # each written import is reported
        module = path[:-len(".py")].replace("/", ".").replace(".__init__", "")
        assert module + " -> " in out, (module, out[-4000:])
