"""Pictures of a result: a grid of 3D skeleton frames, and joint trajectories before and after
smoothing (matplotlib, off-screen Agg canvas; no pyplot, no global backend switch).

    python -m inference.viz.preview POSE.npz -o preview.png [--frames 8]

Raw vs smoothed: the pipeline keeps only its smoothed output, so ``raw_and_smoothed`` runs it
once with smoothing and bone-length constancy off (the raw lifted joints) and applies the
pipeline's own stage-2 post-process to that (``smooth_like_pipeline``: ``smoothing.post_process``,
the one definition).
The pipeline calls the same function, so the plot shows exactly what the pose file gets, at
the cost of one run instead of two. One rare exception: when the
``max_people`` cap drops an interpolated person-frame in the middle of a track, the pipeline
smoothed across that frame while this smooths the two sides separately (a few frames differ).

Letters: P people, F frames, J joints.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys

import numpy as np

from inference.core.filters import runs
from inference.core.metrics import jitter
from inference.pipeline import PipelineOptions, run
from inference.stages.smoothing import post_process
from inference.stages.types import PersonMotion
from inference.viz.overlay import track_color
import posefile
from posefile.skeleton import BONES, JOINT_INDEX as INDEX, JOINT_NAMES

LEFT = {i for n, i in INDEX.items() if n.startswith("l_")}


def _figure(w_in: float, h_in: float, dpi: int = 100):
    # matplotlib is optional (only the pictures need it): imported when a figure is made.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w_in, h_in), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _rgb(track_id: int):
    b, g, r = track_color(track_id)
    return (r / 255, g / 255, b / 255)


def to_world(x: np.ndarray) -> np.ndarray:
    """Camera frame (x right, y down, z forward) -> Blender-like world (x, z, -y), Z up."""
    x = np.asarray(x, np.float64)
    return np.stack([x[..., 0], x[..., 2], -x[..., 1]], axis=-1)


def pick_frames(valid: np.ndarray, n: int) -> np.ndarray:
    """n frame indices spread evenly over the frames where anyone is present. valid (P, F)."""
    any_f = np.nonzero(np.asarray(valid, bool).any(0))[0]
    if len(any_f) == 0:
        return np.zeros(0, int)
    k = min(n, len(any_f))
    return any_f[np.round(np.linspace(0, len(any_f) - 1, k)).astype(int)]


def preview_grid(joints3d: np.ndarray, valid: np.ndarray, person_ids: np.ndarray, out_png: str,
                 n: int = 8, cols: int = 4, fps: float = 30.0, title: str = "",
                 elev: float = 12.0, azim: float = -70.0, dpi: int = 90, frames=None) -> np.ndarray:
    """Save a grid of n 3D frames (all people, same axes limits in every panel) to out_png;
    frames: the frame indices to draw instead of n spread over the video.

    joints3d (P, F, J, 3) metres, camera frame; valid (P, F); person_ids (P,).
    Returns the frame indices drawn (n,).
    """
    j3 = np.asarray(joints3d)
    valid = np.asarray(valid, bool)
    P, F, J, _ = j3.shape
    assert valid.shape == (P, F) and J == len(JOINT_NAMES), (j3.shape, valid.shape)
    frames = pick_frames(valid, n) if frames is None else np.asarray(frames, int)
    if len(frames) == 0:
        raise ValueError("nobody is present in any frame: nothing to preview")
    W = to_world(j3)
    pts = W[:, frames][valid[:, frames]]            # (N, J, 3): the person-frames drawn
    pts = pts[np.isfinite(pts).all(-1)]
    lo, hi = np.percentile(pts, 1, axis=0), np.percentile(pts, 99, axis=0)
    centre = 0.5 * (lo + hi)
    half = max(0.55 * float(np.max(hi - lo)), 1.0)  # same limits in every panel, at least 2 m wide
    rows = int(np.ceil(len(frames) / cols))
    fig = _figure(3.2 * cols, 3.2 * rows + (0.4 if title else 0), dpi)
    for k, f in enumerate(frames):
        ax = fig.add_subplot(rows, cols, k + 1, projection="3d")
        for p in range(P):
            if not valid[p, f]:
                continue
            col = _rgb(int(person_ids[p]))
            for a, b in BONES:
                seg = W[p, f, [a, b]]
                ax.plot(seg[:, 0], seg[:, 1], seg[:, 2], color=col, lw=2.0,
                        alpha=0.65 if b in LEFT else 1.0)
            ax.scatter(*W[p, f].T, s=6, color="k", depthshade=False)
            ax.text(*W[p, f, INDEX["head_top"]] + [0, 0, 0.08], f"#{int(person_ids[p])}", fontsize=7,
                    color=col)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(f"frame {int(f)}  ({f / fps:.1f} s)", fontsize=8)
        ax.tick_params(labelsize=5, pad=0)
        for setter in (ax.set_xlabel, ax.set_ylabel, ax.set_zlabel):
            setter("")
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.02, top=0.9 if title else 0.95, wspace=0.0, hspace=0.12)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(out_png)
    return frames


def jitter_mm(x: np.ndarray, valid: np.ndarray | None = None) -> float:
    """Mean norm of the second difference over runs of present frames, mm/frame^2.
    x (F, J, 3) metres; valid (F,)."""
    valid = np.ones(len(x), bool) if valid is None else np.asarray(valid, bool)
    tot, n = 0.0, 0
    for a, b in runs(valid):
        if b - a >= 3:
            tot += jitter(x[a:b]) * (b - a - 2)
            n += b - a - 2
    return 1000.0 * tot / max(n, 1)


def trajectory_plot(raw: np.ndarray, smoothed: np.ndarray, valid: np.ndarray, fps: float, out_png: str,
                    joints=("r_wrist", "l_ankle", "pelvis"), title: str = "", dpi: int = 90) -> dict:
    """Plot x/y/z (world: x right, y depth, z up; cm) of a few joints over time, raw vs smoothed.

    raw, smoothed (F, J, 3) metres camera frame of one person; valid (F,). Returns the jitter
    (mm/frame^2) of both, as also printed in the title.
    """
    raw, smoothed = np.asarray(raw, np.float64), np.asarray(smoothed, np.float64)
    valid = np.asarray(valid, bool)
    assert raw.shape == smoothed.shape and raw.shape[0] == len(valid), (raw.shape, smoothed.shape)
    t = np.arange(len(valid)) / fps
    Wr, Ws = to_world(raw) * 100.0, to_world(smoothed) * 100.0
    Wr[~valid] = np.nan
    Ws[~valid] = np.nan
    jit = {"raw": jitter_mm(raw, valid), "smoothed": jitter_mm(smoothed, valid)}
    fig = _figure(4.2 * len(joints), 6.4, dpi)
    axes_names = ("x (right)", "y (depth)", "z (up)")
    for c, name in enumerate(joints):
        j = INDEX[name]
        for r in range(3):
            ax = fig.add_subplot(3, len(joints), r * len(joints) + c + 1)
            ax.plot(t, Wr[:, j, r], color="0.6", lw=1.0, label="raw (lifted)")
            ax.plot(t, Ws[:, j, r], color="C3", lw=1.5, label="smoothed")
            if r == 0:
                ax.set_title(name, fontsize=9)
            if c == 0:
                ax.set_ylabel(f"{axes_names[r]} cm", fontsize=8)
            if r == 2:
                ax.set_xlabel("time (s)", fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            if r == 0 and c == 0:
                ax.legend(fontsize=7, loc="best")
    head = (title + "\n" if title else "") + (f"jitter (mean |2nd difference|): raw {jit['raw']:.1f}, "
                                              f"smoothed {jit['smoothed']:.1f} mm/frame²")
    fig.suptitle(head, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)
    return jit


# ---------------------------------------------------------------------------- raw vs smoothed
def smooth_like_pipeline(raw, options):
    """The pipeline's stage-2 post-process (smoothing.post_process) applied to a run made with
    smoothing=0 and bone_lengths=False. raw: PoseResult; options: the PipelineOptions of the
    normal run. Returns a new PoseResult (joints3d, joints2d post-processed; meta options updated)."""
    j3 = np.array(raw.joints3d, np.float32, copy=True)
    j2 = np.array(raw.joints2d, np.float32, copy=True)
    K = np.asarray(raw.camera_K, np.float64)
    cfg = options.smoothing_config()
    for p in range(raw.num_people):
        done = post_process(PersonMotion(j3[p], j2[p], raw.valid[p]), float(raw.fps), K, cfg)
        j3[p], j2[p] = done.joints3d, done.joints2d
    meta = dict(raw.meta)
    if isinstance(meta.get("options"), dict):
        meta["options"] = dict(meta["options"], smoothing=options.smoothing, bone_lengths=options.bone_lengths)
    return dataclasses.replace(raw, joints3d=j3, joints2d=j2, meta=meta)


def raw_and_smoothed(source, options=None, progress=None, models=None):
    """Run the pipeline once; returns (raw PoseResult, smoothed PoseResult) where smoothed is
    what ``pipeline.run(source, options)`` returns."""
    options = options or PipelineOptions()
    raw_opts = dataclasses.replace(options, smoothing=0.0, bone_lengths=False)
    raw = run(source, raw_opts, progress=progress, models=models)
    return raw, smooth_like_pipeline(raw, options)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference.viz.preview", description=__doc__.split("\n\n")[0])
    ap.add_argument("pose", help="pose file (.npz)")
    ap.add_argument("-o", "--output", required=True, help="PNG to write")
    ap.add_argument("--frames", type=int, default=8)
    args = ap.parse_args(argv)
    try:
        d = posefile.load(args.pose)
        preview_grid(d.joints3d, d.valid, d.person_ids, args.output, n=args.frames, fps=d.fps)
    except (posefile.PoseFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
