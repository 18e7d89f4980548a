"""Person-free check: footage with nobody in it must yield no track at all.

    python -m evaluation.person_free [--lsp-clips 20] [--frames 45] [--keep-unconfirmed] [--out FILE]

Two kinds of clip, none of which shows a person:

* ``sample-top-right``: the region of the bundled sample video above and right of where its two
  people move (x 1000-1768, y 0-430 of the 1768 x 994 frames: trees, buildings, the sun's glare),
  scaled to 960 x 540, every frame;
* ``lsp-NNNNN``: held-out LSPET photographs (im09001-im10000, never trained on) with the annotated
  person cut away (their joints' box, grown 1.6x, filled by OpenCV inpainting) and filmed by the
  virtual hand-held camera of ``eval_video`` (pan, zoom, shake) around the hole. LSPET labels one
  person per photo: another athlete in the background would still be a person, so every track
  found is listed with its clip and frames, to be looked at before it is called a ghost. Photos
  found by looking to still show a person are listed in ``NOT_PERSON_FREE`` and left out.

Each clip goes through the whole engine (``inference.run``) and the tracks it writes are counted:
the aim is zero. ``--keep-unconfirmed`` turns person verification off, for the comparison.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from data.lsp import DEFAULT_LSP, load_annotations
from evaluation.eval_video import FPS, FRAME_H, FRAME_W, camera_path, render_clip
from inference.core import crops
from inference.errors import InferenceError
from inference.pipeline import PipelineOptions, load_models, run

SAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sports2d_demo.mp4"
SAMPLE_REGION = (1000, 0, 1768, 430)   # x0, y0, x1, y1: no person ever enters it
CUT_GROW = 1.6
# A cut that covers (nearly) the whole photo leaves inpainting nothing to fill from, and OpenCV
# then returns the picture unchanged, person and all (im09637, im09906): such photos are skipped.
MAX_CUT_SHARE = 0.95
# Held-out photos that still show a person once the labelled one is cut away (looked at: seed 0,
# 20 photos). Image number -> what is left.
NOT_PERSON_FREE = {
    9017: "a leg of the labelled person reaches below the cut",
    9304: "a second climber at the left",
    9503: "bystanders at the right",
    9906: "the gymnast in view is not the labelled person; she stays",
}


def sample_region_clip(out: Path, video: Path = SAMPLE, region=SAMPLE_REGION, frames: int = 0) -> Path:
    """The person-free region of the sample video as a 960 x 540 clip (all frames, or the first
    ``frames``)."""
    cap = cv2.VideoCapture(str(video))
    if not cap.isOpened():
        raise InferenceError(f"cannot open {video}")
    fps = cap.get(cv2.CAP_PROP_FPS) or FPS
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, (FRAME_W, FRAME_H))
    x0, y0, x1, y1 = region
    n = 0
    try:
        while not frames or n < frames:
            ok, img = cap.read()
            if not ok:
                break
            writer.write(cv2.resize(img[y0:y1, x0:x1], (FRAME_W, FRAME_H), interpolation=cv2.INTER_AREA))
            n += 1
    finally:
        cap.release()
        writer.release()
    if n == 0:
        raise InferenceError(f"no frame read from {video}")
    return out


def cut_person(image: np.ndarray, joints: np.ndarray, visible: np.ndarray, grow: float = CUT_GROW):
    """The photo with the annotated person's joints' box (grown by ``grow``) inpainted, that box
    as (cx, cy, size), and the share of the photo the cut covers."""
    box = crops.box_from_joints(joints, visible)
    cx, cy, s = box
    half = 0.5 * grow * s
    H, W = image.shape[:2]
    mask = np.zeros((H, W), np.uint8)
    x0, y0 = int(max(cx - half, 0)), int(max(cy - half, 0))
    x1, y1 = int(min(cx + half, W)), int(min(cy + half, H))
    mask[y0:y1, x0:x1] = 255
    share = max(x1 - x0, 0) * max(y1 - y0, 0) / float(W * H)
    return cv2.inpaint(image, mask, 5, cv2.INPAINT_TELEA), box, share


def lsp_clips(folder: Path, n: int, frames: int, seed: int, data_root: str) -> list[tuple[str, Path]]:
    """Clips of ``n`` held-out photos drawn with ``seed``, less those in NOT_PERSON_FREE and those
    the cut would cover whole (MAX_CUT_SHARE)."""
    names, joints, visible, is_test = load_annotations(data_root)
    held_out = np.where(is_test)[0]
    rng = np.random.default_rng(seed)
    out = []
    for i in np.sort(rng.choice(held_out, size=min(n, len(held_out)), replace=False)):
        if i + 1 in NOT_PERSON_FREE:
            continue
        img = cv2.imread(str(Path(data_root) / "images" / names[i]))
        if img is None:
            raise InferenceError(f"cannot read {names[i]}")
        empty, box, share = cut_person(img, joints[i], visible[i])
        if share >= MAX_CUT_SHARE:
            continue
        path = folder / f"lsp_{i + 1:05d}.mp4"
        render_clip(empty, camera_path(box, frames, rng), path)
        out.append((f"lsp-{i + 1:05d}", path))
    return out


def check(options: PipelineOptions, lsp_clips_n: int = 20, frames: int = 45, seed: int = 0,
          data_root: str | None = None, sample_frames: int = 0, progress=None) -> dict:
    """Run every person-free clip through the engine; the tracks written, per clip and in all."""
    models = load_models(options)
    per_clip = {}
    with tempfile.TemporaryDirectory(prefix="person_free_") as tmp:
        tmp = Path(tmp)
        clips = [("sample-top-right", sample_region_clip(tmp / "sample.mp4", frames=sample_frames))]
        if lsp_clips_n:
            clips += lsp_clips(tmp, lsp_clips_n, frames, seed, data_root or DEFAULT_LSP)
        for k, (name, path) in enumerate(clips):
            res = run(str(path), options, models=models)
            tracks = []
            for p in range(res.valid.shape[0]):
                f = np.nonzero(res.valid[p])[0]
                tracks.append({"frames": [int(f.min()), int(f.max())], "person_frames": int(len(f)),
                               "mean_score": round(float(res.scores[p][res.valid[p]].mean()), 3)})
            per_clip[name] = {"frames": int(res.valid.shape[1]), "tracks": tracks}
            if progress:
                progress(k + 1, len(clips))
    n_tracks = sum(len(c["tracks"]) for c in per_clip.values())
    return {"clips": len(per_clip), "clips_with_tracks": sum(bool(c["tracks"]) for c in per_clip.values()),
            "tracks": n_tracks,
            "person_frames": sum(t["person_frames"] for c in per_clip.values() for t in c["tracks"]),
            "frames": sum(c["frames"] for c in per_clip.values()), "per_clip": per_clip}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lsp-clips", type=int, default=20, help="held-out photographs with the person cut away")
    ap.add_argument("--frames", type=int, default=45, help="frames per photograph clip")
    ap.add_argument("--sample-frames", type=int, default=0, help="frames of the sample region (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--preset", default=PipelineOptions.preset)
    ap.add_argument("--weights", default=None, help="weights folder (default weights/)")
    ap.add_argument("--data", default=None, help="LSP folder (default $VIDEO_MOCAP_DATA/lsp)")
    ap.add_argument("--keep-unconfirmed", action="store_true", help="person verification off")
    ap.add_argument("--out", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    if args.lsp_clips < 0 or args.frames < 1:
        ap.error("--lsp-clips must be >= 0 and --frames >= 1")
    try:
        opts = PipelineOptions(preset=args.preset, weights_dir=args.weights,
                               verify_people=not args.keep_unconfirmed)
        opts.check()
        res = check(opts, args.lsp_clips, args.frames, args.seed, args.data, args.sample_frames,
                    progress=lambda n, t: print(f"\r{n}/{t} clips", end="", file=sys.stderr, flush=True))
    except (InferenceError, FileNotFoundError) as e:
        ap.error(str(e))
    print(file=sys.stderr)
    res["command"] = "python -m evaluation.person_free " + " ".join(argv if argv is not None else sys.argv[1:])
    res["options"] = {"preset": opts.preset, "verify_people": opts.verify_people}
    print(json.dumps({k: v for k, v in res.items() if k != "per_clip"}, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
