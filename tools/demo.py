"""The demo: the bundled sample video -> everything the project makes from it.

    .venv/bin/python tools/demo.py [--video examples/sports2d_demo.mp4] [--out out] [--name sample]
        [--preset balanced] [--device auto] [--weights DIR] [--formats blend,bvh]

writes, in --out:
    sample.npz                the pose file (contract v1)
    sample.blend, sample.bvh  one animated armature per person (Blender, via blender_mocap_addon.runner.batch;
                              with several people BVH holds one skeleton per file: sample_Mocap_P<id>.bvh)
    sample_overlay.mp4        the video with 2D skeletons and track ids
    sample_preview.png        a grid of 3D frames
    sample_trajectories.png   a few joints over time, raw (lifted) vs smoothed
    sample_card.jpg           one overlay frame beside its 3D pose (the README picture; --card PATH
                              writes it elsewhere too)
    sample_demo.json          what was run, timings and counts

Inference runs once in this process (``inference.viz.preview.raw_and_smoothed``: one raw run plus the
pipeline's own filters, so the trajectory plot shows exactly what the pose file got); Blender runs
as ``python -m blender_mocap_addon.runner.batch --pose-file ...`` in a subprocess. Exit status 0 when
every file was written, 1 otherwise (the message says what failed).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
from inference.errors import InferenceError  # noqa: E402  (after ROOT is on sys.path)
from inference.pipeline import DEFAULT_PRESET, PipelineOptions, PRESETS  # noqa: E402
from inference.stages.video import FrameReader  # noqa: E402
from inference.viz import overlay, preview  # noqa: E402
import posefile  # noqa: E402
DEFAULT_VIDEO = os.path.join(ROOT, "examples", "sports2d_demo.mp4")


def _say(msg: str) -> None:
    print(f"[demo] {msg}", flush=True)


def result_card(video: str, result, frame: int, out_path: str, height: int = 540) -> str:
    """One overlay frame beside the 3D pose of the same frame, side by side -> out_path (JPEG).
    result: PoseResult / PoseData; frame: pose-file frame index."""
    start = overlay.frame_start(result.meta)
    with FrameReader(video, start=start + frame, end=start + frame + 1) as reader:
        _, img = next(iter(reader))
    overlay.draw_people(img, result.joints2d[:, frame], result.scores[:, frame], result.valid[:, frame],
                        result.person_ids)
    s = height / img.shape[0]
    img = cv2.resize(img, (int(round(img.shape[1] * s)), height), interpolation=cv2.INTER_AREA)
    tmp_png = out_path + ".3d.png"
    try:
        preview.preview_grid(result.joints3d, result.valid, result.person_ids, tmp_png, cols=1,
                             frames=[frame], fps=result.fps, dpi=100, elev=10, azim=-80)
        p3 = cv2.imread(tmp_png)
    finally:
        if os.path.exists(tmp_png):
            os.unlink(tmp_png)
    p3 = cv2.resize(p3, (int(round(p3.shape[1] * height / p3.shape[0])), height), interpolation=cv2.INTER_AREA)
    card = np.hstack([img, p3])
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    if not cv2.imwrite(out_path, card, [cv2.IMWRITE_JPEG_QUALITY, 85]):
        raise OSError(f"cannot write {out_path}")
    return out_path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="tools/demo.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", default=DEFAULT_VIDEO)
    ap.add_argument("--out", default=os.path.join(ROOT, "out"))
    ap.add_argument("--name", default="sample", help="stem of the output files (default sample)")
    ap.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS)
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    ap.add_argument("--weights", default=None, help="weights folder (default weights/)")
    ap.add_argument("--max-people", type=int, default=10)
    ap.add_argument("--end", type=int, default=None, help="stop before this frame (default: whole video)")
    ap.add_argument("--initial-boxes", default=None, metavar="CX,CY,S;...",
                    help="people to follow from the first frame (pixels: centre x, centre y, size), in "
                         "addition to what the detector finds (PipelineOptions.initial_boxes)")
    ap.add_argument("--formats", default="blend,bvh", help="Blender outputs (batch.py --format)")
    ap.add_argument("--overlay-width", type=int, default=960, help="overlay video width (px)")
    ap.add_argument("--card", default=None, help="also write the result picture here")
    ap.add_argument("--no-blender", action="store_true", help="skip the .blend/.bvh step")
    ap.add_argument("--record", action="store_true",
                    help="also write the jitter and timings to docs/results/bench/demo.json (for evaluation.report)")
    args = ap.parse_args(argv)

    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    stem = os.path.join(out, args.name)
    times, files = {}, []
    t0 = time.perf_counter()
    boxes = None
    if args.initial_boxes:
        try:
            boxes = [tuple(float(v) for v in b.split(",")) for b in args.initial_boxes.split(";") if b.strip()]
        except ValueError:
            ap.error("--initial-boxes wants CX,CY,S;CX,CY,S;... in pixels")
    opts = PipelineOptions(preset=args.preset, device=args.device, weights_dir=args.weights,
                           max_people=args.max_people, end=args.end, initial_boxes=boxes)
    last = [0.0]

    def progress(u):
        now = time.perf_counter()
        if now - last[0] > 2.0 or u.get("eta") == 0.0:
            last[0] = now
            _say(f"inference {u['frame']}/{u['total']} frames, {u.get('fps') or 0:.1f} fps")

    try:
        _say(f"inference on {args.video} ({args.preset} preset)")
        raw, result = preview.raw_and_smoothed(args.video, opts, progress=progress)
        result.save(stem + ".npz")
        files.append(stem + ".npz")
        times["inference_s"] = round(time.perf_counter() - t0, 2)
        for w in result.warnings:
            _say(f"warning: {w}")
        _say(f"{result.num_people} people, {result.num_frames} frames -> {stem}.npz")
        if result.num_people == 0 or not result.valid.any():
            raise InferenceError("nobody was found in the video: no skeletons to show")

        t = time.perf_counter()
        st = overlay.write_overlay(args.video, result, stem + "_overlay.mp4", max_width=args.overlay_width)
        files.append(st.path)
        times["overlay_s"] = round(time.perf_counter() - t, 2)
        _say(f"overlay: {st.frames} frames, {st.drawn} person-frames -> {st.path}")

        t = time.perf_counter()
        preview.preview_grid(result.joints3d, result.valid, result.person_ids, stem + "_preview.png",
                             n=8, cols=4, fps=result.fps, title=f"{os.path.basename(args.video)}: 3D skeletons")
        files.append(stem + "_preview.png")
        p = int(result.valid.sum(1).argmax())            # the person seen longest
        jit = preview.trajectory_plot(raw.joints3d[p], result.joints3d[p], result.valid[p], result.fps,
                                      stem + "_trajectories.png",
                                      title=f"person #{int(result.person_ids[p])}, raw lifted vs smoothed")
        files.append(stem + "_trajectories.png")
        frame = int(preview.pick_frames(result.valid, 3)[1])
        card = result_card(args.video, result, frame, stem + "_card.jpg")
        files.append(card)
        if args.card:
            files.append(result_card(args.video, result, frame, args.card))
        times["pictures_s"] = round(time.perf_counter() - t, 2)
        _say(f"jitter of person #{int(result.person_ids[p])}: raw {jit['raw']:.1f}, "
             f"smoothed {jit['smoothed']:.1f} mm/frame^2")
    except (InferenceError, posefile.PoseFileError, OSError, ValueError) as e:
        print(f"demo: error: {e}", file=sys.stderr)
        return 1

    ok = True
    if not args.no_blender:
        t = time.perf_counter()
        cmd = [sys.executable, "-m", "blender_mocap_addon.runner.batch", "--pose-file", stem + ".npz",
               "--output", out, "--format", args.formats]
        _say("Blender: " + " ".join(os.path.relpath(c, ROOT) if os.path.isabs(c) and c.startswith(ROOT) else c
                                      for c in cmd))
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        times["blender_s"] = round(time.perf_counter() - t, 2)
        made = [ln.split("wrote ", 1)[1].strip() for ln in r.stdout.splitlines() if ln.strip().startswith("wrote ")]
        files += made
        if r.returncode != 0:
            ok = False
            print(f"demo: Blender step failed:\n{r.stderr.strip()[-2000:]}", file=sys.stderr)
    times["total_s"] = round(time.perf_counter() - t0, 2)
    info = {"video": os.path.relpath(os.path.abspath(args.video), ROOT), "preset": args.preset,
            "people": result.num_people, "frames": result.num_frames, "fps_video": result.fps,
            "jitter_mm_per_frame2": {k: round(v, 2) for k, v in jit.items()},
            "times": times, "files": [os.path.relpath(f, out) for f in files],
            "command": "tools/demo.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    with open(stem + "_demo.json", "w") as fh:
        json.dump(info, fh, indent=1)
    if args.record:
        sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
        from results_io import write_result  # only with --record: benchmarks/ is put on sys.path just above

        cols = ["video", "preset", "frames", "people", "person", "jitter raw (mm/frame²)",
                "jitter smoothed (mm/frame²)", "inference (s)", "whole demo (s)"]
        row = [info["video"], args.preset, result.num_frames, result.num_people, int(result.person_ids[p]),
               round(jit["raw"], 2), round(jit["smoothed"], 2), times["inference_s"], times["total_s"]]
        write_result("demo", [{"title": "Demo on the sample video", "columns": cols, "rows": [row]}],
                     notes="Jitter = mean norm of the second difference of the 3D joints of the person seen "
                           "longest, over runs of present frames: as lifted, and after the pipeline's "
                           "One-Euro smoothing and bone-length constancy (the plot: out/sample_trajectories.png).")
    _say("wrote:\n  " + "\n  ".join(files + [stem + "_demo.json"]))
    _say(f"done in {times['total_s']:.0f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
