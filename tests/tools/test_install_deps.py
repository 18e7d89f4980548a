"""install_deps.py: plan logic, constraints, GPU detection, version checks, pip errors.

Nothing here reinstalls the environment: installs are dry runs, pip only runs against an
empty local folder (--no-index), and the idempotency test only runs when all is installed.
"""

import os
import subprocess
import sys
import time

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(REPO, "install_deps.py")
sys.path.insert(0, REPO)
import install_deps as deps  # noqa: E402

posix_only = pytest.mark.skipif(os.name == "nt", reason="fake executables are shell scripts")


def run_script(*args, path_prefix=None, timeout=300):
    env = dict(os.environ)
    if path_prefix:
        env["PATH"] = str(path_prefix) + os.pathsep + env.get("PATH", "")
    t0 = time.time()
    proc = subprocess.run([sys.executable, SCRIPT] + [str(a) for a in args], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, universal_newlines=True, env=env, timeout=timeout)
    proc.seconds = time.time() - t0
    return proc


def fake_executable(folder, name, body):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


# --------------------------------------------------------------------------- constraints

def test_constraints_file_in_repo_matches_the_package_list():
    with open(os.path.join(REPO, "constraints.txt")) as fh:
        assert fh.read() == deps.render_constraints()


def test_constraints_pin_what_matters():
    lines = [line for line in deps.render_constraints().splitlines() if line and not line.startswith("#")]
    assert "numpy<2" in lines
    assert "opencv-python-headless<4.12" in lines
    assert "bpy==5.0.1" in lines
    assert "torch==" + deps.TORCH_VERSION in lines
    assert "pytest" not in lines  # no specifier, nothing to constrain
    names = [p.name for p in deps.PACKAGES]
    assert len(names) == len(set(names))
    assert {p.where for p in deps.PACKAGES} <= {"venv", "both"}
    assert [p.name for p in deps.PACKAGES if p.where == "venv"] == ["bpy", "pytest", "matplotlib", "ray",
                                                                   "setuptools", "import-linter",
                                                                   "onnxruntime", "onnx"]
    assert "onnxruntime==1.30.0" in lines and "onnx==1.23.1" in lines   # exact: releases that accept numpy 1.x
    assert "import-linter==2.17" in lines  # exact: a new release may judge the contracts differently


def test_installed_packages_accept_the_pinned_numpy():
    """Nothing in this venv needs numpy 2: every installed distribution that requires numpy
    (onnxruntime, onnx and its ml_dtypes included) accepts the installed numpy, which is < 2."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    numpy_version = metadata.version("numpy")
    assert int(numpy_version.split(".")[0]) < 2
    users = {}
    for dist in metadata.distributions():
        for text in dist.requires or []:
            req = Requirement(text)
            if canonicalize_name(req.name) != "numpy" or (req.marker and not req.marker.evaluate({"extra": ""})):
                continue
            users[canonicalize_name(dist.metadata["Name"])] = str(req.specifier)
            assert req.specifier.contains(numpy_version, prereleases=True), (dist.metadata["Name"], text)
    installed = {canonicalize_name(d.metadata["Name"]) for d in metadata.distributions()}
    assert {"onnxruntime", "onnx"} & installed <= set(users)


@pytest.mark.slow
def test_pip_resolves_the_onnx_packages_inside_the_pins(tmp_path):
    """From nothing (--ignore-installed), pip with constraints.txt resolves onnxruntime and onnx
    with numpy 1.x; against this venv it would install nothing that moves numpy."""
    pins = [deps.requirement(p) for p in deps.PACKAGES if p.name in ("numpy", "onnxruntime", "onnx")]
    for extra in (["--ignore-installed"], []):
        report = tmp_path / "report{}.json".format(len(extra))
        proc = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report",
                               str(report), "-c", os.path.join(REPO, "constraints.txt")] + extra + pins,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, timeout=600)
        if proc.returncode != 0:
            pytest.skip("pip could not reach a package index: " + proc.stderr.strip()[-300:])
        import json
        install = {i["metadata"]["name"].lower(): i["metadata"]["version"]
                   for i in json.loads(report.read_text())["install"]}
        if extra:
            assert install["numpy"].startswith("1.") and install["onnxruntime"] == "1.30.0", install
        else:
            assert "numpy" not in install, install


# --------------------------------------------------------------------------- dry runs

@pytest.mark.parametrize("flag,torch_req", [("--cpu", "torch==2.13.0"), ("--cuda", "torch===2.13.0")])
def test_dry_run_plan(tmp_path, flag, torch_req):
    venv = tmp_path / "venv"
    before = open(os.path.join(REPO, "constraints.txt")).read()
    proc = run_script("--dry-run", flag, "--no-blender", "--venv", venv)
    out = proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert "dry run" in out
    assert "would create venv {}".format(venv) in out
    assert "torch: {} build (--{})".format(flag[2:].upper(), flag[2:]) in out
    run_line = [line for line in out.splitlines() if "venv: would run:" in line]
    assert len(run_line) == 1
    cmd = run_line[0]
    assert "-m pip install" in cmd and "-c " + os.path.join(REPO, "constraints.txt") in cmd
    for req in ("numpy<2", "opencv-python-headless<4.12", torch_req, "bpy==5.0.1", "pytest"):
        assert " " + req in cmd
    if flag == "--cuda":
        assert "download.pytorch.org/whl/cpu" not in cmd
    # then this checkout, editable, without touching the pinned packages
    checkout = [line for line in out.splitlines() if "checkout: would run:" in line]
    assert len(checkout) == 1 and checkout[0].endswith(" --no-deps --no-build-isolation -e " + REPO)
    assert not venv.exists()  # nothing changed
    assert open(os.path.join(REPO, "constraints.txt")).read() == before
    assert "Traceback" not in proc.stderr


def test_dry_run_on_installed_venv_reports_satisfied():
    """The venv running these tests has everything: the plan says so and plans no pip."""
    result = deps.plan_target(sys.executable, deps.PACKAGES, "torch==" + deps.TORCH_VERSION, "cpu")
    if result:
        pytest.skip("this environment lacks {}".format([r for _, r, _ in result]))
    proc = run_script("--dry-run", "--cpu", "--no-blender", "--venv", sys.prefix)
    assert proc.returncode == 0, proc.stderr
    assert "venv: all {} packages already satisfied".format(len(deps.PACKAGES)) in proc.stdout
    assert "checkout: video-mocap installed editable from {}".format(REPO) in proc.stdout
    assert "would run" not in proc.stdout


def test_second_run_is_fast_and_runs_no_pip():
    """Idempotency: on a complete venv a real (not dry) run only checks versions."""
    if deps.plan_target(sys.executable, deps.PACKAGES, "torch==" + deps.TORCH_VERSION, "cpu"):
        pytest.skip("environment incomplete; a real run would install")
    proc = run_script("--cpu", "--no-blender", "--venv", sys.prefix)
    assert proc.returncode == 0, proc.stderr
    assert "already satisfied" in proc.stdout and "running:" not in proc.stdout
    assert proc.seconds < 30


def test_editable_check_reads_the_venv(tmp_path):
    """The check behind the fast second run: current here, "not installed" for another project,
    and an install made from another checkout is not taken for this one's."""
    if deps.editable_problem(sys.executable):
        pytest.skip("this checkout is not installed editable in this environment")
    assert deps.editable_problem(sys.executable, name="video-mocap-not-a-package") == "not installed"
    other = tmp_path / "other"
    other.mkdir()
    (other / "pyproject.toml").write_text('[project]\nname = "video-mocap"\nversion = "0.1.0"\n')
    assert "another folder" in deps.editable_problem(sys.executable, repo=str(other))


# --------------------------------------------------------------------------- GPU and torch

@posix_only
def test_gpu_detection_with_fake_nvidia_smi(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_executable(bin_dir, "nvidia-smi",
                    'if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-1234)"; exit 0; fi; exit 3')
    monkeypatch.setenv("PATH", str(bin_dir) + os.pathsep + os.environ["PATH"])
    found, detail = deps.detect_nvidia_gpu()
    assert found and "NVIDIA H100" in detail

    proc = run_script("--dry-run", "--no-blender", "--venv", tmp_path / "v", path_prefix=bin_dir)
    assert proc.returncode == 0, proc.stderr
    assert "torch: CUDA build (GPU 0: NVIDIA H100" in proc.stdout
    assert "torch===2.13.0" in proc.stdout

    # --cpu wins over a GPU
    proc = run_script("--dry-run", "--cpu", "--no-blender", "--venv", tmp_path / "v", path_prefix=bin_dir)
    assert "torch: CPU build (--cpu)" in proc.stdout


@posix_only
def test_gpu_detection_failing_or_absent(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    fake_executable(bin_dir, "nvidia-smi", 'echo "NVIDIA-SMI has failed because it could not communicate"; exit 9')
    monkeypatch.setenv("PATH", str(bin_dir))
    found, detail = deps.detect_nvidia_gpu()
    assert not found and "failed" in detail
    fake_executable(bin_dir, "nvidia-smi", 'echo "No devices found."; exit 0')
    assert deps.detect_nvidia_gpu() == (False, "nvidia-smi -L lists no GPU")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert deps.detect_nvidia_gpu() == (False, "nvidia-smi not found")


def test_torch_plan_per_platform():
    up, down = (lambda url: True), (lambda url: False)
    req, extra, _ = deps.torch_plan("cpu", "Linux", up)
    assert req == "torch==2.13.0" and extra == ["--extra-index-url", deps.TORCH_CPU_INDEX]
    req, extra, note = deps.torch_plan("cpu", "Linux", down)
    assert req == "torch==2.13.0" and extra == [] and "unreachable" in note
    assert deps.torch_plan("cpu", "Darwin", up)[:2] == ("torch==2.13.0", [])
    assert deps.torch_plan("cuda", "Linux", up)[:2] == ("torch===2.13.0", [])
    assert deps.torch_plan("cuda", "Windows", up)[1] == ["--extra-index-url", deps.TORCH_CUDA_INDEX_WINDOWS]


# --------------------------------------------------------------------------- version checks

def test_query_packages_reads_versions_in_the_target_python():
    import numpy
    result = deps.query_packages(sys.executable, [
        ("numpy", "<2", ""),
        ("numpy", ">=99", ""),
        ("numpy", "", numpy.__version__.split(".")[0] + "."),  # forbidden substring present
        ("video-mocap-not-a-package", "", ""),
    ])
    assert result[0] == ("numpy", numpy.__version__, True)
    assert result[1] == ("numpy", numpy.__version__, False)
    assert result[2][2] is False
    assert result[3] == ("video-mocap-not-a-package", None, False)


def test_query_packages_sees_a_target_folder(tmp_path):
    info = tmp_path / "target" / "fakepkg-1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fakepkg\nVersion: 1.2\n")
    checks = [("fakepkg", "==1.2", "")]
    assert deps.query_packages(sys.executable, checks) == [("fakepkg", None, False)]
    assert deps.query_packages(sys.executable, checks, [str(tmp_path / "target")]) == [("fakepkg", "1.2", True)]


def test_torch_cuda_request_rejects_installed_cpu_build():
    try:
        from importlib.metadata import version
        installed = version("torch")
    except Exception:
        pytest.skip("torch not installed")
    cuda_todo = deps.plan_target(sys.executable, [p for p in deps.PACKAGES if p.name == "torch"],
                                 "torch===" + deps.TORCH_VERSION, "cuda")
    cpu_todo = deps.plan_target(sys.executable, [p for p in deps.PACKAGES if p.name == "torch"],
                                "torch==" + deps.TORCH_VERSION, "cpu")
    if installed.split("+")[0] != deps.TORCH_VERSION:
        pytest.skip("torch {} installed".format(installed))
    assert cpu_todo == []
    assert (len(cuda_todo) == 1) == ("+cpu" in installed)


# --------------------------------------------------------------------------- errors

def test_unknown_package_gives_a_clear_error(tmp_path):
    empty = tmp_path / "wheels"
    empty.mkdir()
    with pytest.raises(deps.InstallError) as info:
        deps.pip_install(sys.executable, ["video-mocap-no-such-package==1.0"],
                         extra_args=["--no-index", "--find-links", str(empty)])
    message = str(info.value)
    assert "video-mocap-no-such-package" in message and "exit code 1" in message
    assert "No matching distribution" in message or "Could not find a version" in message


def test_python_too_old_or_too_new(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.11 to fall back to
    with pytest.raises(deps.SetupError, match="too old.*3.11"):
        deps.check_python((3, 9, 7), "/usr/bin/python3.9")
    with pytest.raises(deps.SetupError, match="too new.*3.11"):
        deps.check_python((3, 12, 1), "/usr/bin/python3.12")
    assert deps.check_python((3, 11, 4), "/x/python3.11") == "/x/python3.11"


@posix_only
def test_other_python_falls_back_to_python311_on_path(tmp_path, monkeypatch):
    fake = fake_executable(tmp_path, "python3.11", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert deps.check_python((3, 12, 1), "/usr/bin/python3.12") == str(fake)


def test_pip_missing(tmp_path):
    venv = tmp_path / "nopip"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = deps.venv_python(str(venv))
    assert not deps.has_pip(py)
    with pytest.raises(deps.SetupError, match="pip is missing"):
        deps.ensure_pip(py, bootstrap=False)


def test_venv_with_wrong_python_is_refused(tmp_path):
    venv = tmp_path / "old"
    fake_bin = venv / ("Scripts" if os.name == "nt" else "bin")
    if os.name == "nt":
        pytest.skip("POSIX fake")
    fake_executable(fake_bin, "python", 'echo "3.9.18"')
    with pytest.raises(deps.SetupError, match="uses Python 3.9.18"):
        deps.ensure_venv(str(venv), sys.executable)


def test_errors_exit_nonzero_without_traceback(tmp_path):
    proc = run_script("--dry-run", "--cpu", "--blender", tmp_path / "no-blender-here", "--venv", tmp_path / "v")
    assert proc.returncode == deps.EXIT_SETUP
    assert "install_deps: error:" in proc.stderr and "Traceback" not in proc.stderr


# --------------------------------------------------------------------------- Blender

@posix_only
def test_blender_python_found_and_planned(tmp_path):
    """A Blender-like install folder: the runtime packages (not bpy, not pytest) go to its Python."""
    root = tmp_path / "blender-4.2.3-linux-x64"
    exe = fake_executable(root, "blender", 'echo "Blender 4.2.3"')
    bundled = root / "4.2" / "python" / "bin"
    bundled.mkdir(parents=True)
    base_python = getattr(sys, "_base_executable", sys.executable)
    (bundled / "python3.11").symlink_to(base_python)
    assert deps.blender_python(str(exe)) == str(bundled / "python3.11")
    assert deps.blender_python(str(root)) == str(bundled / "python3.11")
    assert deps.blender_version(str(exe)) == (4, 2, 3)

    proc = run_script("--dry-run", "--cpu", "--blender", exe, "--venv", tmp_path / "v")
    if "cannot read installed packages" in proc.stderr:
        pytest.skip("base Python has neither packaging nor pip")
    assert proc.returncode == 0, proc.stderr
    assert "Blender's Python: {}".format(bundled / "python3.11") in proc.stdout
    lines = [line for line in proc.stdout.splitlines() if line.startswith("[install_deps] blender:")]
    assert lines, proc.stdout
    run_line = [line for line in lines if "would run:" in line]
    assert len(run_line) == 1
    requirements = run_line[0].split("constraints.txt", 1)[1].split()
    assert requirements and all(r.split("<")[0].split("=")[0] in ("numpy", "opencv-python-headless", "torch")
                                for r in requirements)


@posix_only
def test_old_blender_is_refused(tmp_path):
    exe = fake_executable(tmp_path / "blender-3.4", "blender", 'echo "Blender 3.4.1"')
    proc = run_script("--dry-run", "--cpu", "--blender", exe, "--venv", tmp_path / "v")
    assert proc.returncode == deps.EXIT_SETUP
    assert "older than 3.6" in proc.stderr
