"""Headless conversion: videos (or pose files, or 2D keypoint files) -> .blend / BVH / FBX / glTF.

Two ways to run it::

    blender -b --python-exit-code 1 --python blender_mocap_addon/runner/batch.py -- \
        --input VIDEO_OR_DIR --output DIR [--format blend,bvh,fbx,glb] [--preset balanced]
    python -m blender_mocap_addon.runner.batch --input VIDEO_OR_DIR --output DIR ...   # bpy wheel

``--pose-file FILE_OR_DIR`` imports existing pose files instead of running
inference (so does ``--input`` given a .npz file). ``--edits EDITS.json`` applies a track-edit
list (``core/track_edit.py``: delete, merge, split, swap_sides) to every pose file before
import; the .blend keeps the original data and the edits. ``--keypoints FILE_OR_DIR`` lifts
another detector's 2D (docs/keypoints.md; so does ``--input`` given a .json / .csv file or a
folder of OpenPose ``*_keypoints.json``): an OpenPose folder, a COCO results .json or a
.npz / .csv table is one input, a folder of them one input each; ``--video``, ``--fps``,
``--image-size`` and ``--keypoint-format`` are passed to the engine as the panel does.  Inference runs as a subprocess (``python -m inference``): under the
bpy wheel with this interpreter, inside Blender with ``--python``, $MOCAP_PYTHON,
the checkout's .venv or Blender's Python, in that order.  A bad input is
reported on stderr and skipped; the summary lists every input, and the exit
status is 1 if any input failed (or none was found), else 0.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
import traceback

if not __package__:
    # run by path (blender --python .../batch.py): make the checkout importable
    _ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

# No bpy at import time: with --workers N, multiprocessing (spawn) re-imports this script in
# every pool process, with the parent's sys.path. Once the bpy wheel is loaded that path puts
# Blender's scripts/modules first, whose bpy package needs the wheel's _bpy: a module-level
# `import bpy` here kills each pool process on start ("No module named '_bpy'"). So Blender is
# imported only where a conversion runs; pool processes only start batch subprocesses.
from blender_mocap_addon.core import track_edit  # noqa: E402
from blender_mocap_addon.errors import MocapError  # noqa: E402
from blender_mocap_addon.runner import jobs  # noqa: E402

VIDEO_EXTS = {".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv"}
EXPORT_FORMATS = ("bvh", "fbx", "glb")     # blender/export.py's FORMATS (a test keeps them equal)
FORMATS = ("blend",) + EXPORT_FORMATS
KEYPOINT_EXTS = {".json", ".csv", ".npz"}
KEYPOINT_FORMATS = ("auto", "openpose", "coco", "table")
_OPENPOSE = re.compile(r"_keypoints\.json$", re.IGNORECASE)


def _argv(argv):
    if argv is not None:
        return list(argv)
    if "--" in sys.argv:
        return sys.argv[sys.argv.index("--") + 1:]
    return [] if _binary_path() and not _is_wheel() else sys.argv[1:]


def _binary_path() -> str:
    """Blender's executable when bpy is loaded (inside Blender it is before any script runs)."""
    bpy = sys.modules.get("bpy")
    return getattr(getattr(bpy, "app", None), "binary_path", "") or ""


def _is_wheel() -> bool:
    """True under the bpy module (no Blender executable around this Python)."""
    return os.path.basename(sys.executable).lower().startswith("python") and \
        not os.path.basename(_binary_path()).lower().startswith("blender")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(prog="batch", description=__doc__.split("\n\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--input", help="a video file or a folder of videos")
    src.add_argument("--pose-file", help="a pose file (.npz) or a folder of them (skips inference)")
    src.add_argument("--keypoints", help="2D keypoints: an OpenPose folder (or one of its *_keypoints.json), "
                                         "a COCO results .json, a .npz / .csv table, or a folder of them")
    ap.add_argument("--output", required=True, help="output folder")
    ap.add_argument("--format", default="blend",
                    help=f"comma-separated subset of {','.join(FORMATS)} (default blend)")
    ap.add_argument("--preset", default="balanced", choices=("fast", "balanced", "accurate"))
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--runtime", default="auto", choices=("auto", "torch", "onnx", "onnx-int8"),
                    help="what runs the networks: onnx (ONNX Runtime, CPU), onnx-int8 (as onnx, with the "
                         "int8 balanced pose network), torch, or auto (default: onnx on the CPU when "
                         "installed, else torch)")
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
    ap.add_argument("--keypoint-format", default="auto", choices=KEYPOINT_FORMATS,
                    help="the keypoint files' format (default: from the path and contents)")
    ap.add_argument("--video", default=None, help="with --keypoints: the clip they came from (size, "
                                                  "frame rate, frame count; camera background)")
    ap.add_argument("--fps", type=float, default=0.0, help="with --keypoints: frame rate when neither "
                                                           "the video nor the file says")
    ap.add_argument("--image-size", default=None, metavar="WxH",
                    help="with --keypoints: picture size when neither the video nor the file says")
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
    elif args.input and (os.path.splitext(args.input)[1].lower() in (".json", ".csv")
                         or _openpose_folder(args.input)):
        args.keypoints, args.input = args.input, None      # keypoints, not videos
    fmts = [f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()]
    bad = [f for f in fmts if f not in FORMATS]
    if bad or not fmts:
        ap.error(f"unknown format(s) {bad}; choose from {','.join(FORMATS)}")
    args.formats = fmts
    return args


def _openpose_folder(path: str) -> bool:
    return os.path.isdir(path) and any(_OPENPOSE.search(f) for f in os.listdir(path))


def collect_keypoints(path: str) -> list:
    """Keypoint inputs under ``path``: one OpenPose frame file stands for its folder, an OpenPose
    folder and any other file are one input; another folder gives its .json / .csv / .npz files
    and its OpenPose subfolders, one input each. A missing path is returned as is."""
    if os.path.isfile(path) and _OPENPOSE.search(path):
        return [os.path.dirname(os.path.abspath(path))]
    if not os.path.isdir(path) or _openpose_folder(path):
        return [os.path.normpath(path)]
    out = []
    for f in sorted(os.listdir(path)):
        full = os.path.join(path, f)
        if f.startswith("."):
            continue
        if _openpose_folder(full) or (os.path.isfile(full) and os.path.splitext(f)[1].lower() in KEYPOINT_EXTS):
            out.append(full)
    return out


def keypoint_options(args) -> jobs.KeypointJobOptions:
    """The engine's keypoint options from the batch arguments; raises MocapError (one line) for
    options that cannot go with keypoints or do not parse."""
    if args.start is not None or args.end is not None:
        raise MocapError("--start / --end cut a video; a keypoint run takes the file's frames as they are")
    w = h = 0
    if args.image_size:
        m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", args.image_size)
        if not m or int(m.group(1)) <= 0 or int(m.group(2)) <= 0:
            raise MocapError(f"--image-size must be WIDTHxHEIGHT in pixels (e.g. 1920x1080), got {args.image_size!r}")
        w, h = int(m.group(1)), int(m.group(2))
    if args.fps < 0 or args.fps != args.fps:
        raise MocapError(f"--fps must be > 0, got {args.fps}")
    video = os.path.abspath(args.video) if args.video else ""
    if video and not os.path.isfile(video):
        raise MocapError(f"video not found: {args.video}")
    return jobs.KeypointJobOptions(video=video, fps=args.fps, width=w, height=h, format=args.keypoint_format,
                                   smoothing=args.smoothing, max_people=args.max_people)


#: Options naming a file or folder that every input uses: pool workers run in the checkout,
#: so a relative path must be made absolute before it is passed on.
PATH_OPTIONS = ("--video", "--edits", "--project-root", "--python")


def absolute_paths(argv: list) -> list:
    """``argv`` with the values of PATH_OPTIONS made absolute (``--opt v`` and ``--opt=v``)."""
    out, take = [], False
    for a in argv:
        opt, eq, value = a.partition("=")
        if take:
            out.append(os.path.abspath(a) if os.path.exists(a) else a)
            take = False
        elif opt in PATH_OPTIONS and eq:
            out.append(f"{opt}={os.path.abspath(value) if os.path.exists(value) else value}")
        else:
            out.append(a)
            take = a in PATH_OPTIONS
    return out


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


def _run_engine(make_argv, source, out_path, args, root) -> str:
    """Run the engine (``make_argv(tmp)``) on ``source`` into ``out_path`` via a temporary
    file: a failed run leaves nothing behind."""
    if root is None:
        raise MocapError("cannot find the project root (folder with inference/); pass --project-root")
    tmp = out_path + ".part.npz"
    job = jobs.Job(make_argv(tmp), cwd=root).start()
    try:
        state = job.wait(timeout=args.timeout, on_progress=_progress_printer(os.path.basename(source)))
    except BaseException:
        job.cancel()
        raise
    finally:
        if job.state != jobs.FINISHED and os.path.exists(tmp):
            os.remove(tmp)
    if state != jobs.FINISHED:
        raise MocapError(f"inference failed on {source}: {job.error}")
    for w in job.warnings:
        print(f"  WARNING: inference: {w}", flush=True)
    if not os.path.isfile(tmp):
        raise MocapError(f"inference wrote no pose file for {source}")
    os.replace(tmp, out_path)
    return out_path


def run_inference(video, out_path, args, python, root) -> str:
    if not os.path.isfile(video):
        raise MocapError(f"video not found: {video}")
    opts = jobs.InferenceOptions(preset=args.preset, device=args.device, runtime=args.runtime,
                                 max_people=args.max_people,
                                 focal=args.focal, start=args.start, end=args.end,
                                 smoothing=args.smoothing)
    return _run_engine(lambda tmp: jobs.inference_argv(python, video, tmp, opts), video, out_path, args, root)


def run_keypoints(source, out_path, args, python, root) -> str:
    """A keypoint file (or OpenPose folder) -> pose file at ``out_path``."""
    if not os.path.exists(source):
        raise MocapError(f"keypoint file not found: {source}")
    opts = keypoint_options(args)
    return _run_engine(lambda tmp: jobs.keypoints_argv(python, source, tmp, opts), source, out_path, args, root)


def _pose_path(item, args) -> str:
    """Where an engine run on ``item`` writes its pose file (never over the input itself)."""
    stem = os.path.splitext(os.path.basename(os.path.normpath(item)))[0]
    out = os.path.join(args.output, stem + ".npz")
    if os.path.abspath(out) == os.path.abspath(item):      # a .npz keypoint table in the output folder
        out = os.path.join(args.output, stem + "_mocap.npz")
    return out


def convert_one(item, args, python, root) -> list:
    """One input -> output files; raises MocapError."""
    import bpy
    from blender_mocap_addon.blender import export as export_bpy
    from blender_mocap_addon.blender import import_posefile
    stem = os.path.splitext(os.path.basename(os.path.normpath(item)))[0]
    os.makedirs(args.output, exist_ok=True)
    video = ""
    if args.pose_file:
        pose = item
    elif args.keypoints:
        pose = run_keypoints(item, _pose_path(item, args), args, python, root)
        video = os.path.abspath(args.video) if args.video else ""
    else:
        pose = run_inference(item, _pose_path(item, args), args, python, root)
        video = os.path.abspath(item)
    bpy.ops.wm.read_factory_settings(use_empty=True)
    opts = import_posefile.ImportOptions(smoothing=args.import_smoothing,
                                         add_camera=bool(video),
                                         use_floor=args.use_floor, foot_lock=args.foot_lock,
                                         video_path=video)
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
    elif args.keypoints:
        items = collect_keypoints(args.keypoints)
    else:
        items = collect(args.input, VIDEO_EXTS)
    if not items:
        print(f"batch: no inputs found in {args.pose_file or args.keypoints or args.input}", file=sys.stderr)
        return 1
    if args.keypoints:       # options that cannot apply: one line before anything runs
        try:
            keypoint_options(args)
            if args.video and len(items) > 1:
                raise MocapError(f"--video names one clip, but {args.keypoints} holds {len(items)} keypoint "
                                 "inputs; convert them one at a time")
        except MocapError as ex:
            print(f"batch: {ex}", file=sys.stderr)
            return 1
    elif args.video or args.fps or args.image_size or args.keypoint_format != "auto":
        print("batch: --video, --fps, --image-size and --keypoint-format go with --keypoints", file=sys.stderr)
        return 1
    if args.ray or args.workers > 1:   # scale-out: one task per input (batch_pool.py)
        from blender_mocap_addon.runner import batch_pool
        return batch_pool.batch_main(items, args, absolute_paths(_argv(argv)))
    try:
        import bpy  # noqa: F401  (the bpy wheel, or Blender's own when run inside Blender)
    except ImportError as ex:
        print(f"batch: converting needs Blender's bpy module ({ex}); pip install bpy==5.0.1, or run "
              "this script with blender -b --python", file=sys.stderr)
        return 1
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
