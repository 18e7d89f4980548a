"""Pictures of a result: a grid of 3D skeleton frames (axes fitted to the people, the floor's grid
when the pose file has one), each person's joint scores over time, and joint trajectories before
and after smoothing (matplotlib, off-screen Agg canvas; no pyplot, no global backend switch).

    python -m inference.viz.preview POSE.npz -o preview.png [--frames 8] [--confidence conf.png]

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


def panel_box(points: np.ndarray, floor: bool = False, min_half: float = 1.0,
              margin: float = 0.1) -> tuple[np.ndarray, float]:
    """(centre (3,), half side) of the cube a panel draws: fitted to the people in it (their
    finite joints, (N, 3) world metres, Z up) plus margin metres, at least 2 x min_half wide; with
    a floor the cube's bottom is at most z = 0, so the floor shows."""
    pts = np.asarray(points, np.float64).reshape(-1, 3)
    pts = pts[np.isfinite(pts).all(-1)]
    lo, hi = pts.min(0) - margin, pts.max(0) + margin
    if floor:
        lo[2] = min(lo[2], 0.0)
    half = max(0.5 * float(np.max(hi - lo)), min_half)
    centre = 0.5 * (lo + hi)
    if floor:   # the cube's floor at or below z = 0, the people standing in it
        centre[2] = max(centre[2], lo[2] + half)
    return centre, half


def _floor_grid(ax, centre: np.ndarray, half: float, step: float = 0.5) -> None:
    """Grid lines on z = 0 inside the panel's square, every `step` metres (1 m lines darker)."""
    (x0, x1), (y0, y1) = ((c - half, c + half) for c in centre[:2])
    for axis, (a, b) in ((0, (x0, x1)), (1, (y0, y1))):      # lines of constant x, then of constant y
        for v in np.arange(np.ceil(a / step) * step, b + 1e-9, step):
            line = np.array([[v, y0], [v, y1]]) if axis == 0 else np.array([[x0, v], [x1, v]])
            strong = abs(v - round(v)) < 1e-6
            ax.plot(line[:, 0], line[:, 1], [0.0, 0.0], color="0.45" if strong else "0.75",
                    lw=0.6 if strong else 0.4, zorder=0)


def preview_grid(joints3d: np.ndarray, valid: np.ndarray, person_ids: np.ndarray, out_png: str,
                 n: int = 8, cols: int = 4, fps: float = 30.0, title: str = "",
                 elev: float = 12.0, azim: float = -70.0, dpi: int = 90, frames=None,
                 world_from_camera: np.ndarray | None = None) -> np.ndarray:
    """Save a grid of n 3D frames (all people) to out_png; frames: the frame indices to draw
    instead of n spread over the video. Each panel's axes are fitted to the people in it
    (panel_box; its size in the panel's title). With world_from_camera (the pose file's floor)
    the people are drawn in that world (floor z = 0) over a floor grid.

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
    floor = world_from_camera is not None
    if floor:
        T = np.asarray(world_from_camera, np.float64)
        W = np.asarray(j3, np.float64) @ T[:3, :3].T + T[:3, 3]      # posefile.world_joints
    else:
        W = to_world(j3)
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
        centre, half = panel_box(W[valid[:, f], f], floor=floor)
        if floor:     # the floor's own grid instead of the panes' (which would sit below it)
            ax.grid(False)
            _floor_grid(ax, centre, half)
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.set_box_aspect((1, 1, 1))
        ax.view_init(elev=elev, azim=azim)
        ax.set_title(f"frame {int(f)}  ({f / fps:.1f} s), {2 * half:.1f} m box", fontsize=8)
        ax.tick_params(labelsize=5, pad=0)
        for setter in (ax.set_xlabel, ax.set_ylabel, ax.set_zlabel):
            setter("")
    fig.subplots_adjust(left=0.0, right=1.0, bottom=0.02, top=0.9 if title else 0.95, wspace=0.0, hspace=0.12)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.savefig(out_png)
    return frames


def confidence_strip(scores: np.ndarray, valid: np.ndarray, person_ids: np.ndarray, fps: float,
                     out_png: str, title: str = "", dpi: int = 90) -> np.ndarray:
    """Save one strip per person: each joint's score over time (rows: joints, colour 0..1), frames
    where the person is absent left blank, and the mean score of the seen joints as a line above.
    scores (P, F, J), valid (P, F). Returns the per-person mean score over their valid frames (P,)."""
    from matplotlib import colormaps

    sc = np.asarray(scores, np.float64)
    valid = np.asarray(valid, bool)
    P, F, J = sc.shape
    if P == 0:
        raise ValueError("the pose file has no person: no confidence to draw")
    fig = _figure(max(6.0, min(16.0, F / 25.0)), 0.55 + 1.35 * P, dpi)
    t1 = F / fps
    cmap = colormaps["viridis"].copy()
    cmap.set_bad("white")
    means = np.zeros(P)
    for p in range(P):
        ax = fig.add_subplot(P, 1, p + 1)
        img = np.ma.masked_array(sc[p].T, np.broadcast_to(~valid[p][None], (J, F)))
        ax.imshow(img, aspect="auto", cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest",
                  extent=(0, t1, J - 0.5, -0.5))
        seen = valid[p][:, None] & (sc[p] > 0)
        mean = np.where(seen.any(1), (sc[p] * seen).sum(1) / np.maximum(seen.sum(1), 1), np.nan)
        means[p] = float(np.nanmean(mean)) if np.isfinite(mean).any() else 0.0
        # the mean as a line in the strip: 1 at the top row, 0 at the bottom
        ax.plot((np.arange(F) + 0.5) / fps, (J - 0.5) - mean * J, color=_rgb(int(person_ids[p])), lw=1.4)
        ax.set_yticks([0, J // 2, J - 1], [JOINT_NAMES[0], JOINT_NAMES[J // 2], JOINT_NAMES[J - 1]], fontsize=6)
        ax.set_ylabel(f"#{int(person_ids[p])}", rotation=0, labelpad=14, fontsize=8, color=_rgb(int(person_ids[p])))
        ax.tick_params(labelsize=6)
        ax.set_title(f"person #{int(person_ids[p])}: mean score {means[p]:.2f}, present {valid[p].mean() * 100:.0f}% "
                     "of frames", fontsize=7, loc="left")
        if p == P - 1:
            ax.set_xlabel("time (s)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_png)
    return means


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
    ap.add_argument("--confidence", default=None, metavar="PNG",
                    help="also draw each person's joint scores over time (confidence_strip)")
    args = ap.parse_args(argv)
    try:
        d = posefile.load(args.pose)
        preview_grid(d.joints3d, d.valid, d.person_ids, args.output, n=args.frames, fps=d.fps,
                     world_from_camera=d.world_from_camera)
        if args.confidence:
            confidence_strip(d.scores, d.valid, d.person_ids, d.fps, args.confidence)
    except (posefile.PoseFileError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}" + (f" and {args.confidence}" if args.confidence else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
