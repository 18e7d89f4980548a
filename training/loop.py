"""The training loop both 2D networks share: device choice, resume, schedule, logging and
checkpoints. A script supplies the model, a batch maker and a loss.

Checkpoint `<out>/last.pt` holds the model, optimiser, step, random state, arguments and the
network config; it is written every `ckpt_every` steps, on SIGTERM, on Ctrl-C and when the time
budget ends, so a run can be spread over sessions (resume = run the same command again).
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from data.records import DatasetError


def run_command(name: str, parse_args: Callable, train: Callable, argv=None) -> int:
    """A training command line: parse argv, train, 0; a data set problem is reported on one line
    (``name: message``), 1."""
    args = parse_args(argv)
    try:
        train(args)
    except DatasetError as e:
        print(f"{name}: {e}", file=sys.stderr)
        return 1
    return 0


def lr_at(step: int, total: int, base: float, warmup: int = 200) -> float:
    """Linear warm-up, then cosine decay to ~0 at `total`."""
    if step < warmup:
        return base * (step + 1) / warmup
    t = min(1.0, (step - warmup) / max(1, total - warmup))
    return 1e-6 + 0.5 * (base - 1e-6) * (1 + math.cos(math.pi * t))


def lr_by_time(step_at_start: int, total: int, base: float, elapsed: float, budget: float,
               warmup: int = 200, step: int | None = None) -> float:
    """The cosine of lr_at, continued from where a resumed run starts and stretched over a
    wall-clock budget instead of steps, so that a run on a shared CPU (whose speed is not known
    in advance) is fully annealed when its time is up. `step` (the current one) only matters
    during the warm-up of a run that starts before its end."""
    step = step_at_start if step is None else step
    if step < warmup:
        return lr_at(step, total, base, warmup)
    t0 = min(1.0, max(0, step_at_start - warmup) / max(1, total - warmup))
    t = t0 + (1.0 - t0) * min(1.0, elapsed / max(budget, 1e-9))
    return 1e-6 + 0.5 * (base - 1e-6) * (1 + math.cos(math.pi * t))


def save_checkpoint(path: Path, model, opt, step: int, rng: np.random.Generator, args: dict):
    tmp = path.with_suffix(".tmp")
    torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "step": step,
                "rng": rng.bit_generator.state, "args": args, "config": model.cfg.to_dict()}, tmp)
    os.replace(tmp, path)


def compact_checkpoint(src: str | os.PathLike, dst: str | os.PathLike) -> Path:
    """A resumable checkpoint a sixth the size: fp16 weights, step, random state and arguments,
    no optimiser state (the resumed run starts a fresh AdamW, as a warm restart does anyway).
    For committing a run that a later session, or a machine with a size limit, goes on with."""
    state = torch.load(src, map_location="cpu", weights_only=False)
    state["model"] = {k: v.half() if v.is_floating_point() else v for k, v in state["model"].items()}
    state["opt"] = None
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, dst)
    return dst


def average_checkpoints(srcs, dst: str | os.PathLike) -> Path:
    """One checkpoint whose weights are the mean of several snapshots of the same run (stochastic
    weight averaging, Izmailov et al. 2018): taken along the low end of a cosine, the mean often
    generalises a little better than any one of them. BatchNorm running statistics are averaged
    too (the snapshots are close, so their means and variances are nearly the same); integer
    buffers and every other field come from the last snapshot, and no optimiser state is kept."""
    if not srcs:
        raise ValueError("average_checkpoints needs at least one checkpoint")
    states = [torch.load(s, map_location="cpu", weights_only=False) for s in srcs]
    keys = states[-1]["model"].keys()
    if any(st["model"].keys() != keys for st in states):
        raise ValueError("the checkpoints hold different networks")
    out = dict(states[-1], opt=None, averaged_from=[int(st.get("step", -1)) for st in states])
    out["model"] = {}
    for k, last in states[-1]["model"].items():
        if last.is_floating_point():
            mean = sum(st["model"][k].double() for st in states) / len(states)
            out["model"][k] = mean.to(last.dtype)
        else:
            out["model"][k] = last.clone()
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, dst)
    return dst


_BATCH_FN: Callable | None = None     # the batch maker the forked workers inherit


def _worker_init() -> None:
    """A forked batch worker must die on SIGTERM: it inherits the run's handler (which only
    sets a flag), and Pool.terminate, which holds the task queue's lock while it stops the
    workers, would otherwise wait forever on a worker blocked on that lock (it happened)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)      # Ctrl-C is the training process's to handle


def _seeded_batch(seed: list[int]):
    torch.set_num_threads(1)
    return _BATCH_FN(np.random.default_rng(seed))


class _Batches:
    """make_batch(rng) for step after step: in this process from the run's generator, or with
    `workers` forked processes a few steps ahead, each step from its own generator seeded with
    (seed, step), so the batches do not depend on the number of workers or on where a run
    resumed. The workers are for a GPU, which one process cannot keep fed with augmented crops."""

    def __init__(self, make_batch: Callable, rng: np.random.Generator, workers: int, seed: int, step: int):
        global _BATCH_FN
        self.make, self.rng, self.seed, self.next_step = make_batch, rng, seed, step
        self.pool, self.pending = None, []
        if workers > 0:
            _BATCH_FN = make_batch
            self.pool = mp.get_context("fork").Pool(workers, initializer=_worker_init)
            self.pending = [self._submit() for _ in range(2 * workers)]

    def _submit(self):
        job = self.pool.apply_async(_seeded_batch, ([self.seed, self.next_step],))
        self.next_step += 1
        return job

    def __call__(self):
        if self.pool is None:
            return self.make(self.rng)
        out = self.pending.pop(0).get()
        self.pending.append(self._submit())
        return out

    def close(self):
        if self.pool is not None:
            self.pool.terminate()


def pick_device(name: str, threads: int) -> torch.device:
    device = torch.device("cuda" if torch.cuda.is_available() and name != "cpu" else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(threads)
    return device


def run(model, make_batch: Callable, loss_fn: Callable, args, rng: np.random.Generator,
        device: torch.device, images_per_epoch: int | None = None, clip_grad: float = 0.0) -> Path:
    """Train `model` until args.steps, args.minutes or a stop signal.

    make_batch(rng) -> (x (B,3,S,S), *targets) tensors on the CPU; loss_fn(outs, *targets) -> scalar.
    args needs: out, steps, minutes, batch, lr, fresh, log_every, ckpt_every (optional: warmup,
    workers: processes making batches ahead, seeded per step; seed); with
    args.anneal_by_time (and minutes) the cosine ends when the time budget does (lr_by_time).
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cpu = device.type == "cpu"
    model.to(device)
    if cpu:  # NHWC convolutions are about twice as fast on the CPU (measured here)
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step = 0
    ckpt = out / "last.pt"
    if ckpt.exists() and not args.fresh:
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        if state.get("opt") is not None:     # a compact checkpoint restarts the optimiser
            opt.load_state_dict(state["opt"])
        step = state["step"]
        rng.bit_generator.state = state["rng"]
        print(f"resumed from {ckpt} at step {step}", flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))
    t_start, step_start = time.time(), step
    t_end = t_start + args.minutes * 60 if args.minutes else float("inf")
    by_time = bool(getattr(args, "anneal_by_time", False) and args.minutes)
    warmup = getattr(args, "warmup", 200)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if not cpu
                else torch.autocast("cpu", enabled=False))
    model.train()
    batches = _Batches(make_batch, rng, getattr(args, "workers", 0) or 0, getattr(args, "seed", 0), step)
    t0, seen, run_loss = time.time(), 0, 0.0
    with open(out / "log.jsonl", "a") as log:
        try:
            # Annealed by time, the run ends with its time budget: a step cap reached first would
            # stop it with the learning rate still high (it happened: session 4 lost 45 minutes).
            while (by_time or step < args.steps) and not stop["now"] and time.time() < t_end:
                x, *targets = (t.to(device, non_blocking=True) for t in batches())
                if cpu:
                    x = x.contiguous(memory_format=torch.channels_last)
                for g in opt.param_groups:
                    g["lr"] = (lr_by_time(step_start, args.steps, args.lr, time.time() - t_start,
                                          args.minutes * 60, warmup, step=step) if by_time
                               else lr_at(step, args.steps, args.lr, warmup))
                with autocast:
                    outs = model(x)
                loss = loss_fn(outs, *targets)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                if clip_grad:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
                opt.step()
                step += 1
                seen += len(x)
                run_loss += loss.item()
                if step % args.log_every == 0:
                    rec = {"step": step, "loss": run_loss / args.log_every, "lr": opt.param_groups[0]["lr"],
                           "images_per_s": seen / (time.time() - t0), "time": time.time()}
                    if images_per_epoch:
                        rec["epoch"] = step * args.batch / images_per_epoch
                    log.write(json.dumps(rec) + "\n")
                    log.flush()
                    print(json.dumps(rec), flush=True)
                    t0, seen, run_loss = time.time(), 0, 0.0
                if step % args.ckpt_every == 0:
                    save_checkpoint(ckpt, model, opt, step, rng, vars(args))
                snap = getattr(args, "snapshot_every", 0) or 0
                if snap and step % snap == 0:     # compact (no optimiser): for evaluating a run as it goes
                    path = out / f"step_{step:06d}.pt"
                    save_checkpoint(path, model, opt, step, rng, vars(args))
                    compact_checkpoint(path, path)
        except KeyboardInterrupt:
            print("interrupted: saving checkpoint", flush=True)
        finally:
            batches.close()
    save_checkpoint(ckpt, model, opt, step, rng, vars(args))
    print(f"stopped at step {step}; checkpoint {ckpt}", flush=True)
    return ckpt


def main(argv=None) -> int:
    """Command line (``video-mocap-checkpoint``): compact a checkpoint or average snapshots."""
    ap = argparse.ArgumentParser(description="python -m training.loop --compact SRC DST | "
                                             "--average DST SRC [SRC ...]")
    mode = ap.add_mutually_exclusive_group(required=True)
    mode.add_argument("--compact", nargs=2, metavar=("SRC", "DST"))
    mode.add_argument("--average", nargs="+", metavar="PATH", help="DST then the snapshots to average")
    a = ap.parse_args(argv)
    if a.average and len(a.average) < 2:
        ap.error("--average needs DST and at least one snapshot")
    out = compact_checkpoint(*a.compact) if a.compact else average_checkpoints(a.average[1:], a.average[0])
    print(f"{out}: {out.stat().st_size / 2 ** 20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
