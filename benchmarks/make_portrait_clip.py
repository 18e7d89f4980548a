"""A portrait HD clip (1080 x 1920) cut from the bundled sample, for speed runs on portrait video.

    .venv/bin/python benchmarks/make_portrait_clip.py OUT.mp4 [--centre-x 760]

Issue 31 asks for the whole-process comparison with BlazePose on a portrait HD clip; the clip it
was measured on is not in the repository. This one is the sample's full height and a 9:16 window
around the man on the wall and the woman's path (x 480-1040 of 1768 at the default centre),
scaled 1.93x to 1080 x 1920 and written with OpenCV's mp4v encoder at the sample's frame rate.
Every frame is upright (no rotation flag), so any reader sees the same pictures.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "examples" / "sports2d_demo.mp4"
SIZE = (1080, 1920)


def make_portrait_clip(out: Path, source: Path = SAMPLE, centre_x: float = 760.0) -> tuple[int, float]:
    """Write the clip; returns (frames written, frame rate)."""
    cap = cv2.VideoCapture(str(source))
    if not cap.isOpened():
        raise SystemExit(f"cannot open {source}")
    fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
    writer, n = None, 0
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        h, w = frame.shape[:2]
        width = int(round(h * SIZE[0] / SIZE[1]))
        x0 = int(round(min(max(centre_x - width / 2, 0), w - width)))
        portrait = cv2.resize(frame[:, x0:x0 + width], SIZE, interpolation=cv2.INTER_CUBIC)
        if writer is None:
            writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), fps, SIZE)
            if not writer.isOpened():
                raise SystemExit(f"cannot write {out}")
        writer.write(portrait)
        n += 1
    cap.release()
    if writer is not None:
        writer.release()
    return n, fps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--source", type=Path, default=SAMPLE)
    ap.add_argument("--centre-x", type=float, default=760.0, help="centre of the window in source pixels")
    args = ap.parse_args(argv)
    n, fps = make_portrait_clip(args.out, args.source, args.centre_x)
    print(f"wrote {args.out}: {n} frames, {SIZE[0]} x {SIZE[1]}, {fps:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
