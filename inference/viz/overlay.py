"""Overlay video: the 2D skeletons and track ids of a pose file drawn on the source frames.

    python -m inference.viz.overlay VIDEO POSE.npz -o overlay.mp4 [--max-width 960] [--confidence-strip]

Streaming: frames are decoded one at a time (``inference.stages.video.FrameReader``), drawn on and
written (``cv2.VideoWriter``, mp4v), so memory does not grow with the video's length. Pose-file
frame f is video frame ``meta["frame_start"] + f`` (0 when the pose file does not say). The
video is written to a temporary name beside the output and moved into place at the end, so an
interrupted run never leaves a half-written file under the real name. With ``confidence_strip``
a thin band per person along the bottom shows their confidence over the whole clip, with a
playhead (``inference.viz.strip``).

Letters: P people, F frames, J joints.
"""
from __future__ import annotations

import argparse
import colorsys
import os
import sys
from dataclasses import dataclass

import cv2
import numpy as np

from inference.errors import InferenceError
from inference.stages.video import FrameReader
from inference.viz import strip as conf_strip
import posefile
from posefile.skeleton import BONES, JOINT_INDEX as INDEX

LEFT = {i for n, i in INDEX.items() if n.startswith("l_")}


def track_color(track_id: int) -> tuple[int, int, int]:
    """A BGR colour per track id, well apart for consecutive ids (golden-ratio hues)."""
    h = (0.61803398875 * (int(track_id) + 1)) % 1.0
    r, g, b = colorsys.hsv_to_rgb(h, 0.85, 1.0)
    return int(b * 255), int(g * 255), int(r * 255)


def draw_people(frame: np.ndarray, joints2d: np.ndarray, scores: np.ndarray, present: np.ndarray,
                ids: np.ndarray, threshold: float = 0.1, scale: float = 1.0) -> np.ndarray:
    """Draw every present person on ``frame`` in place and return it.

    frame (H, W, 3) uint8 BGR; joints2d (P, J, 2) pixels of the source video; scores (P, J);
    present (P,) bool; ids (P,) track ids; scale: drawing size relative to a 1000-px-high frame
    is chosen automatically and multiplied by this. Joints scoring below ``threshold`` (and the
    bones touching them) are not drawn. Left-side bones are drawn a little darker.
    """
    assert frame.ndim == 3 and frame.shape[2] == 3, frame.shape
    P = len(present)
    assert joints2d.shape[0] == P and joints2d.shape[-1] == 2 and scores.shape == joints2d.shape[:2]
    h = frame.shape[0]
    th = max(1, int(round(3.0 * scale * h / 1000.0)))
    rad = max(2, int(round(4.5 * scale * h / 1000.0)))
    for p in range(P):
        if not present[p]:
            continue
        pts, sc = joints2d[p], scores[p]
        ok = np.isfinite(pts).all(-1) & (sc >= threshold)
        if not ok.any():
            continue
        col = track_color(int(ids[p]))
        dark = tuple(int(c * 0.6) for c in col)
        ip = np.round(np.nan_to_num(pts) * 16).astype(np.int64)     # 4 fractional bits (shift=4)
        for a, b in BONES:
            if ok[a] and ok[b]:
                c = dark if b in LEFT else col
                cv2.line(frame, tuple(ip[a]), tuple(ip[b]), c, th, cv2.LINE_AA, shift=4)
        for j in np.nonzero(ok)[0]:
            cv2.circle(frame, tuple(ip[j]), rad, (255, 255, 255), -1, cv2.LINE_AA, shift=4)
            cv2.circle(frame, tuple(ip[j]), rad, col, max(1, th // 2), cv2.LINE_AA, shift=4)
        w = frame.shape[1]
        inside = ok & (pts[:, 0] >= 0) & (pts[:, 0] < w) & (pts[:, 1] >= 0) & (pts[:, 1] < h)
        if not inside.any():              # the whole person is off the frame: no label
            continue
        top = pts[inside]
        x, y = float(top[:, 0].mean()), float(top[:, 1].min())
        label = f"#{int(ids[p])}"
        fs = 0.9 * scale * h / 1000.0 + 0.3
        (tw, tht), base = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, fs, th)
        org = (int(x - tw / 2), int(max(tht + 4, y - 3 * rad)))
        cv2.rectangle(frame, (org[0] - 3, org[1] - tht - 3), (org[0] + tw + 3, org[1] + base), col, -1)
        cv2.putText(frame, label, org, cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), th, cv2.LINE_AA)
    return frame


@dataclass
class OverlayStats:
    frames: int          # frames written
    drawn: int           # person-frames drawn
    width: int
    height: int
    path: str


def frame_start(meta: dict) -> int:
    for key in ("frame_start", "start"):
        v = (meta or {}).get(key)
        if isinstance(v, int) and v >= 0:
            return v
    return 0


def write_overlay(video: str | os.PathLike, pose, out_path: str | os.PathLike, max_width: int | None = None,
                  threshold: float = 0.1, fourcc: str = "mp4v", progress=None,
                  confidence_strip: bool = False) -> OverlayStats:
    """Draw ``pose`` (PoseData / PoseResult: joints2d (P, F, J, 2), scores (P, F, J),
    valid (P, F), person_ids (P,), fps, meta; ``filled`` when it has one) on the frames of
    ``video`` -> ``out_path`` (.mp4).

    max_width: downscale wider frames to this width (the drawing is scaled with them).
    confidence_strip: a band per person along the bottom (``inference.viz.strip``).
    progress(frames_done, frames_total) is called every 25 frames. Raises InferenceError.
    """
    j2 = np.asarray(pose.joints2d, np.float32)
    sc = np.asarray(pose.scores, np.float32)
    valid = np.asarray(pose.valid, bool)
    ids = np.asarray(pose.person_ids)
    P, F = valid.shape
    if j2.shape[:2] != (P, F) or sc.shape[:2] != (P, F):
        raise InferenceError(f"pose arrays disagree: joints2d {j2.shape}, scores {sc.shape}, valid {valid.shape}")
    start = frame_start(pose.meta if isinstance(pose.meta, dict) else {})
    out_path = os.fspath(out_path)
    folder = os.path.dirname(os.path.abspath(out_path))
    os.makedirs(folder, exist_ok=True)
    stem, ext = os.path.splitext(os.path.basename(out_path))
    tmp = os.path.join(folder, f".{stem}.part{ext or '.mp4'}")
    writer = None
    n = drawn = 0
    size = (0, 0)
    try:
        with FrameReader(video, start=start, end=start + F) as reader:
            w, h = reader.info.size
            s = 1.0 if not max_width or w <= max_width else max_width / w
            size = (int(round(w * s)) // 2 * 2, int(round(h * s)) // 2 * 2)
            writer = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*fourcc), float(pose.fps or reader.info.fps), size)
            if not writer.isOpened():
                raise InferenceError(f"cannot write {out_path} with the {fourcc} codec")
            band = None
            if confidence_strip and P:
                band = conf_strip.strip_image(sc, valid, [track_color(int(i)) for i in ids], size[0],
                                              conf_strip.band_height(P, size[1]), getattr(pose, "filled", None))
            for index, frame in reader:
                f = index - start
                if s != 1.0:
                    frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                    pts = j2[:, f] * np.float32([size[0] / w, size[1] / h])
                else:
                    pts = j2[:, f]
                draw_people(frame, pts, sc[:, f], valid[:, f], ids, threshold)
                if band is not None:
                    conf_strip.draw_strip(frame, band[0], band[1], f, F)
                drawn += int(valid[:, f].sum())
                writer.write(frame)
                n += 1
                if progress is not None and n % 25 == 0:
                    progress(n, F)
        writer.release()
        writer = None
        if n == 0:
            raise InferenceError(f"{video}: no frame decoded for the overlay")
        os.replace(tmp, out_path)
    finally:
        if writer is not None:
            writer.release()
        if os.path.exists(tmp):
            os.unlink(tmp)
    return OverlayStats(n, drawn, size[0], size[1], out_path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference.viz.overlay", description=__doc__.split("\n\n")[0])
    ap.add_argument("video")
    ap.add_argument("pose", help="pose file (.npz) made from this video")
    ap.add_argument("-o", "--output", required=True, help="overlay video (.mp4)")
    ap.add_argument("--max-width", type=int, default=None)
    ap.add_argument("--confidence-strip", action="store_true",
                    help="a thin band per person along the bottom: confidence over the clip (hatched: "
                         "interpolated, grey: absent) with a playhead")
    args = ap.parse_args(argv)
    try:
        pose = posefile.load(args.pose)
        st = write_overlay(args.video, pose, args.output, max_width=args.max_width,
                           confidence_strip=args.confidence_strip)
    except (InferenceError, posefile.PoseFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {st.path}: {st.frames} frames, {st.drawn} person-frames drawn", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
