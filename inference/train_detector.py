"""Train the person detector (pelvis-centre heatmap + box) on multi-person mosaics.

    python -m inference.train_detector --out runs/detector_fast [--steps 3000] [--minutes 60]

Same habits as train_2d: resumable checkpoint `<out>/last.pt`, JSON-lines log, bf16 on CUDA.
Heatmap loss: the penalty-reduced focal loss of CenterNet (Zhou et al. 2019, "Objects as
Points"); box loss: L1 at the cells around each pelvis.
"""
from __future__ import annotations

import argparse
import json
import signal
import time
from pathlib import Path

import numpy as np
import torch

from .models.hourglass import StackedHourglass
from .presets import DETECTOR_PRESETS
from .preprocess import to_tensor
from .train_2d import lr_at, save_checkpoint
from .training.lsp import load_or_build_cache
from .training.mosaic import MosaicConfig, compose, detector_targets


def make_batch(data, pool, n: int, rng, cfg: MosaicConfig = MosaicConfig()):
    imgs, heats, regs, masks = [], [], [], []
    for _ in range(n):
        canvas, people = compose(data, pool, cfg, rng)
        h, r, m = detector_targets(people, cfg.canvas)
        imgs.append(canvas)
        heats.append(h)
        regs.append(r)
        masks.append(m)
    return (to_tensor(np.stack(imgs)), torch.from_numpy(np.stack(heats)),
            torch.from_numpy(np.stack(regs)), torch.from_numpy(np.stack(masks)))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2, beta: float = 4) -> torch.Tensor:
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.ge(0.99).float()
    neg = 1 - pos
    pos_loss = -(torch.log(p) * (1 - p) ** alpha * pos).sum()
    neg_loss = -(torch.log(1 - p) * p ** alpha * (1 - target) ** beta * neg).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def detector_loss(outs, heat, reg, mask):
    total = 0.0
    for o in outs:
        total = total + focal_loss(o[:, :1], heat)
        m = mask[:, None]
        total = total + ((o[:, 1:].float() - reg).abs() * m).sum() / m.sum().clamp(min=1)
    return total


def train(args):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = torch.device("cuda" if torch.cuda.is_available() and args.device != "cpu" else "cpu")
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = load_or_build_cache(args.data, args.cache)
    pool = np.where(~data.is_test)[0]
    cfg = DETECTOR_PRESETS[args.preset]
    model = StackedHourglass(cfg).to(device)
    if device.type == "cpu":  # NHWC convolutions are about twice as fast on the CPU
        model = model.to(memory_format=torch.channels_last)
    with torch.no_grad():  # start the centre logits at a low prior (CenterNet's bias init)
        for head in model.heads:
            head.bias[0] = -2.19
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    step = 0
    ckpt = out / "last.pt"
    if ckpt.exists() and not args.fresh:
        state = torch.load(ckpt, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step = state["step"]
        rng.bit_generator.state = state["rng"]
        print(f"resumed from {ckpt} at step {step}", flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *a: stop.update(now=True))
    t_end = time.time() + args.minutes * 60 if args.minutes else float("inf")
    log = open(out / "log.jsonl", "a")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else torch.autocast("cpu", enabled=False)
    model.train()
    t0, seen, run_loss = time.time(), 0, 0.0
    try:
        while step < args.steps and not stop["now"] and time.time() < t_end:
            x, heat, reg, mask = (t.to(device) for t in make_batch(data, pool, args.batch, rng))
            if device.type == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            for g in opt.param_groups:
                g["lr"] = lr_at(step, args.steps, args.lr)
            with autocast:
                outs = model(x)
            loss = detector_loss(outs, heat, reg, mask)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            step += 1
            seen += args.batch
            run_loss += loss.item()
            if step % args.log_every == 0:
                rec = {"step": step, "loss": run_loss / args.log_every, "lr": opt.param_groups[0]["lr"],
                       "images_per_s": seen / (time.time() - t0), "time": time.time()}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                print(json.dumps(rec), flush=True)
                t0, seen, run_loss = time.time(), 0, 0.0
            if step % args.ckpt_every == 0:
                save_checkpoint(ckpt, model, opt, step, rng, vars(args))
    except KeyboardInterrupt:
        print("interrupted: saving checkpoint", flush=True)
    save_checkpoint(ckpt, model, opt, step, rng, vars(args))
    log.close()
    print(f"stopped at step {step}; checkpoint {ckpt}", flush=True)
    return ckpt


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fast", choices=sorted(DETECTOR_PRESETS))
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data" / "lsp"))
    p.add_argument("--cache", default=".cache")
    p.add_argument("--out", default="runs/detector_fast")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--minutes", type=float, default=0)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--fresh", action="store_true")
    return p.parse_args(argv)


if __name__ == "__main__":
    train(parse_args())
