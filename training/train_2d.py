"""Train the 2D stacked-hourglass pose network on single-person crops (LSP-extended by default; MPII, COCO).

    python -m training.train_2d --preset fast --out runs/pose_fast [--steps 6000] [--minutes 120]
    python -m training.train_2d --dataset mpii --annotations mpii/mpii_annotations.json --images mpii/images ...
    python -m training.train_2d --dataset coco --annotations coco/annotations/person_keypoints_train2017.json \
        [--val-annotations coco/annotations/person_keypoints_val2017.json] ...

Data: LSP-extended by default (`--data` folder); MPII or COCO keypoints with `--dataset`
(readers in data/mpii.py and coco.py). Held-out rows (LSP is_test, MPII
isValidation, COCO `--val-annotations`) are never trained on. evaluation.eval_2d evaluates
on LSP only.

Resumes from `<out>/last.pt` when it exists (model, optimiser, step, RNG), logs one JSON
line per interval to `<out>/log.jsonl`, and checkpoints every `--ckpt-every` steps and on
Ctrl-C / when the time budget ends, so a run can be spread over sessions.
Runs on CUDA with bf16 autocast when a GPU is present, else on the CPU.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import torch

from data.augment import augment, AugmentConfig
from data.label_audit import apply_audit, load_audit
from data.lsp import DEFAULT_LSP, CropSet, load_dataset, load_or_build_cache
from data.pack import read_pack
from data.records import DatasetError
from inference.core import codec
from inference.models.hourglass import count_parameters, HourglassConfig, StackedHourglass, widen
from inference.models.preprocess import to_tensor
from training import loop
from training.presets import HEATMAP_SIGMA, POSE_PRESETS


def make_batch(data: CropSet, idx: np.ndarray, cfg: HourglassConfig, aug: AugmentConfig,
               rng: np.random.Generator, sigma: float = HEATMAP_SIGMA):
    """-> images (B,3,S,S) tensor, targets (B,J,H,H), weights (B,J)."""
    S, H = cfg.in_size, cfg.heatmap_size
    imgs = np.zeros((len(idx), S, S, 3), np.uint8)
    tgt = np.zeros((len(idx), cfg.out_channels, H, H), np.float32)
    wts = np.zeros((len(idx), cfg.out_channels), np.float32)
    box = data.box
    for b, i in enumerate(idx):
        img, j, v, _ = augment(data.images[i], data.joints[i], data.visible[i], box, S, aug, rng)
        imgs[b] = img
        tgt[b], wts[b] = codec.encode(codec.to_heatmap(j, S / H), v, H, sigma)
    return to_tensor(imgs), torch.from_numpy(tgt), torch.from_numpy(wts)


def heatmap_loss(outs: list[torch.Tensor], target: torch.Tensor, weights: torch.Tensor,
                 peak_weight: float = 0.0) -> torch.Tensor:
    """Masked MSE summed over stacks (intermediate supervision). With peak_weight > 0 the
    pixels near a joint weigh (1 + peak_weight * target): plain MSE is dominated by the
    empty background and first learns to predict zeros, which makes CPU training crawl."""
    w = weights[:, :, None, None] * (1.0 + peak_weight * target)
    return sum(((o.float() - target) ** 2 * w).mean() for o in outs)


def load_training_data(args) -> CropSet:
    """The crop cache of the data set chosen by args (--dataset, default LSP at --data)."""
    progress = lambda i, n: print(f"caching {i}/{n}", flush=True)  # noqa: E731
    if getattr(args, "pack", None):
        return read_pack(args.pack)
    kind = getattr(args, "dataset", "lsp")
    if kind == "lsp":
        return load_or_build_cache(args.data, args.cache, progress=progress)
    if not args.annotations:
        raise DatasetError(f"--dataset {kind} needs --annotations")
    return load_dataset(kind, args.annotations, args.cache, images=args.images,
                        val_annotations=args.val_annotations, val_images=args.val_images,
                        max_people=args.max_people, progress=progress)


def train(args) -> Path:
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    device = loop.pick_device(args.device, args.threads)
    data = load_training_data(args)
    if getattr(args, "audited_labels", None):
        joints, visible, counts = apply_audit(data.names, data.joints, data.visible, load_audit(args.audited_labels))
        data = CropSet(data.images, joints, visible, data.is_test, data.names)
        print(f"audited labels ({args.audited_labels}): {counts['swapped']} images' left/right swapped, "
              f"{counts['dropped_groups']} limb groups dropped", flush=True)
    train_idx = np.where(~data.is_test)[0]
    if args.subset:
        train_idx = train_idx[: args.subset]
    if len(train_idx) < args.batch:
        raise DatasetError(f"only {len(train_idx)} training crops, fewer than a batch ({args.batch})")
    cfg = network_config(args)
    args.in_size, args.sigma = cfg.in_size, target_sigma(args, cfg)   # recorded in the checkpoint's args
    aug = AugmentConfig()
    print(f"network {cfg}, heatmap sigma {args.sigma:g} heatmap px", flush=True)

    def batch(rng):
        return make_batch(data, rng.choice(train_idx, args.batch, replace=False), cfg, aug, rng, args.sigma)

    def loss(outs, target, weights):
        return heatmap_loss(outs, target, weights, args.peak_weight)

    model = StackedHourglass(cfg)
    if args.init and (args.fresh or not (Path(args.out) / "last.pt").exists()):
        model = initial_model(args.init, cfg)
        print(f"starting from {args.init} ({count_parameters(model)} parameters)", flush=True)
    return loop.run(model, batch, loss, args, rng, device, images_per_epoch=len(train_idx))


def network_config(args) -> HourglassConfig:
    """The preset's network at --in-size; without it, at the input size of the run's own checkpoint
    when it resumes one (so a resumed 160 px run stays at 160 px), else the preset's."""
    cfg = POSE_PRESETS[args.preset]
    size = getattr(args, "in_size", None)
    ckpt = Path(args.out) / "last.pt"
    if size is None and ckpt.exists() and not args.fresh:
        size = torch.load(ckpt, map_location="cpu", weights_only=False)["config"]["in_size"]
    return dataclasses.replace(cfg, in_size=size) if size else cfg


def target_sigma(args, cfg: HourglassConfig) -> float:
    """--sigma, else HEATMAP_SIGMA scaled with the heatmap side against the preset's (1.875 px on
    a 40 px map for 1.5 on 32 px): the target blob keeps its size relative to the person, as
    published recipes scale it with the input (HRNet: sigma 2 at 64x48, 3 at 96x72)."""
    if getattr(args, "sigma", None):
        return float(args.sigma)
    return HEATMAP_SIGMA * cfg.heatmap_size / POSE_PRESETS[args.preset].heatmap_size


def initial_model(checkpoint: str, cfg: HourglassConfig) -> StackedHourglass:
    """The network of a training checkpoint at cfg's input size (the network is fully
    convolutional: the same weights run at any size), widened to cfg's width if it is narrower
    (the rest of the configuration must match)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    src_cfg = HourglassConfig.from_dict({**state["config"], "in_size": cfg.in_size})
    if {**src_cfg.to_dict(), "features": cfg.features} != cfg.to_dict() or src_cfg.features > cfg.features:
        raise DatasetError(f"--init {checkpoint}: its network {src_cfg} cannot grow into {cfg}")
    src = StackedHourglass(src_cfg)
    src.load_state_dict(state["model"])
    return widen(src, cfg.features) if src_cfg.features < cfg.features else src


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", default="fast", choices=sorted(POSE_PRESETS))
    p.add_argument("--in-size", type=int, default=None,
                   help="input side in px (a multiple of 32; heatmaps are a quarter of it) instead of the "
                        "preset's; recorded in the checkpoint's config. Default: the preset's, or on "
                        "resume the checkpoint's")
    p.add_argument("--sigma", type=float, default=None,
                   help="heatmap target sigma in heatmap px (default 1.5 scaled with the heatmap side "
                        "against the preset's)")
    p.add_argument("--data", default=DEFAULT_LSP,
                   help="LSP folder with joints.npz and images/")
    p.add_argument("--dataset", default="lsp", choices=["lsp", "mpii", "coco"],
                   help="lsp: --data folder; mpii / coco: --annotations (and --images)")
    p.add_argument("--annotations", default=None,
                   help="MPII JSON (mpii_annotations.json) or COCO person_keypoints_<split>.json")
    p.add_argument("--images", default=None, help="image folder of --annotations (default: guessed from its path)")
    p.add_argument("--val-annotations", default=None,
                   help="COCO only: a second keypoint JSON whose people are held out (never trained on)")
    p.add_argument("--val-images", default=None, help="image folder of --val-annotations")
    p.add_argument("--max-people", type=int, default=0,
                   help="MPII/COCO: cache at most this many training people, a seeded random subset "
                        "(0: all; the cache holds 110 kB per person, in memory and on disk)")
    p.add_argument("--cache", default=".cache", help="folder for the crop cache")
    p.add_argument("--pack", default=None,
                   help="train from a compact crop pack (python -m data.pack) instead of "
                        "the data set, e.g. on a machine the data cannot reach")
    p.add_argument("--out", default="runs/pose_fast")
    p.add_argument("--steps", type=int, default=6000, help="total steps of the schedule")
    p.add_argument("--minutes", type=float, default=0, help="stop (with a checkpoint) after this long")
    p.add_argument("--anneal-by-time", action="store_true",
                   help="with --minutes: the cosine lr ends when the time budget does, not at --steps "
                        "(--steps then only sets where a resumed run starts on the cosine; the run ends on time)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--peak-weight", type=float, default=10.0, help="extra loss weight near joints")
    p.add_argument("--workers", type=int, default=0,
                   help="processes that make batches ahead (for a GPU; 0: in the training process)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--audited-labels", nargs="?", const="data/lsp_label_audit.json", default=None,
                   metavar="AUDIT", help="LSP: train on audited labels (evaluation.label_audit's file; "
                   "mirrored left/right swapped, doubtful limb groups dropped)")
    p.add_argument("--subset", type=int, default=0, help="train on the first N training images only")
    p.add_argument("--log-every", type=int, default=25)
    p.add_argument("--ckpt-every", type=int, default=250)
    p.add_argument("--snapshot-every", type=int, default=0,
                   help="also keep <out>/step_<N>.pt every this many steps (to evaluate a run as it goes)")
    p.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    p.add_argument("--init", default=None,
                   help="start a new run from this training checkpoint (e.g. checkpoints/pose_fast_last.pt), "
                        "widened to the preset's width if narrower (hourglass.widen); ignored on resume")
    return p.parse_args(argv)


def main(argv=None) -> int:
    """Command line (``video-mocap-train-2d``): train, return 0; a data set problem is reported, 1."""
    return loop.run_command("train_2d", parse_args, train, argv)


if __name__ == "__main__":
    sys.exit(main())
