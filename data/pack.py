"""A compact, portable copy of the pose crop cache, for training where the data cannot follow.

The crop cache (`lsp.load_or_build_cache`) holds 10,000 raw 192 px crops (1.1 GB). A lent GPU
machine receives only the repository and at most 64 MiB besides, so this packs the training crops
as WebP images at a smaller side (160 px at quality 80: about 3.5 kB a crop, ~30 MB for LSP's
9,000 training images) and unpacks them back to the cache's side, so everything downstream
(augmentation, targets, the person box of `CropSet.box`) is unchanged.

    python -m data.pack --out .pack/lsp_crops_160.npz     # from the LSP cache
    python -m training.train_2d --pack .pack/lsp_crops_160.npz ...       # train from the pack
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from data.lsp import CropSet, load_or_build_cache
from data.paths import data_path
from data.records import DatasetError


def write_pack(cs: CropSet, path: str | os.PathLike, side: int = 160, quality: int = 80,
               train_only: bool = True) -> Path:
    """Encode the crops of cs (its training rows only, by default) into one .npz file."""
    rows = np.where(~cs.is_test)[0] if train_only else np.arange(len(cs.images))
    blobs = []
    for i in rows:
        img = cv2.resize(cs.images[i], (side, side), interpolation=cv2.INTER_AREA)
        ok, buf = cv2.imencode(".webp", img, [cv2.IMWRITE_WEBP_QUALITY, quality])
        if not ok:
            raise DatasetError(f"could not encode crop {cs.names[i]}")
        blobs.append(buf.reshape(-1))
    lengths = np.array([len(b) for b in blobs], np.int64)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, data=np.concatenate(blobs), offsets=np.r_[0, np.cumsum(lengths)],
             cache_side=np.int64(cs.images.shape[1]), joints=cs.joints[rows], visible=cs.visible[rows],
             is_test=cs.is_test[rows], names=cs.names[rows])
    os.replace(tmp, path)
    return path


def read_pack(path: str | os.PathLike) -> CropSet:
    """The CropSet a pack was made from, crops decoded and resized back to the cache side."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"no crop pack at {path} (make one with python -m data.pack)")
    with np.load(path) as z:
        data, off, S = z["data"], z["offsets"], int(z["cache_side"])
        images = np.empty((len(off) - 1, S, S, 3), np.uint8)
        for i in range(len(images)):
            img = cv2.imdecode(data[off[i]:off[i + 1]], cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"{path}: crop {i} does not decode")
            images[i] = cv2.resize(img, (S, S), interpolation=cv2.INTER_LINEAR)
        return CropSet(images, z["joints"], z["visible"], z["is_test"], z["names"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=data_path("lsp"))
    p.add_argument("--cache", default=".cache")
    p.add_argument("--out", default=".pack/lsp_crops_160.npz")
    p.add_argument("--side", type=int, default=160)
    p.add_argument("--quality", type=int, default=80)
    a = p.parse_args(argv)
    out = write_pack(load_or_build_cache(a.data, a.cache), a.out, a.side, a.quality)
    print(f"{out}: {out.stat().st_size / 2 ** 20:.1f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
