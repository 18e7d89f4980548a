"""Assemble every measured number of the project into one page: docs/REPORT.md.

    python -m evaluation.report                    # rebuild docs/REPORT.md from the results on disk
    python -m evaluation.report --run-all          # first re-run every command of the report (long)
    python -m evaluation.report --capture NAME -- CMD ARGS...
                                                  # run a script that prints markdown tables and keep
                                                  # its output (and the command) in docs/results/bench/NAME.json

Sources (nothing is typed in by hand; each table says which command made it):
  weights/*.json        the "eval" block of each shipped network's manifest (2D PCK, detector, lifter)
  docs/results/results_3d.json  the lifter's held-out 3D evaluation (evaluation.eval_3d)
  docs/results/results_video.json  stage 1 end to end on synthetic clips of held-out photos (evaluation.eval_video)
  docs/results/bench/*.json  benchmark outputs: {"benchmark", "command", "date", "machine", "tables":
                        [{"title", "columns", "rows"}], "notes"} (benchmarks/results_io.py) or
                        {"benchmark", "command", "stdout"} (--capture)
No torch is imported here.
"""
from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import re
import shlex
import subprocess
import sys

from evaluation.machine import machine

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WEIGHTS = os.path.join(REPO, "weights")
DOCS = os.path.join(REPO, "docs")
RESULTS = os.path.join(DOCS, "results")
BENCH = os.path.join(RESULTS, "bench")
OUT = os.path.join(DOCS, "REPORT.md")

# The commands that produce every number of the report, in the order --run-all runs them.
RUN_ALL = [
    "python -m evaluation.eval_2d --weights weights/pose_fast.json",
    "python -m evaluation.eval_2d --weights weights/pose_fast.json --flip",
    "python -m evaluation.eval_2d --weights weights/pose_balanced.json",
    "python -m evaluation.eval_2d --weights weights/pose_balanced.json --flip",
    "python -m evaluation.eval_detector --weights weights/detector_fast.json",
    "python -m evaluation.eval_3d --out docs/results/results_3d --manifest weights/lifter.json",
    "python -m evaluation.eval_video --out docs/results/results_video.json",
    "python -m evaluation.eval_video --preset fast --out docs/results/results_video_fast.json",
    "python -m evaluation.eval_video --preset balanced --clips 160 --seed 1 --out docs/results/results_video_balanced_160clips.json",
    "python -m evaluation.eval_video --preset fast --frames 60 --occlude 0.6 --out docs/results/results_video_occluded.json",
    "python -m evaluation.eval_video --preset fast --frames 60 --occlude 0.6 --stitch-gap 0 --out docs/results/results_video_occluded_nostitch.json",
    "python benchmarks/bench_first_frame.py",
    "python -m evaluation.report --capture inference -- python benchmarks/bench_inference.py",
    "python -m evaluation.report --capture keyframes_1x1k -- python benchmarks/bench_keyframes.py --people 1 --frames 1000",
    "python -m evaluation.report --capture keyframes_1x10k -- python benchmarks/bench_keyframes.py --people 1 --frames 10000",
    "python -m evaluation.report --capture keyframes_10x1k -- python benchmarks/bench_keyframes.py --people 10 --frames 1000",
    "python -m evaluation.report --capture keyframes_10x10k -- python benchmarks/bench_keyframes.py --people 10 --frames 10000",
    "python benchmarks/bench_memory.py --seconds 60,600",
    "python tools/demo.py --record",
]

# Sections of the speed part, by benchmark name prefix; anything else goes under "Other".
SPEED_ORDER = [("first_frame", "Whole process: time to first frame and frames per second"),
               ("inference", "Frames per second per preset (engine)"),
               ("keyframes", "Keyframing in Blender (import of P people x F frames)"),
               ("memory", "Memory as the video grows"),
               ("batch", "Batch conversion")]


def _load(path: str):
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _cell(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v != v:
            return "-"
        return f"{v:.3g}" if abs(v) < 100 else f"{v:.0f}"
    return str(v).replace("|", "\\|")


def table(columns: list, rows: list) -> str:
    out = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    out += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
    return "\n".join(out)


def _cmd(c: str) -> str:
    return f"Command: `{c}`" if c else "Command: (not recorded)"


# ---------------------------------------------------------------------------- accuracy
def manifests() -> list:
    if not os.path.isdir(WEIGHTS):
        return []
    out = []
    for f in sorted(os.listdir(WEIGHTS)):
        if f.endswith(".json"):
            m = _load(os.path.join(WEIGHTS, f))
            if isinstance(m, dict) and "kind" in m:
                out.append((f[:-5], m))
    return out


def section_2d(mans) -> list:
    lines = []
    pose = [(n, m) for n, m in mans if m.get("kind") == "2d"]
    if pose:
        rows, cmds = [], []
        for n, m in pose:
            ev = m.get("eval") or {}
            plain, flip = ev.get("pck@0.2") or {}, ev.get("pck@0.2_flip") or {}
            tr = m.get("training") or {}
            cfg = m.get("config") or {}
            rows.append([n, cfg.get("stacks"), cfg.get("features"), cfg.get("in_size"),
                         plain.get("mean"), plain.get("mean16"), flip.get("mean"), plain.get("n_images"),
                         plain.get("split", "-"), tr.get("total_steps", tr.get("steps")), tr.get("epochs")])
            if m.get("eval_command"):
                cmds.append(m["eval_command"])
        lines += ["### 2D pose: PCK@0.2 (%)", "",
                  "PCK@0.2: a joint is correct within 0.2 x torso size (Andriluka et al., CVPR 2014; LSP "
                  "convention). `mean`: the 14 LSP joints; `mean16`: with pelvis and thorax.", "",
                  table(["weights", "stacks", "channels", "input px", "PCK mean", "PCK mean16", "PCK mean (flip test)",
                         "images", "held-out split", "steps (all runs)", "epochs (last run)"], rows), ""]
        lines += [_cmd(c) + "  " for c in dict.fromkeys(cmds)] + [""]
        for n, m in pose:
            pj = ((m.get("eval") or {}).get("pck@0.2") or {}).get("per_joint")
            if pj:
                names = list(pj)
                lines += [f"Per joint ({n}, no flip):", "", table(names, [[pj[k] for k in names]]), ""]
    det = [(n, m) for n, m in mans if m.get("kind") == "detector"]
    if det:
        rows = []
        for n, m in det:
            ev = m.get("eval") or {}
            # one figure set per kind of held-out frame ("scenes", "mosaics"), or an older flat one
            for e in ([ev[k] for k in ("scenes", "mosaics") if k in ev] or [ev]):
                rows.append([n, e.get("precision"), e.get("recall"), e.get("recall_small"), e.get("f1"),
                             e.get("threshold"), e.get("people"), e.get("split", "-")])
        lines += ["### Person detector", "", table(["weights", "precision", "recall", "recall (small)", "F1",
                                                    "threshold", "people", "held-out split"], rows), ""]
        lines += [_cmd(m.get("eval_command", "")) + "  " for _, m in det] + [""]
    return lines


def _video_preset(res: dict) -> str:
    return res.get("options", {}).get("preset", "fast")     # runs before --preset was recorded: fast


def section_video() -> list:
    # docs/results/results_video.json is the default preset's run; results_video_<name>.json any other.
    from inference.pipeline import DEFAULT_PRESET  # lazy: report's --help stays stdlib-only (no numpy/cv2)

    runs = [r for r in (_load(f) for f in sorted(glob.glob(os.path.join(RESULTS, "results_video*.json"))))
            if isinstance(r, dict) and "pck" in r]
    if not runs:
        return []
    # the default preset first, occluded runs after the plain ones
    runs.sort(key=lambda r: (bool(r.get("occlude_s")), _video_preset(r) != DEFAULT_PRESET))
    rows = [[_video_run_name(r), r["clips"], r["frames"], r["pck"], r["found"], r["pck_found"], r["extra_per_frame"],
             r.get("ids_per_person", ""), r.get("split_clips", "")] for r in runs]
    return ["### 2D end to end on video (detector, crops, tracking)", "",
            "Synthetic hand-held-camera clips of held-out LSPET photos (one photo per clip, so 40 clips "
            "are too few to rank two networks a few points apart: the 160-clip run is the one to compare); "
            "PCK@0.2 over all frames (a missed person counts as wrong), the share of frames where the person "
            "was found, PCK on those frames, output poses per frame matching nobody (other people in the "
            "photos count too), distinct ids that followed the annotated person per clip (1 is ideal; "
            "neighbours in crowded photos count too) and the share of clips where that was more than one "
            "(evaluation/eval_video.py; for speed see below). "
            "With an occlusion a grey panel hides the person in the middle of each clip.", "",
            table(["run", "clips", "frames scored", "PCK@0.2", "found %", "PCK where found", "extra poses / frame",
                   "ids per person", "split clips %"], rows), "",
            *[line for r in runs for line in (_cmd(r.get("command", "")), "")]]


def _video_run_name(res: dict) -> str:
    opts = res.get("options", {})
    name = _video_preset(res) + (" + flip test" if opts.get("flip_test") else "")
    if res.get("occlude_s"):
        name += f", hidden {res['occlude_s']:g} s"
    if opts.get("stitch_gap_s") == 0:
        name += ", no stitching"
    return name


def section_3d(mans) -> list:
    res = _load(os.path.join(RESULTS, "results_3d.json"))
    src = "docs/results/results_3d.json"
    if res is None:
        for n, m in mans:
            if m.get("kind") == "3d" and isinstance(m.get("eval"), dict) and "gt_2d" in m["eval"]:
                res, src = m["eval"], f"weights/{n}.json"
                break
    if not isinstance(res, dict):
        return ["### 3D: MPJPE / PA-MPJPE / jitter", "",
                "Not measured yet: run `python -m evaluation.eval_3d --out docs/results/results_3d --manifest "
                "weights/lifter.json`.", ""]
    cols = ["2D input", "group", "frames", "MPJPE (mm)", "PA-MPJPE (mm)", "root depth err (%)",
            "root lateral (mm)", "jitter abs (mm/frame²)", "jitter of ground truth", "jitter rel. to root", "ground truth rel."]
    rows = []
    for inp in ("gt_2d", "noisy_2d", "pose_net_2d", "pose_net_2d_raw_scores", "pose_net_2d_engine"):
        r = res.get(inp)
        if not isinstance(r, dict):
            continue
        groups = [("all", r)] + sorted((r.get("groups") or {}).items())
        for g, v in groups:
            rows.append([inp, g, v.get("frames"), v.get("mpjpe_mm"), v.get("pa_mpjpe_mm"),
                         v.get("root_depth_err_pct"), v.get("root_lateral_mm", "-"), v.get("jitter_mm_per_frame2"), v.get("jitter_gt_mm_per_frame2"),
                         v.get("jitter_rel_mm_per_frame2"), v.get("jitter_rel_gt_mm_per_frame2")])
    return ["### 3D: MPJPE / PA-MPJPE / jitter (lifter, held-out motion capture)", "",
            "MPJPE: mean per-joint position error after aligning the roots; PA-MPJPE: after a "
            "similarity (Procrustes) alignment (Martinez et al., ICCV 2017; Pavllo et al., CVPR 2019). "
            "Root lateral: the root's placement error apart from depth (the predicted root slid along "
            "its ray to the true depth). Jitter: mean norm of the second difference. Source: " + src + ".", "",
            f"{res.get('sequences', '?')} sequences, {res.get('cams_per_clip', '?')} virtual cameras per clip, "
            f"seed {res.get('seed', '?')}, noisy-2D difficulty {res.get('noise_difficulty', '?')}. "
            "pose_net_2d: the fast pose network's own errors, measured on held-out photographs "
            f"({res.get('pose_errors', 'evaluation.pose_errors')}), replayed on the projections, with the "
            "calibrated scores the engine gives the lifter (_raw_scores: its raw heatmap peaks; _engine: "
            "then the engine's smoothing and constant bone lengths, i.e. what the pose file gets).", "",
            table(cols, rows), "", _cmd(res.get("command", "")), ""]


def section_demo_jitter() -> list:
    d = _load(os.path.join(BENCH, "demo.json"))
    if not d:
        return []
    return [f"### Jitter on the sample video (no ground truth): raw lifted vs smoothed", "",
            *_render_bench(d, heading=False)]


# ---------------------------------------------------------------------------- speed
def _machine(m: dict) -> str:
    if not m:
        return ""
    parts = [m.get("gpu") or m.get("cpu", "?"), f"{m.get('cores', '?')} cores"]
    if m.get("loadavg"):
        parts.append(f"load {m['loadavg'][0]}")
    if m.get("torch"):
        parts.append(f"torch {m['torch']}")
    return "Machine: " + ", ".join(str(p) for p in parts)


def _render_bench(d: dict, heading: bool = True) -> list:
    lines = []
    if d.get("stdout") is not None:                    # captured markdown output; its headings
        for ln in d["stdout"].strip().splitlines():    # become bold lines under this page's own
            ln = ln.rstrip()
            lines.append(f"**{ln.lstrip('#').strip()}**" if ln.startswith("#") else ln)
        lines.append("")
    for t in d.get("tables", []):
        if heading and t.get("title"):
            lines += [f"**{t['title']}**", ""]
        lines += [table(t["columns"], t["rows"]), ""]
    if d.get("notes"):
        lines += [d["notes"], ""]
    meta = [_cmd(d.get("command", ""))]
    if d.get("date"):
        meta.append(f"Date: {d['date']}")
    if d.get("machine"):
        meta.append(_machine(d["machine"]))
    lines += ["  \n".join(meta), ""]
    return lines


def _natural(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def _merge_captured(docs: list):
    """Captured outputs that each print one markdown table with the same header -> one table
    (a row per run, in order) and the list of commands; None when they do not fit that shape."""
    header, rows, cmds = None, [], []
    for d in docs:
        if d.get("stdout") is None or d.get("tables"):
            return None
        tab = [ln.strip() for ln in d["stdout"].splitlines() if ln.strip().startswith("|")]
        if len(tab) < 3 or (header is not None and tab[:2] != header):
            return None
        header = tab[:2]
        rows += tab[2:]
        cmds.append(d.get("command", ""))
    first = docs[0]
    out = header + rows + [""]
    out += ["Commands (one per row):", ""] + [f"- `{c}`" for c in cmds] + [""]
    dates = sorted(d.get("date", "") for d in docs if d.get("date"))
    if dates:
        out.append(f"Dates: {dates[0]} to {dates[-1]}  ")
    if first.get("machine"):
        out.append(_machine(first["machine"]))
    return out + [""]


def section_speed() -> list:
    files = sorted(f for f in os.listdir(BENCH) if f.endswith(".json")) if os.path.isdir(BENCH) else []
    docs = {f[:-5]: _load(os.path.join(BENCH, f)) for f in files}
    docs = {k: v for k, v in docs.items() if isinstance(v, dict) and k != "demo"}
    lines, used = [], set()
    for prefix, title in SPEED_ORDER + [("", "Other")]:
        names = sorted((k for k in docs if k not in used and k.startswith(prefix)), key=_natural)
        if not names:
            continue
        lines += [f"### {title}", ""]
        used.update(names)
        merged = _merge_captured([docs[k] for k in names]) if len(names) > 1 else None
        if merged:
            lines += merged
            continue
        for k in names:
            if len(names) > 1:
                lines += [f"#### {k}", ""]
            lines += _render_bench(docs[k])
    if not lines:
        lines = ["No benchmark results yet: run the scripts in benchmarks/ (see the list below).", ""]
    return lines


def build() -> str:
    mans = manifests()
    commit = ""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    lines = ["# Report: accuracy and speed", "",
             f"Generated by `python -m evaluation.report` on {datetime.date.today().isoformat()}"
             f"{' at commit ' + commit if commit else ''}. Every table names the command that made it; "
             "`python -m evaluation.report --run-all` re-runs them all (hours on a CPU), then rebuilds this page.", "",
             "## Accuracy", ""]
    lines += section_2d(mans)
    lines += section_video()
    lines += section_3d(mans)
    lines += section_demo_jitter()
    lines += ["## Speed", ""]
    lines += section_speed()
    lines += ["## Re-running every number", "", "```sh"] + [".venv/bin/" + c for c in RUN_ALL] + \
             [".venv/bin/python -m evaluation.report", "```", ""]
    return "\n".join(lines)


def capture(name: str, cmd: list) -> int:
    """Run cmd (in the repository), keep its stdout and the command in docs/results/bench/<name>.json."""
    if cmd and cmd[0] in ("python", "python3"):
        cmd = [sys.executable] + cmd[1:]
    env = dict(os.environ, PYTHONPATH=REPO)
    r = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)
    if r.returncode != 0:
        print(f"report: {' '.join(cmd)} failed with status {r.returncode}; nothing recorded", file=sys.stderr)
        return 1
    shown = ["python" if c == sys.executable else c for c in cmd]
    os.makedirs(BENCH, exist_ok=True)
    doc = {"benchmark": name, "command": ".venv/bin/" + " ".join(shlex.quote(c) for c in shown),
           "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"), "machine": machine(), "stdout": r.stdout}
    path = os.path.join(BENCH, f"{name}.json")
    with open(path + ".tmp", "w") as fh:
        json.dump(doc, fh, indent=1)
    os.replace(path + ".tmp", path)
    sys.stdout.write(r.stdout)
    print(f"wrote {os.path.relpath(path, REPO)}", file=sys.stderr)
    return 0


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--capture" in argv:
        i = argv.index("--capture")
        if i + 1 >= len(argv) or "--" not in argv:
            print("usage: python -m evaluation.report --capture NAME -- CMD ARGS...", file=sys.stderr)
            return 2
        return capture(argv[i + 1], argv[argv.index("--") + 1:])
    ap = argparse.ArgumentParser(prog="python -m evaluation.report", description=__doc__.split("\n\n")[0])
    ap.add_argument("--run-all", action="store_true", help="re-run every command first (long)")
    ap.add_argument("-o", "--output", default=OUT)
    args = ap.parse_args(argv)
    if args.run_all:
        for c in RUN_ALL:
            parts = shlex.split(c)
            parts[0] = sys.executable
            print(f"report: running {c}", file=sys.stderr, flush=True)
            r = subprocess.run(parts, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO))
            if r.returncode != 0:
                print(f"report: {c} failed ({r.returncode}); going on", file=sys.stderr)
    text = build()
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output + ".tmp", "w", encoding="utf-8") as fh:
        fh.write(text)
    os.replace(args.output + ".tmp", args.output)
    print(f"wrote {os.path.relpath(args.output, REPO)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
