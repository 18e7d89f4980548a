"""Run ``python -m inference`` in a subprocess and follow its JSON-lines progress.

No bpy and no torch here: the add-on never imports inference; it only starts
it with the Python the user configured (add-on preferences) or, under the bpy
wheel, ``sys.executable``.  Output pipes are drained by two reader threads into
a queue, so :meth:`Job.poll` never blocks Blender's UI.  :meth:`Job.cancel`
terminates the process, then kills it if it has not gone after a grace period.

Progress lines are JSON objects, one per line, as ``python -m inference
--progress jsonl`` prints them: ``{"frame", "total", "fps", "eta"}`` and a last
``{"done": true, "output", "people", "warnings"}``.  Also understood:
``fraction`` (0..1), ``stage``, ``message``, ``event`` ("error").  Every event
is kept in ``Job.events``; other stdout lines are kept as log text.
"""
from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass

from ..errors import MocapError

RUNNING, FINISHED, FAILED, CANCELLED = "RUNNING", "FINISHED", "FAILED", "CANCELLED"


@dataclass
class InferenceOptions:
    """CLI options of ``python -m inference``; 0 / None mean "inference's default"."""
    preset: str = "balanced"
    device: str = "auto"
    runtime: str = "auto"        # what runs the networks: auto | torch | onnx | onnx-int8 (the engine's --runtime)
    max_people: int = 0
    focal: float = 0.0
    start: int | None = None
    end: int | None = None
    smoothing: float | None = None


def inference_argv(python: str, video: str, out_path: str, opts: InferenceOptions) -> list:
    """Command line for one video -> pose file."""
    argv = [python, "-m", "inference", video, "-o", out_path, "--progress", "jsonl",
            "--preset", opts.preset, "--device", opts.device, "--runtime", opts.runtime]
    if opts.max_people and opts.max_people > 0:
        argv += ["--max-people", str(int(opts.max_people))]
    if opts.focal and opts.focal > 0:
        argv += ["--focal", repr(float(opts.focal))]
    if opts.start is not None:
        argv += ["--start", str(int(opts.start))]
    if opts.end is not None:
        argv += ["--end", str(int(opts.end))]
    if opts.smoothing is not None:
        argv += ["--smoothing", repr(float(opts.smoothing))]
    return argv


@dataclass
class KeypointJobOptions:
    """Options of ``python -m inference --keypoints`` (another detector's 2D; docs/keypoints.md);
    0 / "" mean "from the video or the file"."""
    video: str = ""              # the clip the keypoints came from (size, rate, frame count)
    fps: float = 0.0
    width: int = 0
    height: int = 0
    format: str = "auto"         # auto | openpose | coco | table
    smoothing: float | None = None
    max_people: int = 0


def keypoints_argv(python: str, keypoints: str, out_path: str, opts: KeypointJobOptions) -> list:
    """Command line for one keypoint file (or OpenPose folder) -> pose file."""
    argv = [python, "-m", "inference", "--keypoints", keypoints]
    if opts.video:
        argv.append(opts.video)
    argv += ["-o", out_path, "--progress", "jsonl", "--format", opts.format]
    if opts.fps and opts.fps > 0:
        argv += ["--fps", repr(float(opts.fps))]
    if opts.width > 0 and opts.height > 0:
        argv += ["--image-size", f"{int(opts.width)}x{int(opts.height)}"]
    if opts.max_people and opts.max_people > 0:
        argv += ["--max-people", str(int(opts.max_people))]
    if opts.smoothing is not None:
        argv += ["--smoothing", repr(float(opts.smoothing))]
    return argv


def find_project_root(start: str | None = None) -> str | None:
    """The checkout root (the folder holding ``inference/`` and ``blender_mocap_addon/``)
    above ``start`` (default: this file), or None when the add-on runs from elsewhere."""
    d = os.path.dirname(os.path.abspath(start or __file__))
    for _ in range(6):
        if os.path.isfile(os.path.join(d, "inference", "__init__.py")):
            return d
        parent = os.path.dirname(d)
        if parent == d:
            break
        d = parent
    return None


def default_python(project_root: str | None) -> str:
    """The checkout's virtual environment if there is one, else this interpreter."""
    if project_root:
        for rel in (("bin", "python"), ("Scripts", "python.exe")):
            cand = os.path.join(project_root, ".venv", *rel)
            if os.path.isfile(cand):
                return cand
    return sys.executable


def locate_engine(root: str | None = None, python: str | None = None) -> tuple:
    """(project_root or None, python, how found): the given values first, then the checkout
    around the add-on, then the settings file install_deps.py writes (engine_settings)."""
    from . import engine_settings
    how = "set in the preferences" if root else ""
    if not root:
        root = find_project_root()
        how = "the checkout around the add-on" if root else ""
    saved = engine_settings.read()
    if not root and saved.get("project_root"):
        root, how = saved["project_root"], f"recorded by install_deps.py in {engine_settings.settings_path()}"
    if not python:
        same = saved.get("python") and saved.get("project_root") == root
        python = saved["python"] if same else default_python(root)
    return root, python, how


def venv_of(python: str) -> str | None:
    """The virtual-environment folder a Python executable belongs to (pyvenv.cfg), or None."""
    d = os.path.dirname(os.path.dirname(os.path.abspath(python)))
    return d if os.path.isfile(os.path.join(d, "pyvenv.cfg")) else None


def install_deps_argv(python: str, project_root: str, blender: str | None = None,
                      install: bool = False) -> list:
    """Command line for ``install_deps.py`` (project root): a dry run that lists what is
    missing, or the install itself.  ``blender``: this Blender's executable (its Python
    gets the runtime packages too); the venv is the one ``python`` lives in, if any."""
    argv = [python, os.path.join(project_root, "install_deps.py")]
    argv += ["--blender", blender] if blender else ["--no-blender"]
    venv = venv_of(python)
    if venv:
        argv += ["--venv", venv]
    if not install:
        argv.append("--dry-run")
    return argv


def missing_from_install_log(lines) -> list:
    """Lines of install_deps output that name a package still needed."""
    return [l.strip() for l in lines if " needed (" in l or "error" in l.lower()]


def parse_progress(line: str):
    """One stdout line -> dict (JSON object) or None for plain text."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        ev = json.loads(line)
    except ValueError:
        return None
    return ev if isinstance(ev, dict) else None


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def event_fraction(ev: dict):
    """0..1 progress of an event, or None."""
    if ev.get("done") is True:
        return 1.0
    for key in ("fraction", "progress"):
        if _num(ev.get(key)):
            return min(max(float(ev[key]), 0.0), 1.0)
    for num, den in (("frame", "total"), ("frame", "frames"), ("done", "total"), ("current", "total")):
        a, b = ev.get(num), ev.get(den)
        if _num(a) and _num(b) and b > 0:
            return min(max(float(a) / float(b), 0.0), 1.0)
    return None


def event_message(ev: dict) -> str:
    """Short status text for an event ("" if it has nothing to say)."""
    if isinstance(ev.get("message"), str):
        return ev["message"]
    if _num(ev.get("frame")) and _num(ev.get("total")):
        text = f"frame {int(ev['frame'])}/{int(ev['total'])}"
        if _num(ev.get("fps")):
            text += f", {float(ev['fps']):.1f} fps"
        if _num(ev.get("eta")) and ev.get("done") is not True:
            eta = int(ev["eta"])
            text += f", {eta // 60}:{eta % 60:02d} left"
        return text
    return ""


class Job:
    """A subprocess whose stdout carries JSON-lines progress.

    argv: command line; cwd: working folder (the project root for ``-m inference``).
    """

    def __init__(self, argv, cwd=None, env=None, grace_s: float = 3.0):
        self.argv = list(argv)
        self.cwd = cwd
        self.env = env
        self.grace_s = grace_s
        self.proc = None
        self.state = None
        self.fraction = 0.0
        self.stage = ""
        self.message = ""
        self.error = ""
        self.warnings = []
        self.events = []
        self.log = collections.deque(maxlen=200)
        self.stderr_tail = collections.deque(maxlen=40)
        self._q = queue.Queue()
        self._threads = []

    # -- lifecycle
    def start(self):
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        if self.cwd:
            env["PYTHONPATH"] = os.pathsep.join(p for p in (self.cwd, env.get("PYTHONPATH", "")) if p)
        kw = {}
        if os.name == "nt":   # no console window popping up from Blender
            kw["creationflags"] = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self.proc = subprocess.Popen(self.argv, cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                         text=True, bufsize=1, encoding="utf-8", errors="replace", **kw)
        except OSError as ex:
            raise MocapError(f"cannot start {self.argv[0]!r}: {ex}") from ex
        self.state = RUNNING
        for stream, tag in ((self.proc.stdout, "out"), (self.proc.stderr, "err")):
            t = threading.Thread(target=self._pump, args=(stream, tag), daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def _pump(self, stream, tag):
        try:
            for line in stream:
                self._q.put((tag, line.rstrip("\r\n")))
        except (OSError, ValueError):
            pass
        finally:
            self._q.put((tag, None))

    def poll(self) -> str:
        """Take in whatever output arrived (never blocks); returns the state."""
        while True:
            try:
                tag, line = self._q.get_nowait()
            except queue.Empty:
                break
            if line is None:
                continue
            if tag == "err":
                self.stderr_tail.append(line)
                continue
            ev = parse_progress(line)
            if ev is None:
                self.log.append(line)
                continue
            self.events.append(ev)
            fr = event_fraction(ev)
            if fr is not None:
                self.fraction = fr
            if isinstance(ev.get("stage"), str):
                self.stage = ev["stage"]
            msg = event_message(ev)
            if msg:
                self.message = msg
            if ev.get("done") is True and isinstance(ev.get("warnings"), list):
                self.warnings = [str(w) for w in ev["warnings"]]
            if ev.get("event") == "error" or ev.get("stage") == "error":
                self.error = str(ev.get("message") or ev.get("error") or "error")
        if self.state == RUNNING and self.proc.poll() is not None:
            for t in self._threads:
                t.join(timeout=1.0)
            if not self._q.empty():
                return self.poll()
            self.state = FINISHED if self.proc.returncode == 0 else FAILED
            if self.state == FAILED and not self.error:
                self.error = self.failure_text()
        return self.state

    def failure_text(self) -> str:
        tail = [l for l in self.stderr_tail if l.strip()]
        last = tail[-1] if tail else (self.log[-1] if self.log else "")
        return f"exit code {self.proc.returncode}" + (f": {last}" if last else "")

    def cancel(self):
        """Terminate, wait ``grace_s``, then kill.  Safe to call twice."""
        if self.proc is None or self.state not in (RUNNING, None):
            return
        if self.proc.poll() is None:
            try:
                self.proc.terminate()
                self.proc.wait(timeout=self.grace_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except OSError:
                pass
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except (OSError, ValueError):
                pass
        self.state = CANCELLED

    def wait(self, timeout: float | None = None, interval: float = 0.05, on_progress=None) -> str:
        """Poll until the job ends (for batch use); returns the state."""
        t0 = time.monotonic()
        last = None
        while self.poll() == RUNNING:
            if on_progress is not None and (self.fraction, self.stage) != last:
                last = (self.fraction, self.stage)
                on_progress(self)
            if timeout is not None and time.monotonic() - t0 > timeout:
                self.cancel()
                raise MocapError(f"job timed out after {timeout:.0f} s")
            time.sleep(interval)
        return self.state
