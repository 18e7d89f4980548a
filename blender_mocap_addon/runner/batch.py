"""Headless conversion: videos (or pose files) -> .blend / BVH / FBX / glTF.

Two ways to run it::

    blender -b --python-exit-code 1 --python blender_mocap_addon/runner/batch.py -- \
        --input VIDEO_OR_DIR --output DIR [--format blend,bvh,fbx,glb] [--preset balanced]
    python -m blender_mocap_addon.runner.batch --input VIDEO_OR_DIR --output DIR ...   # bpy wheel

``--pose-file FILE_OR_DIR`` imports existing pose files instead of running
inference (so does ``--input`` given a .npz file). ``--edits EDITS.json`` applies a track-edit
list (``core/track_edit.py``: delete, merge, split, swap_sides) to every pose file before
import; the .blend keeps the original data and the edits.  Inference runs as a subprocess (``python -m inference``): under the
bpy wheel with this interpreter, inside Blender with ``--python``, $MOCAP_PYTHON,
the checkout's .venv or Blender's Python, in that order.  A bad input is
reported on stderr and skipped; the summary lists every input, and the exit
status is 1 if any input failed (or none was found), else 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import traceback

if not __package__:
    # run by path (blender --python .../batch.py): make the checkout importable
    _ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

import bpy  # noqa: E402  (after the sys.path fix above)

from blender_mocap_addon.blender import export as export_bpy  # noqa: E402
from blender_mocap_addon.blender import import_posefile  # noqa: E402
from blender_mocap_addon.core import track_edit  # noqa: E402
from blender_mocap_addon.errors import MocapError  # noqa: E402
from blender_mocap_addon.runner import jobs  # noqa: E402

VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
FORMATS = ("blend",) + export_bpy.FORMATS


def _argv(argv):
    if argv is not None:
        return list(argv)
    if "--" in sys.argv:
        return sys.argv[sys.argv.index("--") + 1:]
    return [] if bpy.app.binary_path and not _is_wheel() else sys.argv[1:]


def _is_wheel() -> bool:
    """True under the bpy module (no Blender executable around this Python)."""
    return os.path.basename(sys.executable).lower().startswith("python") and \
        not os.path.basename(bpy.app.binary_path or "").lower().startswith("blender")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="batch", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="a video file or a folder of videos")
    src.add_argument("--pose-file", help="a pose file (.npz) or a folder of them (skips inference)")
    ap.add_argument("--output", required=True, help="output folder")
    ap.add_argument("--format", default="blend",
                    help=f"comma-separated subset of {','.join(FORMATS)} (default blend)")
    ap.add_argument("--preset", default="balanced", choices=("fast", "balanced", "accurate"))
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnx"),
                    help="what runs the networks: onnx (ONNX Runtime, CPU), torch, or auto (default: onnx "
                         "on the CPU when installed, else torch)")
    ap.add_argument("--max-people", type=int, default=0)
    ap.add_argument("--focal", type=float, default=0.0)
    ap.add_argument("--start", type=int, default=None)
    ap.add_argument("--end", type=int, default=None)
    ap.add_argument("--smoothing", type=float, default=None,
                    help="inference's temporal smoothing (0 off, 1 default, larger is smoother)")
    ap.add_argument("--import-smoothing", type=float, default=0.0,
                    help="extra Gaussian smoothing of joints on import (sigma, frames)")
    ap.add_argument("--no-floor", dest="use_floor", action="store_false",
                    help="import in camera coordinates even when the pose file has a floor")
    ap.add_argument("--no-foot-lock", dest="foot_lock", action="store_false",
                    help="do not lock feet during contacts (on by default when the pose file has contacts)")
    ap.add_argument("--edits", default=None, metavar="EDITS.json",
                    help="track edits applied before import (JSON list of {op: delete|merge|split|"
                         "swap_sides, person, ...}; see docs/addon.md)")
    ap.add_argument("--python", default=None, help="Python that runs inference")
    ap.add_argument("--project-root", default=None, help="folder containing inference/")
    ap.add_argument("--timeout", type=float, default=None, help="seconds per video")
    ap.add_argument("--ray", default=None, metavar="auto|ADDRESS",
                    help="one Ray task per input on a cluster (see docs/scale.md); resumes, retries")
    ap.add_argument("--workers", type=int, default=1,
                    help="N > 1: convert N inputs at once in a local process pool (resumes, retries)")
    args = ap.parse_args(_argv(argv))
    if args.input and args.input.lower().endswith(".npz") and not os.path.isdir(args.input):
        args.pose_file, args.input = args.input, None      # a pose file, not a video to decode
    fmts = [f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        ap.error(f"unknown format(s) {bad}; choose from {','.join(FORMATS)}")
    args.formats = fmts
    return args


def collect(path: str, exts) -> list:
    """Inputs under ``path``: the file itself, or the folder's files with ``exts``.

    A missing path is returned as is, so it is reported as a failed input.
    """
    if os.path.isdir(path):
        return [os.path.join(path, f) for f in sorted(os.listdir(path))
                if os.path.splitext(f)[1].lower() in exts and not f.startswith(".")]
    return [path]


def inference_python(args, root) -> str:
    if args.python:
        return args.python
    if os.environ.get("MOCAP_PYTHON"):
        return os.environ["MOCAP_PYTHON"]
    if _is_wheel():
        return sys.executable
    return jobs.default_python(root)


def _progress_printer(name):
    def show(job):
        print(f"  [{name}] {job.stage or 'inference'} {job.fraction * 100:5.1f}%"
              f"{' ' + job.message if job.message else ''}", flush=True)
    return show


def run_inference(video, out_path, args, python, root) -> str:
    if not os.path.isfile(video):
        raise MocapError(f"video not found: {video}")
    if root is None:
        raise MocapError("cannot find the project root (folder with inference/); pass --project-root")
    opts = jobs.InferenceOptions(preset=args.preset, device=args.device, runtime=args.runtime,
                                 max_people=args.max_people,
                                 focal=args.focal, start=args.start, end=args.end,
                                 smoothing=args.smoothing)
    tmp = out_path + ".part.npz"
    job = jobs.Job(jobs.inference_argv(python, video, tmp, opts), cwd=root).start()
    try:
        state = job.wait(timeout=args.timeout, on_progress=_progress_printer(os.path.basename(video)))
    except BaseException:
        job.cancel()
        raise
    finally:
        if job.state != jobs.FINISHED and os.path.exists(tmp):
            os.remove(tmp)
    if state != jobs.FINISHED:
        raise MocapError(f"inference failed on {video}: {job.error}")
    for w in job.warnings:
        print(f"  WARNING: inference: {w}", flush=True)
    if not os.path.isfile(tmp):
        raise MocapError(f"inference wrote no pose file for {video}")
    os.replace(tmp, out_path)
    return out_path


def convert_one(item, args, python, root) -> list:
    """One input -> output files; raises MocapError."""
    stem = os.path.splitext(os.path.basename(item))[0]
    os.makedirs(args.output, exist_ok=True)
    if args.pose_file:
        pose = item
    else:
        pose = run_inference(item, os.path.join(args.output, stem + ".npz"), args, python, root)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    opts = import_posefile.ImportOptions(smoothing=args.import_smoothing,
                                         add_camera=not args.pose_file,
                                         use_floor=args.use_floor, foot_lock=args.foot_lock,
                                         video_path="" if args.pose_file else os.path.abspath(item))
    show = lambda m: print("  " + m, flush=True)   # noqa: E731
    if args.edit_list:
        original = import_posefile.read_pose_file(pose)
        try:
            data, notes = track_edit.apply_all(original, args.edit_list)
        except track_edit.EditError as ex:
            raise MocapError(f"{args.edits}: {ex}") from ex
        for n in notes:
            show(n)
        res = import_posefile.load_data(data, stem, opts, report=show, pose_path=pose,
                                        edits=args.edit_list, original=original)
    else:
        res = import_posefile.load(pose, opts, report=show)
    objs = [bpy.data.objects[n] for n in res.armatures]
    written = []
    for fmt in args.formats:
        out = os.path.join(args.output, f"{stem}.{fmt}")
        if fmt == "blend":
            try:
                bpy.ops.wm.save_as_mainfile(filepath=out, copy=True)
            except RuntimeError as ex:
                raise MocapError(f"cannot save {out}: {ex}") from ex
            written.append(out)
        else:
            written += export_bpy.export(objs, out, fmt, report=lambda m: None)
    return written


def main(argv=None) -> int:
    args = parse_args(argv)
    args.edit_list = None
    if args.edits:
        args.edits = os.path.abspath(args.edits)        # pool workers run in the checkout
        try:
            args.edit_list = track_edit.load_edits(args.edits)
        except track_edit.EditError as ex:
            print(f"batch: {ex}", file=sys.stderr)
            return 1
    root = jobs.locate_engine(args.project_root)[0]     # given, around the checkout, or install_deps' record
    python = inference_python(args, root)
    if args.pose_file:
        items = collect(args.pose_file, {".npz"})
    else:
        items = collect(args.input, VIDEO_EXTS)
    if not items:
        print(f"batch: no inputs found in {args.pose_file or args.input}", file=sys.stderr)
        return 1
    if args.ray or args.workers > 1:   # scale-out: one task per input (batch_pool.py)
        from blender_mocap_addon.runner import batch_pool
        return batch_pool.batch_main(items, args, _argv(argv))
    results = []
    for i, item in enumerate(items, 1):
        print(f"[{i}/{len(items)}] {item}", flush=True)
        t0 = time.perf_counter()
        try:
            files = convert_one(item, args, python, root)
            results.append((item, True, f"{len(files)} files", time.perf_counter() - t0))
            for f in files:
                print(f"  wrote {f}", flush=True)
        except MocapError as ex:
            print(f"batch: {item}: {ex}", file=sys.stderr, flush=True)
            results.append((item, False, str(ex), time.perf_counter() - t0))
        except Exception as ex:   # an unexpected bug: still go on with the next input
            traceback.print_exc()
            print(f"batch: {item}: unexpected {type(ex).__name__}: {ex}", file=sys.stderr, flush=True)
            results.append((item, False, f"{type(ex).__name__}: {ex}", time.perf_counter() - t0))
    failed = [r for r in results if not r[1]]
    print("\nsummary")
    for item, ok, msg, dt in results:
        print(f"  {'OK  ' if ok else 'FAIL'} {dt:7.1f} s  {os.path.basename(item)}: {msg}")
    print(f"{len(results) - len(failed)} converted, {len(failed)} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
