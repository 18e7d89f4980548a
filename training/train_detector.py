"""Train the person detector (pelvis-centre heatmap + box) on multi-person mosaics.

    python -m training.train_detector --out runs/detector_fast [--steps 3000] [--minutes 60]

Same habits as train_2d: resumable checkpoint `<out>/last.pt`, JSON-lines log, bf16 on CUDA.
Heatmap loss: the penalty-reduced focal loss of CenterNet (Zhou et al. 2019, "Objects as
Points"); box loss: L1 at the cells around each pelvis.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from inference.models.hourglass import StackedHourglass
from training.presets import DETECTOR_PRESETS
from inference.models.preprocess import to_tensor
from training import loop
from data.lsp import DEFAULT_LSP, load_or_build_cache
from data.mosaic import compose, detector_targets, MosaicConfig
from data.scenes import compose_scene, ignore_weights, load_or_build_scenes, SceneConfig


def make_batch(data, pool, n: int, rng, cfg: MosaicConfig = MosaicConfig(), scenes=None,
               scene_pool=None, scene_frac: float = 0.0, scene_cfg: SceneConfig = SceneConfig()):
    """n training frames: whole-photograph mosaics (scenes.py) with probability scene_frac, else
    pasted-crop mosaics (mosaic.py). -> images, heat, reg, mask, weight (1, or 0 where ignored)."""
    imgs, heats, regs, masks, wts = [], [], [], [], []
    for _ in range(n):
        if scenes is not None and rng.random() < scene_frac:
            canvas, people, ignore = compose_scene(scenes, scene_pool, scene_cfg, rng)
        else:
            (canvas, people), ignore = compose(data, pool, cfg, rng), []
        h, r, m = detector_targets(people, cfg.canvas)
        imgs.append(canvas)
        heats.append(h)
        regs.append(r)
        masks.append(m)
        wts.append(ignore_weights(ignore, cfg.canvas)[None])
    return (to_tensor(np.stack(imgs)), torch.from_numpy(np.stack(heats)),
            torch.from_numpy(np.stack(regs)), torch.from_numpy(np.stack(masks)), torch.from_numpy(np.stack(wts)))


def focal_loss(logits: torch.Tensor, target: torch.Tensor, alpha: float = 2, beta: float = 4,
               weight: torch.Tensor | None = None) -> torch.Tensor:
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.ge(0.99).float()
    neg = 1 - pos
    if weight is not None:
        neg = neg * weight
    pos_loss = -(torch.log(p) * (1 - p) ** alpha * pos).sum()
    neg_loss = -(torch.log(1 - p) * p ** alpha * (1 - target) ** beta * neg).sum()
    return (pos_loss + neg_loss) / pos.sum().clamp(min=1)


def detector_loss(outs, heat, reg, mask, weight=None):
    total = 0.0
    for o in outs:
        total = total + focal_loss(o[:, :1], heat, weight=weight)
        m = mask[:, None]
        total = total + ((o[:, 1:].float() - reg).abs() * m).sum() / m.sum().clamp(min=1)
    return total


def train(args):
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = loop.pick_device(args.device, args.threads)
    data = load_or_build_cache(args.data, args.cache)
    pool = np.where(~data.is_test)[0]
    scenes = scene_pool = None
    if args.scene_frac > 0:
        scenes = load_or_build_scenes(args.data, args.cache)
        scene_pool = np.where(~scenes.is_test)[0]
    model = StackedHourglass(DETECTOR_PRESETS[args.preset])
    with torch.no_grad():  # start the centre logits at a low prior (CenterNet's bias init)
        for head in model.heads:
            head.bias[0] = -2.19

    def batch(rng):
        return make_batch(data, pool, args.batch, rng, scenes=scenes, scene_pool=scene_pool,
                          scene_frac=args.scene_frac)

    return loop.run(model, batch, detector_loss, args, rng, device, clip_grad=5.0)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fast", choices=sorted(DETECTOR_PRESETS))
    p.add_argument("--data", default=DEFAULT_LSP)
    p.add_argument("--cache", default=".cache")
    p.add_argument("--out", default="runs/detector_fast")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--minutes", type=float, default=0)
    p.add_argument("--anneal-by-time", action="store_true",
                   help="with --minutes: the cosine lr ends when the time budget does, not at --steps "
                        "(--steps then only sets where a resumed run starts on the cosine; the run ends on time)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--scene-frac", type=float, default=0.7,
                   help="share of training frames made of whole photographs (training/scenes.py)")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--workers", type=int, default=0,
                   help="processes that make batches ahead (for a GPU; 0: in the training process)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--ckpt-every", type=int, default=100)
    p.add_argument("--fresh", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Command line (``video-mocap-train-detector``): train, return 0; a data set problem is reported, 1."""
    return loop.run_command("train_detector", parse_args, train, argv)


if __name__ == "__main__":
    sys.exit(main())
