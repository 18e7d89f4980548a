"""Train the 2D -> 3D lifter on the mocap clips with random virtual cameras (CPU).

    OMP_WAIT_POLICY=PASSIVE nohup .venv/bin/python -m training.train_3d --run runs/lifter_tcn27 \
        --arch tcn --filter-widths 3 3 3 --minutes 35 > /dev/null 2>&1 &
    .venv/bin/python -m training.train_3d --run runs/lifter_tcn27 --export weights/lifter
    .venv/bin/python -m training.train_3d --run runs/lifter_tcn27 --validate A.pt B.pt [--average-out AVG.pt]

Resumable: the run folder holds ``last.pt`` (model, optimiser, step), ``best.pt`` (lowest
validation loss on every 10th training clip, which is not trained on), ``config.json`` and
``train.log``.  Re-running the same command continues from ``last.pt`` until ``--steps`` is reached.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

import numpy as np
import torch

from data import mocap
from data.cameras import corrupt_2d, mirror_world, project_normalized, sample_cameras, world_to_camera
from data.pose_noise import fill_unseen, replay_errors
from evaluation.pose_errors import load_errors, shown_path
from inference.core import score_calibration
from inference.models.lifter import build_model, PELVIS, pose_features, split_output
from inference.stages.lifting import Lifter
from training.loop import average_checkpoints


class PairSampler:
    """Random (2D window, 3D centre-frame target) pairs from one split of the mocap set."""

    def __init__(self, ms: mocap.MocapSet, split: str | np.ndarray, T: int, rate=(0.7, 1.4), p_clean=0.2,
                 max_difficulty=1.0, pose_errors: dict | None = None, p_replay: float = 0.0):
        """split: a split name of ms, or the clip indices themselves."""
        self.ms, self.T = ms, int(T)
        self.clips = ms.indices(split) if isinstance(split, str) else np.asarray(split)
        lens = ms.lengths[self.clips].astype(np.float64)
        self.p = lens / lens.sum()
        self.rate, self.p_clean, self.max_difficulty = rate, p_clean, max_difficulty
        # A share p_replay of the windows gets a pose network's measured errors instead of the
        # noise model (pose_noise.replay_errors), with that network's scores calibrated.
        self.pose_errors, self.p_replay = pose_errors, float(p_replay if pose_errors is not None else 0.0)
        if self.p_replay:
            self.filled = fill_unseen(pose_errors, np.random.default_rng(0))

    def windows(self, B: int, rng: np.random.Generator) -> np.ndarray:
        """World joints (B, T, 16, 3) for random windows (time-stretched, edge-padded, mirrored)."""
        ms, T = self.ms, self.T
        c = rng.choice(self.clips, B, p=self.p)
        L = ms.lengths[c]
        centre = rng.uniform(0, L - 1)
        r = rng.uniform(*self.rate, B)
        t = centre[:, None] + (np.arange(T) - T // 2)[None, :] * r[:, None]
        t = np.clip(t, 0, (L - 1)[:, None])
        i0 = np.floor(t).astype(np.int64)
        i1 = np.minimum(i0 + 1, (L - 1)[:, None])
        a = (t - i0)[..., None, None]
        base = ms.starts[c][:, None]
        X0 = ms.rel[base + i0].astype(np.float32) + ms.root[base + i0][:, :, None, :]
        X1 = ms.rel[base + i1].astype(np.float32) + ms.root[base + i1][:, :, None, :]
        X = (1 - a) * X0 + a * X1
        flip = rng.random(B) < 0.5
        X[flip] = mirror_world(X[flip])
        return X

    def batch(self, B: int, rng: np.random.Generator, difficulty: np.ndarray | None = None):
        """feats (B, T, 50) float32, rel3d (B, 16, 3) metres, logc (B,), ok (B,) bool."""
        X = self.windows(B, rng)
        cams = sample_cameras(X[:, :, PELVIS].mean(1), rng)
        Xc = world_to_camera(X.astype(np.float64), cams)
        ok = (Xc[..., 2] > 0.3).all(axis=(1, 2))
        Xc[..., 2] = np.maximum(Xc[..., 2], 0.3)  # only touches samples masked out by ok
        xn = project_normalized(Xc)
        f = cams.K[:, 0, 0][:, None, None, None]
        cxy = cams.K[:, :2, 2][:, None, None, :]
        uv = xn * f + cxy
        size = cams.size[:, None, None, :]
        in_img = ((uv >= 0) & (uv <= size - 1)).all(-1)
        if difficulty is None:
            difficulty = rng.uniform(0, self.max_difficulty, B)
            difficulty[rng.random(B) < self.p_clean] = 0.0
        # Each window gets either the noise model or (a share p_replay) the replayed errors.
        r = rng.random(B) < self.p_replay if self.p_replay else np.zeros(B, bool)
        noisy = np.zeros_like(xn)
        scores = np.zeros(xn.shape[:-1], np.float32)
        if not r.all():
            noisy[~r], scores[~r] = corrupt_2d(xn[~r], difficulty[~r], rng, in_image=in_img[~r])
        if r.any():
            n_r, s_r = replay_errors(xn[r], self.pose_errors, rng, in_image=in_img[r], filled=self.filled)
            noisy[r] = n_r
            scores[r] = score_calibration.apply(self.pose_errors.get("calibration"), s_r)
        feats, _, k, valid = pose_features(noisy, scores)
        cidx = self.T // 2
        rel = Xc[:, cidx] - Xc[:, cidx, PELVIS:PELVIS + 1]
        with np.errstate(invalid="ignore", divide="ignore"):
            logc = np.log(Xc[:, cidx, PELVIS, 2] / k[:, cidx])
        ok &= valid[:, cidx] & np.isfinite(logc)
        return feats, rel.astype(np.float32), np.nan_to_num(logc).astype(np.float32), ok


def lifter_loss(out: torch.Tensor, rel: torch.Tensor, logc: torch.Tensor, ok: torch.Tensor,
                w_depth: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """out (B, 49); returns (loss, mpjpe in m, |log depth error|), averaged over ok samples."""
    p_rel, p_c = split_output(out)
    okf = ok.float()
    n = okf.sum().clamp(min=1)
    mp = (torch.linalg.norm(p_rel - rel, dim=-1).mean(-1) * okf).sum() / n
    dz = ((p_c - logc).abs() * okf).sum() / n
    return mp + w_depth * dz, mp, dz


def _log(path, msg):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    with open(path, "a") as f:
        f.write(line + "\n")


ARCH_KEYS = ("arch", "filter_widths", "channels", "hidden", "blocks")


def _init_config(manifest_path: str, cfg: dict, grow: bool = False, widen: bool = False) -> dict:
    """Fine-tuning from shipped weights: the architecture is taken from their manifest (so the
    weights fit) and the start is recorded in the run's config.  With grow, the run keeps its own
    (deeper) filter widths, which must extend the manifest's (TemporalLifter.load_grown); with
    widen, its own channel count, which must be larger (TemporalLifter.load_widened)."""
    if grow and widen:
        raise SystemExit("--grow and --widen: one at a time (grow, export, then widen)")
    with open(manifest_path) as f:
        man = json.load(f)
    if man.get("kind") != "3d":
        raise SystemExit(f"--init {manifest_path}: not a lifter manifest (kind {man.get('kind')!r})")
    arch = {k: man["config"][k] for k in ARCH_KEYS if k in man["config"]}
    if grow:
        old_fw, fw = list(arch.get("filter_widths", [])), list(cfg.get("filter_widths", []))
        if arch.get("arch") != "tcn" or cfg.get("arch") != "tcn" or len(fw) <= len(old_fw) \
                or fw[:len(old_fw)] != old_fw:
            raise SystemExit(f"--grow: filter widths {fw} do not extend the manifest's {old_fw}")
        arch["filter_widths"] = fw
    if widen:
        old_ch, ch = int(arch.get("channels", 0)), int(cfg.get("channels", 0))
        if arch.get("arch") != "tcn" or cfg.get("arch") != "tcn" or ch <= old_ch:
            raise SystemExit(f"--widen: {ch} channels is not wider than the manifest's {old_ch}")
        arch["channels"] = ch
    start = {"manifest": _shown_path(manifest_path), "sha256": man["sha256"],
             "trained_steps": int(man["config"].get("trained_steps", 0))}
    if grow:
        start["grown_from_filter_widths"] = old_fw
    if widen:
        start["widened_from_channels"] = old_ch
    return {**{k: v for k, v in cfg.items() if k not in ARCH_KEYS}, **arch, "init_from": start}


_shown_path = shown_path  # path relative to the repository when inside it (evaluation.pose_errors)


VAL_EVERY = 10


def train_val_clips(ms: mocap.MocapSet, every: int = VAL_EVERY) -> tuple[np.ndarray, np.ndarray]:
    """The training clips split in two: every `every`-th by name picks the best checkpoint and is
    not trained on, so that the held-out test clips are left to eval_3d alone."""
    tr = ms.indices("train")
    val = np.sort(tr[np.argsort(ms.names[tr], kind="stable")][::every])
    return np.setdiff1d(tr, val), val


def _init_weights(manifest_path: str) -> dict:

    return Lifter.load(manifest_path).model.state_dict()     # sha256 checked, fp16 -> fp32


def _replay(cfg: dict) -> dict:
    """PairSampler's replay arguments for a config with pose_errors (else none)."""
    if not cfg.get("pose_errors"):
        return {}

    path = cfg["pose_errors"]
    if not os.path.isabs(path):
        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), path)
    return {"pose_errors": load_errors(path), "p_replay": cfg["p_replay"]}


def _validation_batches(va: PairSampler) -> list:
    """The fixed validation windows (same seed every run and resume)."""
    vrng = np.random.default_rng(12345)
    val = [va.batch(512, vrng) for _ in range(4)]
    return [tuple(torch.from_numpy(np.asarray(a)) for a in b) for b in val]


@torch.no_grad()
def _val_loss(model, val: list, w_depth: float) -> np.ndarray:
    """(loss, mpjpe m, dlogz) of the model in eval mode over the validation windows."""
    model.eval()
    return np.mean([[x.item() for x in lifter_loss(model(b[0])[:, 0], b[1], b[2], b[3], w_depth)]
                    for b in val], 0)


def validate(run: str, checkpoints: list, average_out: str | None = None, threads: int = 1,
             ms: mocap.MocapSet | None = None) -> list[dict]:
    """The run's validation figures (its training-clip validation windows, as during training)
    for each checkpoint; with average_out, also for the mean of their weights (written there,
    training.loop.average_checkpoints), so a checkpoint can be picked without the test clips."""

    torch.set_num_threads(threads)
    with open(os.path.join(run, "config.json")) as f:
        cfg = json.load(f)
    paths = list(checkpoints)
    if average_out:
        paths.append(str(average_checkpoints(checkpoints, average_out)))
    model = build_model(cfg)
    ms = ms if ms is not None else mocap.load(log=lambda m: None)
    _, va_clips = train_val_clips(ms)
    val = _validation_batches(PairSampler(ms, va_clips, model.receptive_field, **_replay(cfg)))
    out = []
    for p in paths:
        ck = torch.load(p, map_location="cpu", weights_only=False)
        model.load_state_dict(ck["model"])
        r = _val_loss(model, val, cfg["w_depth"])
        out.append({"checkpoint": p, "step": int(ck.get("step", -1)), "averaged_from": ck.get("averaged_from"),
                    "val_loss": round(float(r[0]), 5), "val_mpjpe_mm": round(float(r[1]) * 1000, 2),
                    "val_dlogz": round(float(r[2]), 5)})
    return out


def save_snapshot(run: str, step: int, model_state: dict, cfg: dict, keep: int) -> str:
    """<run>/snapshots/step_<step>.pt (weights, step, config; no optimiser) and only the newest
    `keep` of them: the checkpoints that --validate ... --average-out compares and averages."""
    d = os.path.join(run, "snapshots")
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, f"step_{step}.pt")
    torch.save({"model": model_state, "step": step, "config": cfg}, path + ".tmp")
    os.replace(path + ".tmp", path)
    steps = sorted(int(n[5:-3]) for n in os.listdir(d) if n.startswith("step_") and n.endswith(".pt"))
    for old in steps[:-keep]:
        os.remove(os.path.join(d, f"step_{old}.pt"))
    return path


def train(args) -> None:
    torch.set_num_threads(args.threads)
    os.makedirs(args.run, exist_ok=True)
    cfg_path = os.path.join(args.run, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            cfg = json.load(f)
    else:
        if args.arch == "tcn":
            cfg = {"arch": "tcn", "filter_widths": args.filter_widths, "channels": args.channels,
                   "dropout": args.dropout}
        else:
            cfg = {"arch": "mlp", "hidden": args.hidden, "blocks": args.blocks, "dropout": args.dropout}
        cfg.update({"batch": args.batch, "lr": args.lr, "lr_final": args.lr_final, "steps": args.steps,
                    "w_depth": args.w_depth, "seed": args.seed})
        if args.pose_errors:
            cfg.update({"pose_errors": _shown_path(args.pose_errors), "p_replay": args.p_replay})
        if args.init:
            cfg.update(_init_config(args.init, cfg, grow=args.grow, widen=args.widen))
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
    log = os.path.join(args.run, "train.log")
    model = build_model(cfg)
    T = model.receptive_field
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"])
    gamma = (cfg["lr_final"] / cfg["lr"]) ** (1.0 / cfg["steps"])
    step, best = 0, float("inf")
    last = os.path.join(args.run, "last.pt")
    if "init_from" in cfg and not os.path.exists(last):
        state = _init_weights(cfg["init_from"]["manifest"])
        if "grown_from_filter_widths" in cfg["init_from"]:
            _log(log, f"grown by {model.load_grown(state)} residual block(s) from "
                      f"{cfg['init_from']['grown_from_filter_widths']}")
        elif "widened_from_channels" in cfg["init_from"]:
            _log(log, f"widened from {model.load_widened(state)} to {cfg['channels']} channels")
        else:
            model.load_state_dict(state)
    if os.path.exists(last):
        ck = torch.load(last, weights_only=True)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        step, best = int(ck["step"]), float(ck["best"])
        _log(log, f"resumed at step {step}, best val {best:.4f}")
    ms = mocap.load(log=lambda m: _log(log, m))
    replay = _replay(cfg)
    if "val_clips" not in cfg:  # runs before session 9 picked their checkpoint on the test clips
        cfg["val_clips"] = f"every {VAL_EVERY}th training clip by name (not trained on)"
        with open(cfg_path, "w") as f:
            json.dump(cfg, f, indent=1)
    tr_clips, va_clips = train_val_clips(ms)
    tr = PairSampler(ms, tr_clips, T, **replay)
    va = PairSampler(ms, va_clips, T, **replay)
    val = _validation_batches(va)
    n_par = sum(p.numel() for p in model.parameters())
    _log(log, f"config {json.dumps(cfg)} rf={T} params={n_par} train_frames="
              f"{int(ms.lengths[tr.clips].sum())} val_frames={int(ms.lengths[va.clips].sum())} "
              f"(test clips, not used here: {len(ms.indices('test'))})")
    t_end = time.time() + 60 * args.minutes
    t0, acc = time.time(), []

    def save(path):
        tmp = path + ".tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step, "best": best,
                    "config": cfg}, tmp)
        os.replace(tmp, path)

    while step < cfg["steps"] and time.time() < t_end:
        rng = np.random.default_rng([cfg["seed"], step])
        feats, rel, logc, ok = (torch.from_numpy(np.asarray(a)) for a in tr.batch(cfg["batch"], rng))
        model.train()
        out = model(feats)[:, 0]
        loss, mp, dz = lifter_loss(out, rel, logc, ok, cfg["w_depth"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        for g in opt.param_groups:
            g["lr"] = cfg["lr"] * gamma ** (step + 1)
        acc.append((loss.item(), mp.item(), dz.item()))
        step += 1
        if step % args.log_every == 0:
            a = np.mean(acc, 0)
            acc = []
            _log(log, f"step {step} loss {a[0]:.4f} mpjpe {a[1] * 1000:.1f}mm dlogz {a[2]:.4f} "
                      f"lr {opt.param_groups[0]['lr']:.2e} {(time.time() - t0) / args.log_every:.3f}s/step")
            t0 = time.time()
        if step % args.val_every == 0 or step == cfg["steps"]:
            r = _val_loss(model, val, cfg["w_depth"])
            improved = r[0] < best
            if improved:
                best = float(r[0])
                save(os.path.join(args.run, "best.pt"))
            _log(log, f"VAL step {step} loss {r[0]:.4f} mpjpe {r[1] * 1000:.1f}mm dlogz {r[2]:.4f}"
                      + (" *best" if improved else ""))
            save(last)
            if args.keep_snapshots:
                save_snapshot(args.run, step, model.state_dict(), cfg, args.keep_snapshots)
    save(last)
    if step < cfg["steps"]:   # the time budget ran out first: say so, since --minutes has a default
        _log(log, f"stopped at step {step} of {cfg['steps']}: the --minutes {args.minutes:g} budget is spent; "
                  "run the same command again to continue from last.pt")
    else:
        _log(log, f"stopped at step {step}: done")


def export(run: str, out_stem: str, fp16: bool = True, checkpoint: str | None = None) -> dict:
    """A run's checkpoint (default its best.pt; e.g. an --average-out mean) -> weights/<name>.pt
    (+ manifest .json, eval filled by eval_3d)."""
    ck = torch.load(checkpoint or os.path.join(run, "best.pt"), weights_only=True)
    sd = {k: (v.half() if fp16 and v.is_floating_point() else v) for k, v in ck["model"].items()}
    path = out_stem + ".pt"
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    torch.save(sd, path)
    with open(path, "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    cfg = {k: ck["config"][k] for k in ck["config"]}
    prior = int(cfg.get("init_from", {}).get("trained_steps", 0))
    if ck.get("averaged_from"):           # training.loop.average_checkpoints
        cfg["weights_averaged_over_steps"] = [prior + int(s) for s in ck["averaged_from"]]
    cfg.update({"trained_steps": prior + int(ck["step"]), "dtype": "float16" if fp16 else "float32",
                "input": "pose_features: normalised 2D ((u-cx)/fx), root-centred, / square-box side; scores; root ray",
                "output": "root-relative joints (m, camera axes) + log correction of RootNet depth",
                "a_real_m2": 4.0, "joint_names": list(mocap.JOINT_NAMES)})
    man_path = out_stem + ".json"
    old = {}
    if os.path.exists(man_path):
        with open(man_path) as f:
            old = json.load(f)
    man = {"kind": "3d", "file": os.path.basename(path), "sha256": sha, "config": cfg,
           "data": ("shared/data/mocap: CMU (cmu_dance_martial_acrnn, cmu_walk_cs229; CMU terms: data from "
                    "mocap.cs.cmu.edu, created with funding from NSF EIA-0196217) and Bandai Namco Research "
                    "Motion Dataset 1 + 2 subset (CC BY-NC 4.0, Kobayashi et al. 2023, arXiv 2306.08861). "
                    "Trained on Bandai data: these weights are for NON-COMMERCIAL use only. Held-out clips: "
                    "see docs/lifter.md."),
           "licence": "CC BY-NC 4.0 (inherited from the Bandai Namco training data)",
           "eval": old.get("eval", {})}
    with open(man_path, "w") as f:
        json.dump(man, f, indent=1)
    return man


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", required=True)
    ap.add_argument("--arch", choices=["tcn", "mlp"], default="tcn")
    ap.add_argument("--filter-widths", type=int, nargs="+", default=[3, 3, 3])
    ap.add_argument("--channels", type=int, default=256)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--blocks", type=int, default=2)
    ap.add_argument("--dropout", type=float, default=0.1)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--lr-final", type=float, default=2e-5)
    ap.add_argument("--steps", type=int, default=8000)
    ap.add_argument("--w-depth", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=38.0,
                    help="time budget of this invocation (default 38); the run stops early and resumes later")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--val-every", type=int, default=500)
    ap.add_argument("--init", metavar="MANIFEST", help="start from these lifter weights (e.g. weights/lifter.json; "
                    "architecture from its manifest) instead of random ones")
    ap.add_argument("--pose-errors", metavar="NPZ", help="a pose network's measured errors on the LSP training "
                    "images (python -m evaluation.pose_errors --train-out NPZ), replayed on a share of the windows")
    ap.add_argument("--p-replay", type=float, default=0.5, help="share of windows with --pose-errors replayed")
    ap.add_argument("--grow", action="store_true", help="with --init: keep --filter-widths (which must extend the "
                    "manifest's, e.g. 3 3 3 -> 3 3 3 3) and start the added blocks near identity")
    ap.add_argument("--widen", action="store_true", help="with --init: keep --channels (which must exceed the "
                    "manifest's, e.g. 256 -> 512); the trained channels compute what they did, the added ones learn")
    ap.add_argument("--export", metavar="STEM", help="export best.pt (or --checkpoint) to STEM.pt + STEM.json and exit")
    ap.add_argument("--checkpoint", metavar="CKPT", help="with --export: this checkpoint of the run instead of best.pt")
    ap.add_argument("--keep-snapshots", type=int, default=0, metavar="N",
                    help="also keep the weights of the newest N validations in <run>/snapshots/step_<step>.pt, "
                         "for --validate ... --average-out (default 0: none)")
    ap.add_argument("--fp32", action="store_true")
    ap.add_argument("--validate", nargs="+", metavar="CKPT", help="print the run's validation figures for "
                    "these checkpoints and exit")
    ap.add_argument("--average-out", metavar="PATH", help="with --validate: also write the mean of their weights "
                    "here and validate it")
    args = ap.parse_args(argv)
    if args.keep_snapshots < 0:
        ap.error("--keep-snapshots must be 0 or more")
    if args.checkpoint and not args.export:
        ap.error("--checkpoint goes with --export")
    if args.validate:
        print(json.dumps(validate(args.run, args.validate, args.average_out, args.threads), indent=1))
        return 0
    if args.export:
        print(json.dumps(export(args.run, args.export, fp16=not args.fp32, checkpoint=args.checkpoint), indent=1))
        return 0
    train(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
