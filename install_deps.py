#!/usr/bin/env python3
"""Install everything this project needs. Standard library only.

    python3 install_deps.py              # set up .venv/ (and a Blender found on this machine)
    python3 install_deps.py --dry-run    # print the plan, change nothing
    python3 install_deps.py --blender /path/to/blender   # also Blender's own Python

What it does:
1. Creates (or reuses) the virtual environment ``.venv/`` in the repository with Python 3.11
   (the only version the ``bpy`` 5.0.1 wheel exists for) and installs ``PACKAGES`` there.
2. Chooses the torch build: CUDA when ``nvidia-smi -L`` lists a GPU, CPU otherwise
   (``--cpu`` / ``--cuda`` override).
3. With ``--blender PATH``, or when it finds Blender on PATH or in a usual install folder,
   installs the runtime packages (not bpy, not pytest) into that Blender's own Python too:
   into its site-packages when writable, else into Blender's user ``scripts/modules`` folder.
4. Pins versions through ``constraints.txt`` (written from ``PACKAGES``) so that no
   dependency drags numpy to 2.x.
5. Installs this checkout editable into the venv (``pip install --no-deps -e .``), which puts
   the ``video-mocap*`` commands of pyproject.toml in ``.venv/bin``.
6. Builds (or checks) the ONNX files of the shipped networks (pose, detector, lifter) once, from
   the sha256-checked weights, into the engine's cache (``python -m inference.models.runtime --build``).

It is idempotent: installed versions are read with importlib.metadata in the target Python
and pip only runs for what is missing or does not satisfy the pins.
Exit codes: 0 done, 1 a package could not be installed, 2 unusable setup (Python, pip, paths).
"""

# Keep this file parseable by old Pythons (no walrus, no match, no "X | Y" types) so that
# an old interpreter gets the clear "Python too old" message instead of a SyntaxError.

import argparse
import collections
import glob
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import time

# --------------------------------------------------------------------------- the one list
# name, version specifier ("" = any), where: "venv" = project venv only, "both" = also Blender.
Package = collections.namedtuple("Package", "name spec where why")

TORCH_VERSION = "2.13.0"

PACKAGES = [
    Package("numpy", "<2", "both", "bpy 5.0.1 and Blender 4.2-5.0 bundle numpy 1.x"),
    Package("opencv-python-headless", "<4.12", "both", "video decoding; 4.12 needs numpy 2"),
    Package("torch", "==" + TORCH_VERSION, "both", "inference; CPU or CUDA build chosen at run time"),
    Package("bpy", "==5.0.1", "venv", "Blender as a Python module, for tests and batch runs"),
    Package("pytest", "", "venv", "test runner"),
    Package("matplotlib", "<3.10", "venv", "demo pictures (inference/viz/preview.py); 3.10 needs numpy 2"),
    Package("ray", "==2.60.0", "venv", "batch --ray: one task per video on a cluster (batch_pool.py)"),
    Package("setuptools", ">=64", "venv", "builds the editable install of this checkout (PEP 660)"),
    Package("import-linter", "==2.17", "venv", "checks the import rules in pyproject.toml (tests/test_import_rules.py)"),
    # The engine runs in the venv (the add-on starts it in a subprocess), so Blender's Python never needs these.
    Package("onnxruntime", "==1.30.0", "venv", "runs the networks on the CPU, faster than PyTorch and without "
                                               "importing it (inference/models/runtime.py); 1.30 accepts numpy 1.x"),
    Package("onnx", "==1.23.1", "venv", "torch.onnx's exporter needs it to build those ONNX files once"),
]

# This checkout itself, installed editable into the venv (pyproject.toml: the packages and the
# video-mocap* console scripts). Source edits need no reinstall; a change of [project.scripts]
# or of the version is noticed by the next run, which then reinstalls.
PROJECT_NAME = "video-mocap"

MIN_BLENDER = (3, 6)  # bl_info["blender"] of the add-on; the extension manifest asks for 4.2
REQUIRED_VENV_PYTHON = (3, 11)  # bpy 5.0.1 wheels are published for CPython 3.11 only
MIN_PYTHON = (3, 8)  # to run this script at all (it may then create the venv with python3.11)

REPO = os.path.dirname(os.path.abspath(__file__))
DEFAULT_VENV = os.path.join(REPO, ".venv")
CONSTRAINTS = os.path.join(REPO, "constraints.txt")

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
TORCH_CUDA_INDEX_WINDOWS = "https://download.pytorch.org/whl/cu128"

EXIT_INSTALL = 1
EXIT_SETUP = 2


class SetupError(Exception):
    """The machine cannot be set up as asked (wrong Python, no pip, Blender not found...)."""


class InstallError(Exception):
    """pip could not install a package, or installed something that does not satisfy the pins."""


def say(msg):
    print("[install_deps] " + msg, flush=True)


def requirement(pkg):
    return pkg.name + pkg.spec


def render_constraints(packages=None):
    """Text of constraints.txt: one line per package that has a version specifier."""
    lines = [
        "# Written by install_deps.py from its PACKAGES list; edit the list there, not this file.",
        "# Used as `pip install -c constraints.txt ...` so no dependency can move these pins.",
    ]
    for pkg in packages or PACKAGES:
        if pkg.spec:
            lines.append(requirement(pkg))
    return "\n".join(lines) + "\n"


def write_constraints(path=CONSTRAINTS, dry_run=False):
    text = render_constraints()
    try:
        with open(path) as fh:
            current = fh.read()
    except OSError:
        current = None
    if current == text:
        return False
    if dry_run:
        say("would write " + path)
    else:
        with open(path, "w") as fh:
            fh.write(text)
        say("wrote " + path)
    return True


# --------------------------------------------------------------------------- Python checks

def check_python(version_info=None, executable=None):
    """Return the interpreter to create the venv with; SetupError if none is usable.

    ``version_info`` / ``executable`` describe the running interpreter (defaults: this one).
    A different interpreter (python3.11 on PATH) is used when this one is not 3.11.
    """
    version_info = tuple(version_info or sys.version_info)[:3]
    executable = executable or sys.executable
    have = ".".join(str(v) for v in version_info)
    need = ".".join(str(v) for v in REQUIRED_VENV_PYTHON)
    if tuple(version_info[:2]) == REQUIRED_VENV_PYTHON:
        return executable
    other = shutil.which("python" + need)
    if other:
        return other
    if tuple(version_info[:2]) < REQUIRED_VENV_PYTHON:
        raise SetupError(
            "Python {} is too old: this project needs Python {} (the bpy 5.0.1 wheel exists only "
            "for {}). Install Python {} and run: python{} install_deps.py".format(have, need, need, need, need))
    raise SetupError(
        "Python {} is too new for bpy 5.0.1, which exists only for Python {}. Install Python {} "
        "and run: python{} install_deps.py".format(have, need, need, need))


def venv_python(venv_dir):
    if os.name == "nt":
        return os.path.join(venv_dir, "Scripts", "python.exe")
    return os.path.join(venv_dir, "bin", "python")


def run_capture(cmd, timeout=120, env=None):
    """(returncode, stdout+stderr) of cmd; (None, reason) when it cannot be started."""
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired) as ex:
        return None, str(ex)
    return proc.returncode, proc.stdout


def python_version_of(python):
    rc, out = run_capture([python, "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"])
    if rc != 0:
        raise SetupError("cannot run {}: {}".format(python, out.strip()))
    return tuple(int(v) for v in out.strip().split("."))


def has_pip(python):
    rc, _ = run_capture([python, "-m", "pip", "--version"])
    return rc == 0


def ensure_pip(python, bootstrap=True, dry_run=False):
    """Make sure ``python -m pip`` works; try ensurepip once. SetupError with a fix otherwise."""
    if has_pip(python):
        return
    if bootstrap and not dry_run:
        say("pip is missing in {}; running ensurepip".format(python))
        run_capture([python, "-m", "ensurepip", "--upgrade", "--default-pip"], timeout=600)
        if has_pip(python):
            return
    if dry_run:
        say("would bootstrap pip in {} with ensurepip".format(python))
        return
    raise SetupError(
        "pip is missing in {} and ensurepip could not install it. Install pip for that Python "
        "(Debian/Ubuntu: apt install python3-pip python3-venv), then run install_deps.py again.".format(python))


def ensure_venv(venv_dir, creator, dry_run=False):
    """Create the venv with ``creator`` unless it exists; return its python. Checks its version."""
    py = venv_python(venv_dir)
    need = REQUIRED_VENV_PYTHON
    if os.path.exists(py):
        have = python_version_of(py)
        if have[:2] != need:
            raise SetupError(
                "{} uses Python {}, but Python {}.{} is needed (bpy 5.0.1). Delete that folder and run "
                "install_deps.py again with python{}.{}.".format(venv_dir, ".".join(map(str, have)), need[0],
                                                                 need[1], need[0], need[1]))
        say("using venv {} (Python {})".format(venv_dir, ".".join(map(str, have))))
        return py
    if dry_run:
        say("would create venv {} with {}".format(venv_dir, creator))
        return py
    say("creating venv {} with {}".format(venv_dir, creator))
    rc, out = run_capture([creator, "-m", "venv", venv_dir], timeout=600)
    if rc != 0 or not os.path.exists(py):
        raise SetupError(
            "could not create the venv {}:\n{}\nOn Debian/Ubuntu install the venv module: "
            "apt install python3.11-venv".format(venv_dir, (out or "").strip()))
    return py


# --------------------------------------------------------------------------- GPU and torch

def detect_nvidia_gpu():
    """(found, detail): True when ``nvidia-smi -L`` runs and lists at least one GPU."""
    exe = shutil.which("nvidia-smi")
    if not exe:
        return False, "nvidia-smi not found"
    rc, out = run_capture([exe, "-L"], timeout=30)
    if rc != 0:
        return False, "nvidia-smi -L failed ({})".format((out or "").strip().splitlines()[-1:] or rc)
    gpus = [line.strip() for line in out.splitlines() if line.strip().startswith("GPU ")]
    if not gpus:
        return False, "nvidia-smi -L lists no GPU"
    return True, gpus[0] + ("" if len(gpus) == 1 else " (+{} more)".format(len(gpus) - 1))


def host_reachable(url, timeout=3.0):
    """True if a TCP connection to the URL's host:443 opens (or a proxy is configured)."""
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return True
    host = url.split("://", 1)[-1].split("/", 1)[0]
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def torch_plan(mode, system=None, reachable=host_reachable):
    """How to ask pip for torch: (requirement, extra pip args, note).

    cpu:  Linux/Windows PyPI wheels carry CUDA, so on those systems add the PyTorch CPU index;
          its "2.13.0+cpu" sorts above PyPI's "2.13.0" and wins. macOS wheels are CPU already.
    cuda: Linux: PyPI's torch is the CUDA build; "===" asks for exactly "2.13.0", so a local
          "+cpu" wheel (e.g. from a pip find-links folder) cannot be taken instead.
          Windows: the PyTorch CUDA index.
    """
    system = system or platform.system()
    if mode == "cpu":
        if system == "Darwin":
            return "torch==" + TORCH_VERSION, [], "CPU build from PyPI"
        if reachable(TORCH_CPU_INDEX):
            return ("torch==" + TORCH_VERSION, ["--extra-index-url", TORCH_CPU_INDEX],
                    "CPU build from " + TORCH_CPU_INDEX)
        return ("torch==" + TORCH_VERSION, [],
                "{} unreachable: torch from PyPI / local wheels (may be the larger CUDA build, "
                "which also runs on CPU)".format(TORCH_CPU_INDEX))
    if system == "Windows":
        return ("torch==" + TORCH_VERSION, ["--extra-index-url", TORCH_CUDA_INDEX_WINDOWS],
                "CUDA build from " + TORCH_CUDA_INDEX_WINDOWS)
    return "torch===" + TORCH_VERSION, [], "CUDA build from PyPI"


# --------------------------------------------------------------------------- installed versions

_QUERY_SCRIPT = r"""
import json, sys
from importlib import metadata
try:
    from packaging.specifiers import SpecifierSet
except ImportError:
    from pip._vendor.packaging.specifiers import SpecifierSet
args = json.loads(sys.argv[1])
paths = args["paths"] + sys.path
out = []
for name, spec, forbid in args["packages"]:
    dist = next(iter(metadata.distributions(name=name, path=paths)), None)
    version = dist.version if dist is not None else None
    ok = version is not None and SpecifierSet(spec).contains(version, prereleases=True)
    if ok and forbid and forbid in version:
        ok = False
    out.append([name, version, ok])
print("@@QUERY@@" + json.dumps(out))
"""


def query_packages(python, checks, extra_paths=()):
    """Installed version and verdict for each (name, specifier, forbidden substring) in ``python``.

    Returns a list of (name, version or None, ok). Runs importlib.metadata in that interpreter,
    with ``extra_paths`` (a --target folder) searched first.
    """
    payload = {"paths": list(extra_paths), "packages": [list(c) for c in checks]}
    data = run_probe(python, _QUERY_SCRIPT, payload, "@@QUERY@@", "read installed packages of")
    return [tuple(item) for item in data]


def run_probe(python, script, payload, marker, what):
    """Run ``script`` in ``python`` with ``payload`` as JSON in argv[1]; return the JSON it prints
    after ``marker`` (other output, e.g. warnings, is ignored). SetupError "cannot <what> <python>"
    when it fails or prints no marker."""
    rc, out = run_capture([python, "-c", script, json.dumps(payload)])
    if rc != 0 or marker not in (out or ""):
        raise SetupError("cannot {} {}:\n{}".format(what, python, (out or "").strip()))
    return json.loads(out.split(marker, 1)[1].strip().splitlines()[0])


_EDITABLE_SCRIPT = r"""
import json, os, sys, sysconfig
from importlib import metadata
args = json.loads(sys.argv[1])
repo = os.path.realpath(args["repo"])

def state():
    import tomllib
    with open(os.path.join(repo, "pyproject.toml"), "rb") as fh:
        project = tomllib.load(fh)["project"]
    want = sorted(project.get("scripts", {}).items())
    for dist in metadata.distributions(name=args["name"]):
        info = json.loads(dist.read_text("direct_url.json") or "{}")
        if not info.get("dir_info", {}).get("editable"):
            continue
        url = info.get("url", "")
        if not url.startswith("file:"):
            continue
        from urllib.parse import unquote, urlparse
        from urllib.request import url2pathname
        if os.path.realpath(url2pathname(unquote(urlparse(url).path))) != repo:
            return "installed editable from another folder: " + url
        if dist.version != project.get("version"):
            return "installed version {} differs from pyproject.toml's {}".format(dist.version, project.get("version"))
        have = sorted((ep.name, ep.value) for ep in dist.entry_points if ep.group == "console_scripts")
        if have != want:
            return "its commands differ from pyproject.toml's [project.scripts]"
        bindir = sysconfig.get_path("scripts")
        missing = [n for n, _ in want
                   if not any(os.path.exists(os.path.join(bindir, n + ext)) for ext in ("", ".exe"))]
        if missing:
            return "command missing: " + ", ".join(missing)
        return ""
    return "not installed"

print("@@EDITABLE@@" + json.dumps(state()))
"""


def editable_problem(python, repo=REPO, name=PROJECT_NAME):
    """Why this checkout's editable install in ``python`` needs (re)doing; "" when it is current."""
    return run_probe(python, _EDITABLE_SCRIPT, {"repo": repo, "name": name}, "@@EDITABLE@@",
                     "check the editable install in")


EDITABLE_ARGS = ["--no-deps", "--no-build-isolation"]  # deps come from PACKAGES; setuptools is in the venv


def install_checkout(python, dry_run, exists=True, repo=REPO):
    """Install ``repo`` editable into the venv unless it already is (and is current)."""
    problem = editable_problem(python, repo) if exists else "not installed"
    if not problem:
        say("checkout: {} installed editable from {}, commands up to date".format(PROJECT_NAME, repo))
        return
    say("checkout: editable install needed ({})".format(problem))
    if dry_run:
        say("checkout: would run: " + " ".join(pip_command(python, ["-e", repo], CONSTRAINTS, EDITABLE_ARGS)))
        return
    t0 = time.time()
    pip_install(python, ["-e", repo], CONSTRAINTS, EDITABLE_ARGS)
    problem = editable_problem(python, repo)
    if problem:
        raise InstallError("checkout: after pip, the editable install is still not right: " + problem)
    say("checkout: installed {} editable in {:.0f} s".format(PROJECT_NAME, time.time() - t0))


# --------------------------------------------------------------------------- pip

ONNX_BUILD = ["-m", "inference.models.runtime", "--build"]


def build_onnx_files(python, dry_run, repo=REPO):
    """Build (or check) the ONNX files of the shipped networks in the venv's engine cache."""
    cmd = [python] + ONNX_BUILD
    if dry_run:
        say("onnx: would build (or check) the ONNX files of the shipped networks: " + " ".join(cmd))
        return
    t0 = time.time()
    proc = subprocess.run(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    if proc.returncode != 0:
        raise InstallError("onnx: building the ONNX files failed: " + (proc.stderr.strip() or proc.stdout.strip()))
    lines = proc.stdout.strip().splitlines()
    built = sum(line.startswith("built ") for line in lines)
    say("onnx: {} ONNX files built, {} checked in {:.0f} s".format(built, len(lines) - built, time.time() - t0))


def pip_command(python, requirements, constraints=CONSTRAINTS, extra_args=(), target=None):
    cmd = [python, "-m", "pip", "install", "--no-input", "-c", constraints]
    if target:
        cmd += ["--target", target, "--upgrade"]
    return cmd + list(extra_args) + list(requirements)


def pip_install(python, requirements, constraints=CONSTRAINTS, extra_args=(), target=None):
    """Run pip, echoing its output. InstallError (with pip's last error lines) if it fails."""
    cmd = pip_command(python, requirements, constraints, extra_args, target)
    say("running: " + " ".join(cmd))
    tail = collections.deque(maxlen=15)
    env = dict(os.environ, PIP_NO_INPUT="1")
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                universal_newlines=True, env=env)
    except OSError as ex:
        raise InstallError("cannot run pip with {}: {}".format(python, ex))
    for line in proc.stdout:
        sys.stdout.write("    " + line)
        tail.append(line.rstrip())
    rc = proc.wait()
    if rc != 0:
        errors = [line for line in tail if line.startswith("ERROR")] or list(tail)[-3:]
        raise InstallError("pip could not install {} (exit code {}):\n  {}".format(
            " ".join(requirements), rc, "\n  ".join(errors)))


# --------------------------------------------------------------------------- Blender

def blender_candidates():
    """Blender executables on PATH and in the usual install folders, first = preferred."""
    found = []
    exe = shutil.which("blender")
    if exe:
        found.append(exe)
    home = os.path.expanduser("~")
    patterns = [
        "/opt/blender*/blender", os.path.join(home, "blender*", "blender"),
        os.path.join(home, "Applications", "blender*", "blender"),
        "/Applications/Blender*.app/Contents/MacOS/Blender",
        os.path.join(os.environ.get("ProgramFiles", r"C:\Program Files"), "Blender Foundation", "Blender*",
                     "blender.exe"),
    ]
    for pat in patterns:
        for path in sorted(glob.glob(pat), reverse=True):
            if os.path.isfile(path) and path not in found:
                found.append(path)
    return found


def _version_key(path):
    parts = []
    for piece in path.replace("\\", "/").split("/"):
        if piece.replace(".", "").isdigit():
            parts.append(tuple(int(v) for v in piece.split(".") if v))
    return parts


def blender_python(blender):
    """Path of the Python interpreter bundled with the Blender at ``blender`` (executable or folder).

    Looks for ``<version>/python/bin/python3*`` next to the executable (Linux, Windows) or in
    ``../Resources`` (macOS); else asks Blender itself for ``sys.executable``.
    """
    blender = os.path.abspath(blender)
    if not os.path.exists(blender):
        raise SetupError("Blender not found at {}".format(blender))
    base = blender if os.path.isdir(blender) else os.path.dirname(os.path.realpath(blender))
    found = []
    for root in (base, os.path.join(base, "..", "Resources")):
        for pat in ("*/python/bin/python3.*", "*/python/bin/python3", "*/python/bin/python.exe"):
            found += [p for p in glob.glob(os.path.join(root, pat))
                      if os.path.isfile(p) and not p.endswith("-config")]
    if found:
        return os.path.normpath(sorted(found, key=_version_key)[-1])
    # Blender built against a system Python (Linux distributions): sys.executable inside Blender
    # names whatever python is on PATH, so derive the interpreter from sys.prefix instead.
    exe = blender_executable(blender)
    value = ask_blender(exe, "__import__('os').path.join(sys.prefix, 'python.exe') if sys.platform == 'win32' "
                             "else __import__('os').path.join(sys.prefix, 'bin', 'python%d.%d' % sys.version_info[:2])")
    if not value or not os.path.isfile(value):
        raise SetupError("could not find the Python bundled with Blender at {}".format(blender))
    return value


def blender_executable(blender):
    if os.path.isfile(blender):
        return blender
    for name in ("blender", "blender.exe", os.path.join("Contents", "MacOS", "Blender")):
        path = os.path.join(blender, name)
        if os.path.isfile(path):
            return path
    raise SetupError("no Blender executable in {}".format(blender))


def ask_blender(exe, expr):
    """Value of a Python expression evaluated inside background Blender (as printed text), or None."""
    code = "import sys, bpy\nprint('@@BLENDER@@', {})".format(expr)
    rc, out = run_capture([exe, "-b", "--factory-startup", "--python-expr", code], timeout=300)
    for line in (out or "").splitlines():
        if line.startswith("@@BLENDER@@ "):
            return line[len("@@BLENDER@@ "):].strip()
    return None


def blender_version(exe):
    """(major, minor, patch) from ``blender --version``; SetupError if it does not answer."""
    rc, out = run_capture([exe, "--version"], timeout=120)
    for line in (out or "").splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "Blender" and words[1][:1].isdigit():
            return tuple(int(v) for v in words[1].split(".")[:3] if v.isdigit())
    raise SetupError("{} --version did not print a Blender version:\n{}".format(exe, (out or "").strip()[-500:]))


_SITE_SCRIPT = r"""
import os, sysconfig
site = sysconfig.get_paths()["purelib"]
managed = os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED"))
print("@@SITE@@", int(os.access(site, os.W_OK) and not managed), site)
"""


def blender_install_target(python, blender):
    """None to install into Blender's own site-packages, else Blender's user ``scripts/modules``.

    The user folder is used when site-packages is not writable or belongs to a system Python
    that pip must not touch (PEP 668 ``EXTERNALLY-MANAGED``).
    """
    rc, out = run_capture([python, "-c", _SITE_SCRIPT])
    lines = [line for line in (out or "").splitlines() if line.startswith("@@SITE@@ ")]
    if rc == 0 and lines:
        _, ok, site = lines[-1].split(" ", 2)
        if ok == "1":
            return None
    else:
        site = "?"
    target = ask_blender(blender_executable(blender), "bpy.utils.user_resource('SCRIPTS', path='modules', create=True)")
    if not target:
        raise SetupError("Blender's site-packages ({}) cannot be used and Blender did not report its user "
                         "modules folder".format(site))
    return target


# --------------------------------------------------------------------------- plan and run

def plan_target(python, packages, torch_req, torch_mode, target=None, exists=True):
    """Requirements still to install in one interpreter: list of (pkg, requirement, installed)."""
    checks = []
    for pkg in packages:
        req = torch_req if pkg.name == "torch" else requirement(pkg)
        spec = pkg.spec  # torch: "==2.13.0" accepts any build; a CUDA request rejects "+cpu" below
        forbid = "+cpu" if (pkg.name == "torch" and torch_mode == "cuda") else ""
        checks.append((pkg, req, spec, forbid))
    if not exists:
        return [(pkg, req, None) for pkg, req, _, _ in checks]
    result = query_packages(python, [(p.name, s, f) for p, _, s, f in checks], [target] if target else [])
    return [(pkg, req, version) for (pkg, req, _, _), (_, version, ok) in zip(checks, result) if not ok]


def install_into(label, python, packages, torch_req, torch_mode, torch_args, dry_run, target=None, exists=True):
    todo = plan_target(python, packages, torch_req, torch_mode, target, exists)
    where = " --target " + target if target else ""
    if not todo:
        say("{}: all {} packages already satisfied ({}), nothing to do".format(
            label, len(packages), ", ".join(p.name for p in packages)))
        return
    for pkg, req, version in todo:
        say("{}: {} needed ({})".format(label, req, "installed: " + version if version else "not installed"))
    reqs = [req for _, req, _ in todo]
    extra = torch_args if any(pkg.name == "torch" for pkg, _, _ in todo) else []
    if dry_run:
        say("{}: would run: {}".format(label, " ".join(pip_command(python, reqs, CONSTRAINTS, extra, target))))
        return
    t0 = time.time()
    pip_install(python, reqs, CONSTRAINTS, extra, target)
    still = plan_target(python, packages, torch_req, torch_mode, target)
    if still:
        raise InstallError("{}: after pip, still not satisfied: {}".format(
            label, ", ".join("{} (installed: {})".format(req, v) for _, req, v in still)))
    say("{}: installed {} in {:.0f} s{}".format(label, " ".join(reqs), time.time() - t0, where))


def record_engine(python, dry_run):
    """Tell the add-on where the engine and its Python are (runner/engine_settings.py), so an
    installed extension finds them without paths typed into its preferences."""
    sys.path.insert(0, REPO)
    try:
        from blender_mocap_addon.runner import engine_settings
    finally:
        sys.path.remove(REPO)
    path = engine_settings.settings_path()
    if dry_run:
        say("would record the engine for the Blender add-on in {}".format(path))
        return
    try:
        engine_settings.write(REPO, python, path)
        say("recorded the engine for the Blender add-on in {}".format(path))
    except OSError as ex:   # the install itself worked; the add-on can still be told by hand
        say("could not write {} ({}); set the project root in the add-on preferences".format(path, ex))


def parse_args(argv):
    p = argparse.ArgumentParser(description="Install the project's dependencies into .venv/ "
                                            "(and into Blender's Python).")
    gpu = p.add_mutually_exclusive_group()
    gpu.add_argument("--cpu", action="store_true", help="install the CPU build of torch")
    gpu.add_argument("--cuda", action="store_true", help="install the CUDA build of torch")
    bl = p.add_mutually_exclusive_group()
    bl.add_argument("--blender", metavar="PATH", help="Blender executable or install folder: also install "
                                                     "the runtime packages into its bundled Python")
    bl.add_argument("--no-blender", action="store_true", help="do not look for Blender")
    p.add_argument("--venv", default=DEFAULT_VENV, help="virtual environment folder (default: .venv in the repo)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if tuple(sys.version_info[:2]) < MIN_PYTHON:
        print("install_deps: error: Python {}.{} is too old to run this script; use Python {}.{}".format(
            sys.version_info[0], sys.version_info[1], *REQUIRED_VENV_PYTHON), file=sys.stderr)
        return EXIT_SETUP
    try:
        if args.dry_run:
            say("dry run: nothing will be changed")
        creator = check_python()
        venv_dir = os.path.abspath(args.venv)
        exists = os.path.exists(venv_python(venv_dir))
        py = ensure_venv(venv_dir, creator, args.dry_run)
        if exists or not args.dry_run:
            ensure_pip(py, dry_run=args.dry_run)

        if args.cpu or args.cuda:
            torch_mode = "cuda" if args.cuda else "cpu"
            say("torch: {} build (--{})".format(torch_mode.upper(), torch_mode))
        else:
            found, detail = detect_nvidia_gpu()
            torch_mode = "cuda" if found else "cpu"
            say("torch: {} build ({})".format(torch_mode.upper(), detail))
        torch_req, torch_args, note = torch_plan(torch_mode)
        say("torch: {} - {}".format(torch_req, note))

        write_constraints(dry_run=args.dry_run)
        install_into("venv", py, PACKAGES, torch_req, torch_mode, torch_args, args.dry_run,
                     exists=exists or not args.dry_run)
        install_checkout(py, args.dry_run, exists=exists or not args.dry_run)
        build_onnx_files(py, args.dry_run)

        blender = args.blender
        if blender is None and not args.no_blender:
            candidates = blender_candidates()
            if candidates:
                blender = candidates[0]
                say("found Blender at {} (use --no-blender to skip it)".format(blender))
        if blender:
            version = blender_version(blender_executable(os.path.abspath(blender)))
            if version[:2] < MIN_BLENDER:
                msg = "Blender {} at {} is older than {}.{}, the oldest this add-on supports".format(
                    ".".join(map(str, version)), blender, *MIN_BLENDER)
                if args.blender:
                    raise SetupError(msg)
                say("skipping: " + msg)
                blender = None
        if blender:
            bpy_python = blender_python(blender)
            say("Blender's Python: {}".format(bpy_python))
            ensure_pip(bpy_python, dry_run=args.dry_run)
            target = blender_install_target(bpy_python, blender)
            if target:
                say("Blender's site-packages is read-only; installing into {}".format(target))
            install_into("blender", bpy_python, [p for p in PACKAGES if p.where == "both"], torch_req,
                         torch_mode, torch_args, args.dry_run, target)
        else:
            say("no usable Blender given or found: skipping Blender's Python (the bpy wheel in the venv is enough "
                "for tests and batch runs)")
    except SetupError as ex:
        print("install_deps: error: {}".format(ex), file=sys.stderr)
        return EXIT_SETUP
    except InstallError as ex:
        print("install_deps: error: {}".format(ex), file=sys.stderr)
        return EXIT_INSTALL
    except KeyboardInterrupt:
        print("install_deps: interrupted", file=sys.stderr)
        return 130
    record_engine(venv_python(venv_dir), args.dry_run)
    say("dry run finished" if args.dry_run else "done: use {}".format(venv_python(os.path.relpath(venv_dir))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
