"""Scale-out runner for batch conversions: one task per input, on a local process pool or Ray.

    summary = run_many(jobs, "package.module:function", ray=None | "auto" | "local" | ADDRESS,
                       workers=N, retries=1)
    print(summary.format())

A *worker* is a plain function ``fn(job: Job, workdir: str) -> list[str]`` named by a
``"module:function"`` path (so that a pool process or a Ray worker on another machine imports
it itself; nothing is pickled but the job). It writes its files into ``workdir``, a fresh
private folder inside ``job.output_dir``, and returns their paths. An exception means the
input failed.

Around each call the task (``run_job``):

* **atomic results** -- the worker only ever writes into the private temp folder; on success
  each file is moved into ``job.output_dir`` with ``os.replace`` (atomic on one file system),
  then a small done marker ``<output_dir>/.done/<name>.json`` is written (temp + replace) last.
  A task killed half-way leaves no marker, and its temp folder is removed by the next run.
* **resume** -- a job whose marker exists, has the same ``key`` (a fingerprint of the input's
  size and mtime and the job's options) and whose listed outputs still exist with the recorded
  sizes is skipped without starting a task.
* **retries** -- a failed job is run again up to ``retries`` more times. A corrupt input fails
  every time and is reported in the summary; the other jobs go on.

Backends: without ``ray`` a ``concurrent.futures.ProcessPoolExecutor`` (spawn) with ``workers``
processes. With ``ray`` (imported only then): ``"auto"`` joins the running cluster (ray.init's
``address="auto"``: ``RAY_ADDRESS`` or a local ``ray start``) or, when there is none, starts
one on this machine; ``"local"`` always starts one here; anything else is a cluster address
(``HOST:6379`` or ``ray://HOST:10001``). When the cluster has GPUs each task asks for
``gpus_per_task`` (default 1) GPU, so Ray places it on a GPU node and sets
``CUDA_VISIBLE_DEVICES`` for it; otherwise tasks are CPU tasks (``cpus_per_task``, default 1).
On a multi-machine cluster every node needs the checkout (and its ``.venv``) at the same path
and ``output_dir`` on a shared file system; see docs/scale.md. Ray tasks get the driver's
``MOCAP_*`` environment variables (e.g. ``MOCAP_WEIGHTS``) and ``PYTHONPATH`` = ``sys_path``.

No bpy and no torch here. ``batch_main`` is the glue used by ``blender_mocap_addon.runner.batch``
(``--ray`` / ``--workers``); ``batch_worker`` converts one input by running that same CLI on it
in a subprocess (crash isolation: a decoder or Blender crash costs one input, not the pool).
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import importlib
import json
import multiprocessing
import os
import pickle
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from typing import Callable, Iterable

DONE_DIR = ".done"
PART_SUFFIX = ".part"
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class PoolError(Exception):
    """The batch cannot run as asked (bad jobs, no Ray, cannot reach the cluster)."""


@dataclasses.dataclass
class Job:
    """One unit of work. name: unique within an output folder (output stem, marker name);
    input: the input path; output_dir: where results land; options: whatever the worker needs
    (JSON-able); key: fingerprint deciding whether an earlier result is still valid."""

    name: str
    input: str
    output_dir: str
    options: dict = dataclasses.field(default_factory=dict)
    key: str = ""

    def __post_init__(self):
        if not self.key:
            self.key = fingerprint(self.input, self.options)


@dataclasses.dataclass
class JobResult:
    name: str
    input: str
    ok: bool
    skipped: bool = False          # done by an earlier run (resume)
    attempts: int = 0
    seconds: float = 0.0           # of the last attempt
    outputs: list = dataclasses.field(default_factory=list)
    error: str = ""
    host: str = ""


@dataclasses.dataclass
class Summary:
    results: list
    backend: str
    seconds: float

    @property
    def converted(self) -> list:
        return [r for r in self.results if r.ok and not r.skipped]

    @property
    def skipped(self) -> list:
        return [r for r in self.results if r.skipped]

    @property
    def failed(self) -> list:
        return [r for r in self.results if not r.ok]

    @property
    def ok(self) -> bool:
        return not self.failed

    def format(self) -> str:
        lines = ["summary"]
        for r in self.results:
            status = "SKIP" if r.skipped else ("OK  " if r.ok else "FAIL")
            msg = "done before" if r.skipped else (f"{len(r.outputs)} files" if r.ok else r.error)
            host = f" [{r.host}]" if r.host and not r.skipped else ""
            lines.append(f"  {status} {r.seconds:7.1f} s  x{r.attempts}  {r.name}{host}: {msg}")
        lines.append(f"{len(self.converted)} converted, {len(self.skipped)} skipped (done before), "
                     f"{len(self.failed)} failed, {self.seconds:.1f} s on {self.backend}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {"backend": self.backend, "seconds": self.seconds,
                "results": [dataclasses.asdict(r) for r in self.results]}


# --------------------------------------------------------------------------- markers

def fingerprint(path: str, options: dict) -> str:
    """sha1 of the input's absolute path, size and mtime and the options (JSON)."""
    try:
        st = os.stat(path)
        stat = [st.st_size, st.st_mtime_ns]
    except OSError:
        stat = None
    blob = json.dumps([os.path.abspath(path), stat, options], sort_keys=True, default=str)
    return hashlib.sha1(blob.encode()).hexdigest()


def marker_path(job: Job) -> str:
    return os.path.join(job.output_dir, DONE_DIR, job.name + ".json")


def read_marker(job: Job) -> dict | None:
    """The job's done marker if it proves the job complete (same key, outputs intact), else None."""
    try:
        with open(marker_path(job), encoding="utf-8") as fh:
            m = json.load(fh)
        if m.get("key") != job.key or not isinstance(m.get("outputs"), list):
            return None
        for o in m["outputs"]:
            if os.path.getsize(os.path.join(job.output_dir, o["file"])) != o["bytes"]:
                return None
        return m
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_json_atomic(path: str, obj) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(obj, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def clean_stale_parts(output_dir: str, names: Iterable[str]) -> int:
    """Remove temp folders ``.<name>.*.part`` left by killed runs; returns how many."""
    if not os.path.isdir(output_dir):
        return 0
    prefixes = tuple("." + n + "." for n in names)
    n = 0
    for entry in os.listdir(output_dir):
        if entry.endswith(PART_SUFFIX) and entry.startswith(prefixes):
            shutil.rmtree(os.path.join(output_dir, entry), ignore_errors=True)
            n += 1
    return n


# --------------------------------------------------------------------------- the task

def resolve(path: str) -> Callable:
    """``"package.module:function"`` -> the function."""
    mod, sep, fn = path.partition(":")
    if not sep or not mod or not fn:
        raise PoolError(f"worker must be 'module:function', got {path!r}")
    return getattr(importlib.import_module(mod), fn)


def run_job(job: dict, worker_fn_path: str, sys_path: list | None = None) -> dict:
    """Run one job (in a pool process or a Ray task): worker into a temp folder, move the files
    into place, write the done marker last. Never raises: returns a JobResult as a dict."""
    for p in reversed(sys_path or []):
        if p not in sys.path:
            sys.path.insert(0, p)
    t0 = time.perf_counter()
    res = JobResult(job["name"], job["input"], ok=False, host=socket.gethostname())
    workdir = None
    try:
        j = Job(**job)
        fn = resolve(worker_fn_path)
        os.makedirs(j.output_dir, exist_ok=True)
        workdir = tempfile.mkdtemp(prefix=f".{j.name}.", suffix=PART_SUFFIX, dir=j.output_dir)
        files = fn(j, workdir)
        real = os.path.realpath(workdir)
        outs = []
        for f in files:
            f = os.path.realpath(f)
            if os.path.dirname(f) != real or not os.path.isfile(f):
                raise PoolError(f"worker returned {f}, which is not a file directly in its workdir")
            outs.append(f)
        if not outs:
            raise PoolError("worker wrote no files")
        moved = []
        for f in outs:
            dst = os.path.join(j.output_dir, os.path.basename(f))
            size = os.path.getsize(f)
            os.replace(f, dst)
            moved.append({"file": os.path.basename(f), "bytes": size})
        res.seconds = time.perf_counter() - t0
        _write_json_atomic(marker_path(j), {
            "name": j.name, "input": os.path.abspath(j.input), "key": j.key, "outputs": moved,
            "seconds": round(res.seconds, 3), "host": res.host,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S"), "worker": worker_fn_path})
        res.ok, res.outputs = True, [os.path.join(j.output_dir, m["file"]) for m in moved]
    except Exception as ex:  # reported in the summary; the pool goes on
        res.error = _one_line(ex)
        if not isinstance(ex, (PoolError, OSError)) and os.environ.get("MOCAP_POOL_TRACEBACK"):
            res.error += "\n" + traceback.format_exc()
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
    res.seconds = time.perf_counter() - t0
    return dataclasses.asdict(res)


def _one_line(ex: BaseException) -> str:
    text = str(ex).strip() or type(ex).__name__
    name = type(ex).__name__
    return text if name in ("PoolError", "WorkerError") else f"{name}: {text}"


# --------------------------------------------------------------------------- the driver

def run_many(jobs: list, worker_fn_path: str, ray: str | None = None, workers: int | None = None,
             retries: int = 1, resume: bool = True, on_result: Callable | None = None,
             cpus_per_task: float = 1.0, gpus_per_task: float | None = None,
             sys_path: list | None = None) -> Summary:
    """Run ``worker_fn_path`` on every job; returns a Summary (results in job order).

    ray: None (local process pool of ``workers`` processes, default CPU count), "auto",
    "local" or a cluster address. retries: extra attempts for a failed job. resume: skip jobs
    with a valid done marker. on_result(JobResult, done_count, total) is called as results
    arrive (for progress lines). gpus_per_task: GPUs per Ray task (None: 1 when the cluster
    has GPUs, else 0). sys_path: folders the workers put first on sys.path (default: this
    checkout), so that ``worker_fn_path`` imports on any worker.
    """
    names = [j.name for j in jobs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise PoolError(f"two inputs would write the same outputs: {', '.join(dup)} "
                        "(rename one of them or convert them into different folders)")
    if retries < 0:
        raise PoolError("retries must be >= 0")
    resolve(worker_fn_path)      # fail early, on the driver, for a bad worker path
    sys_path = list(sys_path) if sys_path is not None else [_ROOT]
    t0 = time.perf_counter()
    results: dict[str, JobResult] = {}
    todo = []
    for j in jobs:
        clean_stale_parts(j.output_dir, [j.name])
        m = read_marker(j) if resume else None
        if m is not None:
            r = JobResult(j.name, j.input, ok=True, skipped=True, seconds=0.0,
                          outputs=[os.path.join(j.output_dir, o["file"]) for o in m["outputs"]],
                          host=m.get("host", ""))
            results[j.name] = r
            if on_result:
                on_result(r, len(results), len(jobs))
        else:
            todo.append(j)
    backend = "nothing to do"
    if todo:
        if ray:
            backend = _run_ray(todo, worker_fn_path, ray, retries, results, len(jobs), on_result,
                               cpus_per_task, gpus_per_task, sys_path)
        else:
            backend = _run_local(todo, worker_fn_path, workers, retries, results, len(jobs), on_result,
                                 sys_path)
    return Summary([results[n] for n in names], backend, time.perf_counter() - t0)


def _finish(r: JobResult, attempts: int, results, total, on_result):
    r.attempts = attempts
    results[r.name] = r
    if on_result:
        on_result(r, len(results), total)


def _run_local(todo, worker_fn_path, workers, retries, results, total, on_result, sys_path) -> str:
    workers = max(1, int(workers or os.cpu_count() or 1))
    workers = min(workers, len(todo))
    ctx = multiprocessing.get_context("spawn")
    attempts = {j.name: 0 for j in todo}
    # A pool process that dies (killed, out of memory, crashed in C) breaks the whole pool and
    # loses every job in flight, and nothing tells which job killed it. Such suspects are not
    # charged the attempt; they are re-run one at a time on a pool of their own, where a crash
    # is the job's own and counts. So a crashing input costs only itself.
    isolate: set[str] = set()
    start_checked = False
    pending = list(todo)
    while pending:
        alone = next((j for j in pending if j.name in isolate), None)
        if alone is not None:
            todo_now, pending = [alone], [j for j in pending if j is not alone]
        else:
            todo_now, pending = pending, []
        shared = alone is None and len(todo_now) > 1
        with cf.ProcessPoolExecutor(max_workers=1 if alone is not None else workers, mp_context=ctx) as pool:
            futs = {}

            def submit(j):
                try:
                    futs[pool.submit(run_job, dataclasses.asdict(j), worker_fn_path, sys_path)] = j
                    attempts[j.name] += 1
                except cf.process.BrokenProcessPool:
                    pending.append(j)

            for j in todo_now:
                submit(j)
            while futs:
                done, _ = cf.wait(list(futs), return_when=cf.FIRST_COMPLETED)
                for fut in done:
                    j = futs.pop(fut)
                    try:
                        r = JobResult(**fut.result())
                    except cf.process.BrokenProcessPool:
                        if not start_checked:      # once: can a pool process start at all?
                            start_checked = True
                            why = _start_error()
                            if why:
                                raise PoolError(f"pool worker processes die on start: {why}") from None
                        if shared:
                            attempts[j.name] -= 1       # a suspect, not yet known to be the culprit
                            isolate.add(j.name)
                            pending.append(j)
                            continue
                        if attempts[j.name] <= retries:
                            pending.append(j)           # again on a fresh pool of its own
                            continue
                        r = JobResult(j.name, j.input, ok=False, error="worker process died (killed, out of "
                                      "memory, or crashed outside Python: no error message)")
                    except Exception as ex:
                        r = JobResult(j.name, j.input, ok=False, error=_one_line(ex))
                    if r.ok or attempts[j.name] > retries:
                        _finish(r, attempts[j.name], results, total, on_result)
                    else:
                        submit(j)
    return f"local process pool ({workers} workers)"


# Replays a pool process's start (see _start_error); argv[1]: the module of the task function.
_START_CHECK = ("import importlib, pickle, sys\n"
                "from multiprocessing import spawn\n"
                "task_module = sys.argv[1]\n"
                "spawn.prepare(pickle.load(sys.stdin.buffer))\n"
                "importlib.import_module(task_module)\n")


def _start_error() -> str:
    """Why a new pool process dies on start, as one line ('' when it starts). A spawned process
    first re-imports the parent's ``__main__`` module, with the parent's sys.path and folder, then
    imports the task's module; an error there kills it before any task runs, and the pool only
    says 'terminated abruptly' (the traceback goes to stderr). This replays that start in a
    subprocess and keeps the error's last line."""
    from multiprocessing import spawn
    data = spawn.get_preparation_data("pool-start-check")
    data.pop("authkey", None)          # may not be pickled outside a real spawn; not needed here
    try:
        p = subprocess.run([spawn.get_executable(), "-c", _START_CHECK, run_job.__module__],
                           input=pickle.dumps(data), capture_output=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as ex:
        return f"cannot start {spawn.get_executable()}: {_one_line(ex)}"
    if p.returncode == 0:
        return ""
    lines = [ln.strip() for ln in p.stderr.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else f"exit status {p.returncode}"


def _ray_connect(ray_mod, address: str, sys_path) -> tuple[bool, str]:
    """Initialise Ray for ``address``; returns (we started it, description)."""
    if ray_mod.is_initialized():
        return False, "ray (session already open)"
    env = {k: v for k, v in os.environ.items() if k.startswith("MOCAP_")}   # the project's settings
    env["PYTHONPATH"] = os.pathsep.join(sys_path)
    kw = dict(include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        if address == "local":
            ray_mod.init(**kw)
            return True, "ray (local instance)"
        if address == "auto":
            try:
                ray_mod.init(address="auto", **kw)
                return True, "ray (cluster at auto)"
            except ConnectionError:
                ray_mod.init(**kw)
                return True, "ray (no running cluster found: local instance)"
        ray_mod.init(address=address, **kw)
        return True, f"ray (cluster at {address})"
    except Exception as ex:
        raise PoolError(f"cannot start or reach Ray ({address}): {_one_line(ex)}") from ex


def _run_ray(todo, worker_fn_path, address, retries, results, total, on_result, cpus_per_task,
             gpus_per_task, sys_path) -> str:
    try:
        import ray as ray_mod
    except ImportError as ex:
        raise PoolError("--ray needs the 'ray' package (pip install ray); without --ray a local "
                        "process pool is used") from ex
    started, desc = _ray_connect(ray_mod, address, sys_path)
    try:
        res = ray_mod.cluster_resources()
        gpus = gpus_per_task if gpus_per_task is not None else (1.0 if res.get("GPU", 0) > 0 else 0.0)
        task = ray_mod.remote(run_job).options(
            num_cpus=cpus_per_task, num_gpus=gpus,
            max_retries=retries,         # Ray re-runs a task whose worker or node died
            retry_exceptions=False)      # run_job never raises; failures come back as results
        attempts = {j.name: 0 for j in todo}
        refs = {}

        def submit(j):
            attempts[j.name] += 1
            refs[task.remote(dataclasses.asdict(j), worker_fn_path, sys_path)] = j

        for j in todo:
            submit(j)
        while refs:
            ready, _ = ray_mod.wait(list(refs), num_returns=1)
            for ref in ready:
                j = refs.pop(ref)
                try:
                    r = JobResult(**ray_mod.get(ref))
                except Exception as ex:   # worker/node lost beyond Ray's own retries
                    r = JobResult(j.name, j.input, ok=False, error=_one_line(ex).splitlines()[0])
                if r.ok or attempts[j.name] > retries:
                    _finish(r, attempts[j.name], results, total, on_result)
                else:
                    submit(j)
        nodes = sum(1 for n in ray_mod.nodes() if n.get("Alive"))
        return (f"{desc}, {nodes} node(s), {res.get('CPU', 0):g} CPU, {res.get('GPU', 0):g} GPU, "
                f"{gpus:g} GPU per task")
    finally:
        if started:
            ray_mod.shutdown()


# --------------------------------------------------------------------------- batch.py glue

_DROP = {"--input": True, "--pose-file": True, "--keypoints": True, "--output": True, "--ray": True, "--workers": True,
         "--retries": True, "--no-resume": False}


def passthrough_argv(argv: list) -> list:
    """The batch CLI arguments that apply to every input: ``argv`` without the input, output
    and scale-out options (``--opt value`` and ``--opt=value`` forms)."""
    out, i = [], 0
    while i < len(argv):
        a = argv[i]
        opt = a.split("=", 1)[0]
        if opt in _DROP:
            i += 1 if ("=" in a or not _DROP[opt]) else 2
            continue
        out.append(a)
        i += 1
    return out


def batch_jobs(items: list, output_dir: str, mode: str, argv: list) -> list:
    """Jobs for the batch CLI: mode "--input" (videos), "--pose-file" or "--keypoints"; argv: the
    CLI's args."""
    common = passthrough_argv(argv)
    return [Job(name=os.path.splitext(os.path.basename(it))[0], input=os.path.abspath(it),
                output_dir=os.path.abspath(output_dir),
                options={"mode": mode, "argv": common, "runner": _runner()})
            for it in items]


def _runner() -> list:
    """Command prefix that runs ``blender_mocap_addon.runner.batch``: this Python with ``-m`` under
    the bpy wheel or a plain Python ("{python}" is resolved on the worker), else Blender."""
    try:
        bpy = sys.modules.get("bpy")
        binary = bpy.app.binary_path if bpy is not None else ""
    except AttributeError:
        binary = ""
    if binary and os.path.basename(binary).lower().startswith("blender"):
        return [binary, "-b", "--factory-startup", "--python-exit-code", "1", "--python",
                os.path.join(_ROOT, "blender_mocap_addon", "batch.py"), "--"]
    return ["{python}", "-m", "blender_mocap_addon.runner.batch"]


class WorkerError(Exception):
    """The per-input batch subprocess failed."""


def batch_worker(job: Job, workdir: str) -> list:
    """Worker for ``run_many``: run the batch CLI on one input, writing into ``workdir``."""
    opts = job.options
    runner = [sys.executable if a == "{python}" else a for a in opts["runner"]]
    argv = runner + [opts["mode"], job.input, "--output", workdir] + list(opts["argv"])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([_ROOT] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    proc = subprocess.run(argv, cwd=_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, errors="replace")
    if proc.returncode != 0:
        raise WorkerError(_failure_text(proc.stderr, proc.stdout, proc.returncode))
    files = [os.path.join(workdir, f) for f in sorted(os.listdir(workdir))
             if os.path.isfile(os.path.join(workdir, f)) and not f.endswith(".part.npz")]
    if not files:
        raise WorkerError("batch finished but wrote no files")
    return files


def _failure_text(stderr: str, stdout: str, rc: int) -> str:
    lines = [ln.strip() for ln in (stderr or "").splitlines() if ln.strip()]
    own = [ln for ln in lines if ln.startswith("batch:")]
    if own:
        return own[-1].split(": ", 2)[-1] if own[-1].count(": ") >= 2 else own[-1]
    tail = lines[-3:] or [ln.strip() for ln in (stdout or "").splitlines() if ln.strip()][-3:]
    return f"exit status {rc}: " + " | ".join(tail)


def _print_result(r: JobResult, done: int, total: int) -> None:
    if r.skipped:
        print(f"[{done}/{total}] skip {r.name} (done before)", flush=True)
    elif r.ok:
        print(f"[{done}/{total}] ok   {r.name} {r.seconds:.1f} s, {len(r.outputs)} files"
              f"{' on ' + r.host if r.host else ''}", flush=True)
    else:
        print(f"[{done}/{total}] FAIL {r.name} after {r.attempts} attempt(s): {r.error}",
              file=sys.stderr, flush=True)


def batch_main(items: list, args, argv: list) -> int:
    """``blender_mocap_addon.runner.batch`` with ``--ray`` or ``--workers N``: one task per input.

    args: the batch CLI's parsed arguments (uses .output, .pose_file, .ray, .workers and,
    when present, .retries / .no_resume); argv: its raw arguments. Returns the exit status.
    """
    mode = ("--pose-file" if getattr(args, "pose_file", None) else
            "--keypoints" if getattr(args, "keypoints", None) else "--input")
    jobs = batch_jobs(items, args.output, mode, argv)
    try:
        summary = run_many(jobs, "blender_mocap_addon.runner.batch_pool:batch_worker",
                           ray=getattr(args, "ray", None), workers=getattr(args, "workers", None),
                           retries=int(getattr(args, "retries", 1)),
                           resume=not getattr(args, "no_resume", False), on_result=_print_result)
    except PoolError as ex:
        print(f"batch: {ex}", file=sys.stderr, flush=True)
        return 1
    print()
    print(summary.format(), flush=True)
    report = os.path.join(os.path.abspath(args.output), ".batch_summary.json")
    try:
        _write_json_atomic(report, summary.to_json())
    except OSError:
        pass
    return 0 if summary.ok else 1
