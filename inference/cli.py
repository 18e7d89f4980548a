"""Command line: video -> pose file.

    python -m inference VIDEO -o out.npz [--preset fast|balanced|accurate] [--device auto|cpu|cuda]
        [--runtime auto|torch|onnx] [--flip-test] [--max-people N] [--focal PX] [--start N] [--end N] [--weights DIR]
        [--progress bar|jsonl|none] [--smoothing F] [--initial-boxes CX,CY,SIZE[;CX,CY,SIZE...]]
        [--detection-threshold T] [--start-score S] [--dump-keypoints FILE.npz]
    python -m inference --keypoints FILE [VIDEO] -o out.npz [--format auto|openpose|coco|table]
        [--fps F] [--image-size WxH] [--joint-set ...] [--coco-images JSON] [--frame-regex RE]

With --keypoints the 2D comes from another detector's file (docs/keypoints.md) instead of the pose
network; everything after the 2D is the video run's, and so is the pose file.

VIDEO is a video file, a folder of images (natural order) or one image. ``--progress jsonl``
prints one JSON object per line to stdout, {"frame", "total", "fps", "eta"}, and a last one
with "done": true, "output", "people" and "warnings" (what the Blender add-on reads); the bar
(the default on a terminal) and all messages go to stderr.

Exit status: 0 done; 1 the run failed (bad input, missing weights; the message says why);
2 bad command line; 130 interrupted (Ctrl-C or SIGTERM). The pose file is written in one step
at the end, so a failed or interrupted run leaves no file behind.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import threading
import time

from inference.core.camera import DEFAULT_FOV_DEG
from inference.errors import Cancelled, InferenceError
from inference.core.keypoint_formats import JOINT_SETS
from inference.models.runtime import RUNTIMES
from inference.pipeline import DEFAULT_PRESET, KeypointOptions, PipelineOptions, PRESETS, run, run_keypoints

KEYPOINT_FORMATS = ("auto", "openpose", "coco", "table")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def parse_boxes(text: str) -> list[tuple[float, float, float]]:
    """'CX,CY,SIZE[;CX,CY,SIZE...]' (pixels) -> [(cx, cy, size), ...]; argparse.ArgumentTypeError
    when an item is not three finite numbers with SIZE > 0."""
    boxes = []
    items = [t.strip() for t in text.split(";")]
    if not any(items):
        raise argparse.ArgumentTypeError("expected CX,CY,SIZE[;CX,CY,SIZE...], got nothing")
    for item in items:
        if not item:
            continue            # tolerate a trailing ';'
        parts = [t.strip() for t in item.split(",")]
        try:
            vals = [float(t) for t in parts]
        except ValueError:
            vals = []
        if len(vals) != 3 or not all(math.isfinite(v) for v in vals):
            raise argparse.ArgumentTypeError(
                f"box {item!r} is not CX,CY,SIZE (three numbers, pixels; boxes separated by ';')")
        if vals[2] <= 0:
            raise argparse.ArgumentTypeError(f"box {item!r}: SIZE must be > 0 pixels")
        boxes.append((vals[0], vals[1], vals[2]))
    return boxes


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m inference",
                                description="Markerless motion capture: a video in, a pose file (.npz) out.")
    p.add_argument("video", nargs="?", default=None,
                   help="video file, folder of images, or one image (with --keypoints: optional, the clip "
                        "the keypoints came from, for its size, frame rate and frame count)")
    p.add_argument("-o", "--output", required=True, help="pose file to write (.npz)")
    p.add_argument("--preset", choices=PRESETS, default=DEFAULT_PRESET,
                   help="balanced (default): a wider pose network, the most accurate shipped one, about 28 "
                        "frames/s on 2 CPU cores; fast: the smallest networks, about 36 frames/s; accurate: "
                        "8-stack networks (GPU, not shipped yet)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--runtime", choices=RUNTIMES, default=None,
                   help="what runs the networks: onnx (ONNX Runtime, CPU), onnx-int8 (as onnx, with the shipped "
                        "int8 balanced pose network: its pose stage about 1.5x faster on 2 cores, up to about a point "
                        "lower PCK end to end; docs/runtime.md), torch "
                        "(PyTorch), or auto (onnx on the CPU when onnxruntime is installed, else torch); "
                        "default: $MOCAP_RUNTIME, else auto")
    p.add_argument("--flip-test", action=argparse.BooleanOptionalAction, default=None,
                   help="also run the pose network on mirrored crops and average (about 2x the pose cost, "
                        "+1.5 points PCK for the fast network; default: on for accurate only)")
    p.add_argument("--max-people", type=int, default=10, metavar="N", help="most people per frame (default 10)")
    p.add_argument("--focal", type=float, default=None, metavar="PX",
                   help=f"focal length in pixels (default: from a {DEFAULT_FOV_DEG:g} degree field of view across the "
                        "image's long side)")
    p.add_argument("--start", type=int, default=0, metavar="N", help="first frame (default 0)")
    p.add_argument("--end", type=int, default=None, metavar="N", help="stop before this frame (default: the end)")
    p.add_argument("--weights", default=None, metavar="DIR", help="folder with the weights manifests (default: weights/)")
    p.add_argument("--progress", choices=["bar", "jsonl", "none"], default=None,
                   help="progress on stderr as a bar (default on a terminal), JSON lines on stdout, or none")
    p.add_argument("--smoothing", type=float, default=1.0, metavar="F",
                   help="temporal smoothing strength: 0 off, 1 default, larger is smoother")
    p.add_argument("--initial-boxes", type=parse_boxes, default=None, metavar="CX,CY,SIZE[;...]",
                   help="people to follow from the first frame, in addition to what the detector finds: "
                        "centre and size (longer side of the person, pixels) of each, separated by ';' "
                        "(quote the list in a shell)")
    p.add_argument("--fallback-detector", choices=["hog", "none"], default="hog",
                   help="hog (default): OpenCV's HOG people detector adds upright people the learned "
                        "detector misses; none: the learned detector only")
    p.add_argument("--fallback-every", type=float, default=1.0, metavar="SECONDS",
                   help="while people are tracked, run the fallback detector at most this often "
                        "(default 1 s of video; it always runs while nobody is tracked)")
    p.add_argument("--detection-threshold", type=float, default=None, metavar="T",
                   help="least centre score (0..1) of a learned detection (default: the detector weights' "
                        "own, chosen for F1 on held-out frames); lower finds more people, and more ghosts")
    p.add_argument("--start-score", type=float, default=None, metavar="S",
                   help="least mean joint score (0..1) of a pose that starts a new track (default: the "
                        "pose weights' own gate, measured on held-out people vs background)")
    p.add_argument("--stitch-gap", type=float, default=1.0, metavar="SECONDS",
                   help="join a person's track that broke (lost for a moment) with the track that picks "
                        "them up again within this long (default 1 s; 0: off)")
    p.add_argument("--stitch-edge-gap", type=float, default=1.5, metavar="SECONDS",
                   help="keep one id for a person who leaves over the left or right edge of the picture "
                        "and comes back on that side within this long (default 1.5 s; 0: off)")
    p.add_argument("--keep-unconfirmed", action="store_true",
                   help="also write tracks that were never confirmed as a person (by default a track "
                        "is written only when enough of its poses score like a person)")
    p.add_argument("--floor", action=argparse.BooleanOptionalAction, default=True,
                   help="estimate the floor from everyone's feet (static camera): root depths from it, foot "
                        "contacts and the camera's pose above the floor in the pose file (default: on; "
                        "--no-floor: camera coordinates only)")
    k = p.add_argument_group("keypoint files (docs/keypoints.md)",
                             "Lift another detector's 2D instead of running the pose network: the same "
                             "tracking, lifting, floor and smoothing, the same pose file.")
    k.add_argument("--keypoints", default=None, metavar="FILE",
                   help="a folder of OpenPose *_keypoints.json (BODY_25 or COCO-18), a COCO keypoint results "
                        ".json (MMPose, Detectron2, YOLO-pose), or a .npz / .csv table of frame, person, joint, "
                        "x, y, score")
    k.add_argument("--format", choices=KEYPOINT_FORMATS, default="auto",
                   help="the keypoint file's format (default: from the path and contents)")
    k.add_argument("--joint-set", choices=tuple(JOINT_SETS), default=None,
                   help="joints of a .npz / .csv table (default: ours, the pose file's 16)")
    k.add_argument("--fps", type=float, default=None, metavar="F",
                   help="frame rate, when neither the video nor the keypoint file gives it")
    k.add_argument("--image-size", type=parse_size, default=None, metavar="WxH",
                   help="picture size in pixels, when neither the video nor the keypoint file gives it")
    k.add_argument("--coco-images", default=None, metavar="JSON",
                   help="COCO results: a JSON with an 'images' list (id, file_name); each result's frame is "
                        "the number in its image's file name (default: image_id is the frame index)")
    k.add_argument("--frame-regex", default=None, metavar="RE",
                   help="with --coco-images: the frame number's pattern in file_name (first group; default: "
                        "the last number)")
    k.add_argument("--raw-scores", action="store_true",
                   help="give the file's joint scores to the lifter as they are (default: through the "
                        "preset's pose-network score calibration, the convention of the engine's own 2D)")
    p.add_argument("--dump-keypoints", default=None, metavar="FILE.npz",
                   help="video runs: also write the 2D tracks that were lifted as a keypoint table "
                        "(--keypoints reads it back)")
    return p


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' -> (W, H) pixels, both > 0."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        w, h = (int(t) for t in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WxH (e.g. 1920x1080)") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: width and height must be > 0")
    return w, h


class Bar:
    """A one-line progress bar on stderr."""

    def __init__(self, stream=sys.stderr, width: int = 30):
        self.stream, self.width = stream, width

    def __call__(self, u: dict) -> None:
        total = max(int(u.get("total") or 0), 1)
        frac = min(max(u["frame"] / total, 0.0), 1.0)
        n = int(round(frac * self.width))
        eta = u.get("eta")
        eta_s = "--:--" if eta is None else f"{int(eta) // 60:d}:{int(eta) % 60:02d}"
        self.stream.write(f"\r[{'#' * n}{'.' * (self.width - n)}] {u['frame']}/{total} frames "
                          f"{u.get('fps') or 0:6.1f} fps  ETA {eta_s} ")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()


def _jsonl(u: dict) -> None:
    sys.stdout.write(json.dumps(u) + "\n")
    sys.stdout.flush()


def main(argv=None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse exits 2 on a bad command line, 0 on --help
        return int(e.code or 0)
    mode = args.progress or ("bar" if sys.stderr.isatty() else "none")
    if args.video is None and args.keypoints is None:
        print("error: give a video (or --keypoints FILE)", file=sys.stderr)
        return EXIT_USAGE
    if args.dump_keypoints and args.keypoints:
        print("error: --dump-keypoints writes a video run's 2D; it does not go with --keypoints", file=sys.stderr)
        return EXIT_USAGE
    out = os.path.abspath(args.output)
    for path in (out, os.path.abspath(args.dump_keypoints or out)):
        if not os.path.isdir(os.path.dirname(path)):
            print(f"error: the output folder {os.path.dirname(path)} does not exist", file=sys.stderr)
            return EXIT_FAILED
    if os.path.isdir(out):
        print(f"error: the output {out} is a folder; give a file name like out.npz", file=sys.stderr)
        return EXIT_FAILED

    cancel = threading.Event()
    old_term = signal.signal(signal.SIGTERM, lambda *_: cancel.set()) if threading.current_thread() is threading.main_thread() else None
    bar = Bar() if mode == "bar" else None
    progress = bar if bar else (_jsonl if mode == "jsonl" else None)
    t0 = time.perf_counter()
    try:
        opts = PipelineOptions(preset=args.preset, device=args.device, max_people=args.max_people,
                               focal=args.focal, start=args.start, end=args.end, weights_dir=args.weights,
                               smoothing=args.smoothing, initial_boxes=args.initial_boxes,
                               fallback_detector=args.fallback_detector,
                               fallback_every_s=args.fallback_every, start_pose_score=args.start_score,
                               detection_threshold=args.detection_threshold, flip_test=args.flip_test,
                               stitch_gap_s=args.stitch_gap, stitch_edge_gap_s=args.stitch_edge_gap,
                               verify_people=not args.keep_unconfirmed,
                               floor=args.floor)
        if args.runtime is not None:
            opts.runtime = args.runtime
        if args.keypoints is not None:
            opts.fps = args.fps
            kpo = KeypointOptions(format=args.format, joint_set=args.joint_set, images=args.coco_images,
                                  frame_regex=args.frame_regex, video=args.video, image_size=args.image_size,
                                  calibrate_scores=not args.raw_scores)
            result = run_keypoints(args.keypoints, opts, kpo)
        else:
            result = run(args.video, opts, progress=progress, cancel=cancel)
        if cancel.is_set():
            raise Cancelled("cancelled")
        result.save(out)
        if args.dump_keypoints:
            from inference.stages.keypoints import write_keypoint_table

            write_keypoint_table(args.dump_keypoints, result.tracks, int(result.meta.get("frame_start", 0)),
                                 result.num_frames, result.fps, result.image_size)
    except Cancelled:
        if bar:
            bar.close()
        print("interrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except KeyboardInterrupt:
        if bar:
            bar.close()
        print("interrupted: nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except InferenceError as e:
        if bar:
            bar.close()
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    if bar:
        bar.close()
    secs = time.perf_counter() - t0
    if mode == "jsonl":
        _jsonl({"frame": result.num_frames, "total": result.num_frames, "fps": result.stats.get("fps_processing"),
                "eta": 0.0, "done": True, "output": out, "people": result.num_people, "warnings": result.warnings})
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {out}: {result.num_people} people, {result.num_frames} frames in {secs:.1f} s "
          f"({result.num_frames / max(secs, 1e-9):.1f} fps overall)", file=sys.stderr)
    if (os.environ.get("OMP_WAIT_POLICY", "").upper() == "PASSIVE" and args.device != "cuda"
            and result.meta.get("runtime", {}).get("pose") == "torch"):   # ONNX Runtime does not read it
        print("note: OMP_WAIT_POLICY=PASSIVE is set; it slows the networks on the CPU about 2.5x "
              "(unset it for full speed)", file=sys.stderr)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
