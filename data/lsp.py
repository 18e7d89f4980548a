"""LSP / LSP-extended reader and a compact crop cache for fast CPU epochs.

The cache holds, for every image, a square crop around the annotated person that is
wider than the network's view (CACHE_ZOOM), so that scale, rotation and shift
augmentation can be done from the small cached crop instead of the full JPEG.

MPII and COCO (readers in mpii.py and coco.py) feed the same cache through PersonRecords,
one row per annotated person: build_cache_from_records, and load_dataset for any set.
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from data.coco import read_coco
from data.mpii import read_mpii
from data.paths import data_path
from data.records import MIN_JOINTS, MIN_PERSON_SIZE, DatasetError, PersonRecords
from inference.core import crops
from posefile.skeleton import JOINT_INDEX, NUM_JOINTS

# Every script's default LSP folder ($VIDEO_MOCAP_DATA/lsp, else ../shared/data/lsp).
DEFAULT_LSP = data_path("lsp")
CACHE_ZOOM = 1.6   # the cached crop covers CACHE_ZOOM x the network's unaugmented view


# LSP (14 joints) -> our 16: index into LSP, or None for derived joints.
LSP_NAMES = ("r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "r_wrist", "r_elbow",
             "r_shoulder", "l_shoulder", "l_elbow", "l_wrist", "neck", "head_top")


def from_lsp(joints14: np.ndarray, visible14: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(..., 14, 2), (..., 14) -> (..., 16, 2), (..., 16). Pelvis = mid-hips, thorax =
    mid-shoulders, each visible only when both parents are."""
    lsp = {n: i for i, n in enumerate(LSP_NAMES)}
    shape = joints14.shape[:-2]
    out = np.zeros(shape + (NUM_JOINTS, 2), np.float32)
    vis = np.zeros(shape + (NUM_JOINTS,), bool)
    for name, i in JOINT_INDEX.items():
        if name in lsp:
            out[..., i, :] = joints14[..., lsp[name], :]
            vis[..., i] = visible14[..., lsp[name]]
    for name, (a, b) in {"pelvis": ("r_hip", "l_hip"), "thorax": ("r_shoulder", "l_shoulder")}.items():
        ia, ib = lsp[a], lsp[b]
        out[..., JOINT_INDEX[name], :] = 0.5 * (joints14[..., ia, :] + joints14[..., ib, :])
        vis[..., JOINT_INDEX[name]] = visible14[..., ia] & visible14[..., ib]
    return out, vis


@dataclass
class CropSet:
    """images (N, S, S, 3) uint8 BGR; joints (N, 16, 2) in crop pixels; visible (N, 16);
    is_test (N,); names (N,). The person box in crop pixels is the same for every row:
    centre S/2, size S / (CROP_MARGIN * CACHE_ZOOM)."""
    images: np.ndarray
    joints: np.ndarray
    visible: np.ndarray
    is_test: np.ndarray
    names: np.ndarray

    @property
    def box(self) -> np.ndarray:
        S = self.images.shape[1]
        return np.array([S / 2 - 0.5, S / 2 - 0.5, S / (crops.CROP_MARGIN * CACHE_ZOOM)], np.float32)


def load_annotations(root: str | os.PathLike):
    d = np.load(Path(root) / "joints.npz")
    joints, visible = from_lsp(d["joints"], d["visible"])
    return d["image_names"], joints, visible, d["is_test"]


def build_cache(root: str | os.PathLike, side: int = 192, progress=None, indices=None) -> CropSet:
    names, joints, visible, is_test = load_annotations(root)
    if indices is not None:
        names, joints, visible, is_test = names[indices], joints[indices], visible[indices], is_test[indices]
    N = len(names)
    images = np.zeros((N, side, side, 3), np.uint8)
    out_joints = np.zeros_like(joints)
    for i in range(N):
        img = cv2.imread(str(Path(root) / "images" / names[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot decode {names[i]}")
        box = crops.box_from_joints(joints[i], visible[i])
        M = crops.crop_matrix(box, side, scale=CACHE_ZOOM)
        images[i] = crops.warp(img, M, side)
        out_joints[i] = crops.apply_affine(M, joints[i])
        if progress and i % 500 == 0:
            progress(i, N)
    return CropSet(images, out_joints, visible, is_test, names)


def load_or_build_cache(root: str | os.PathLike, cache_dir: str | os.PathLike, side: int = 192,
                        progress=None) -> CropSet:
    path = Path(cache_dir) / f"lsp_crops_{side}.npz"
    if path.exists():
        d = np.load(path)
        return CropSet(d["images"], d["joints"], d["visible"], d["is_test"], d["names"])
    cs = build_cache(root, side, progress)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=cs.images, joints=cs.joints, visible=cs.visible, is_test=cs.is_test, names=cs.names)
    os.replace(tmp, path)
    return cs


# --- Person records: the common input of the crop cache for every data set -------------
#
# LSP has one person per image and keeps its own reader above (unchanged). MPII and COCO
# have several people per image; their readers (mpii.py, coco.py) turn every usable
# annotated person into one row of a PersonRecords, and build_cache_from_records cuts
# one cached crop per row exactly the way build_cache does for LSP.

DATASETS = ("lsp", "mpii", "coco")


def build_cache_from_records(records: PersonRecords, side: int = 192, progress=None) -> CropSet:
    """One square crop per record, CACHE_ZOOM x wider than the network's view of the record's
    box; rows keep the records' order. Each image is decoded once, however many people it
    holds. In crop pixels every record's box is CropSet.box."""
    N = len(records)
    images = np.zeros((N, side, side, 3), np.uint8)
    out_joints = np.zeros((N, 16, 2), np.float32)
    order = np.argsort(records.images, kind="stable")
    current, img = None, None
    for k, i in enumerate(order):
        path = str(records.images[i])
        if path != current:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
            if img is None:
                raise DatasetError(f"cannot read image {path}")
            current = path
        M = crops.crop_matrix(records.boxes[i], side, scale=CACHE_ZOOM)
        images[i] = crops.warp(img, M, side)
        out_joints[i] = crops.apply_affine(M, records.joints[i])
        if progress and k % 500 == 0:
            progress(k, N)
    return CropSet(images, out_joints, records.visible.copy(), records.is_test.copy(), records.names.copy())


def cache_path(cache_dir: str | os.PathLike, kind: str, side: int, key: str = "") -> Path:
    """LSP keeps its historical name lsp_crops_<side>.npz; other sets add a key that
    identifies their annotation files and options: <kind>_crops_<side>_<key>.npz."""
    name = f"{kind}_crops_{side}" + (f"_{key}" if key else "") + ".npz"
    return Path(cache_dir) / name


def _save_cropset(path: Path, cs: CropSet) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, images=cs.images, joints=cs.joints, visible=cs.visible, is_test=cs.is_test, names=cs.names)
    os.replace(tmp, path)


def _files_key(files: list, options: dict) -> str:
    """Short hash of the annotation files (absolute path, size, mtime) and reader options."""
    h = hashlib.sha1()
    for f in files:
        if f is None:
            h.update(b"-")
            continue
        p = Path(f).resolve()
        st = p.stat()
        h.update(f"{p}|{st.st_size}|{int(st.st_mtime)}".encode())
    h.update(repr(sorted(options.items())).encode())
    return h.hexdigest()[:10]


def load_dataset(kind: str, annotations: str | os.PathLike, cache_dir: str | os.PathLike, side: int = 192,
                 images: str | None = None, val_annotations: str | None = None, val_images: str | None = None,
                 max_people: int = 0, min_joints: int = MIN_JOINTS, min_size: float = MIN_PERSON_SIZE,
                 progress=None) -> CropSet:
    """Crop cache of any supported data set, built on first use and then loaded from cache_dir.

    kind "lsp": annotations is the LSP folder (joints.npz, images/), exactly load_or_build_cache.
    kind "mpii": annotations is the MPII JSON (see mpii.py), held-out rows = isValidation.
    kind "coco": annotations is a person_keypoints_*.json (see coco.py); val_annotations
    (optional) adds held-out rows, else nothing is held out.
    images / val_images: image folders (defaults: see the readers). max_people > 0 keeps a
    seeded random subset of that many training people (all held-out ones are kept).
    """
    if kind == "lsp":
        return load_or_build_cache(annotations, cache_dir, side, progress)
    if kind not in DATASETS:
        raise DatasetError(f"unknown data set {kind!r}; expected one of {DATASETS}")
    for f in (annotations, val_annotations):
        if f is not None and not Path(f).is_file():
            raise DatasetError(f"annotation file not found: {f}")
    options = dict(images=str(Path(images).resolve()) if images else None,
                   val_images=str(Path(val_images).resolve()) if val_images else None,
                   max_people=int(max_people), min_joints=int(min_joints), min_size=float(min_size))
    path = cache_path(cache_dir, kind, side, _files_key([annotations, val_annotations], options))
    if path.exists():
        d = np.load(path)
        return CropSet(d["images"], d["joints"], d["visible"], d["is_test"], d["names"])
    if kind == "mpii":
        rec = read_mpii(annotations, images, min_joints=min_joints, min_size=min_size)
    else:
        parts = [read_coco(annotations, images, is_test=False, min_joints=min_joints, min_size=min_size)]
        if val_annotations is not None:
            parts.append(read_coco(val_annotations, val_images, is_test=True, min_joints=min_joints,
                                   min_size=min_size))
        rec = PersonRecords.concat(parts)
    if max_people and (~rec.is_test).sum() > max_people:
        train = np.where(~rec.is_test)[0]
        keep = np.sort(np.random.default_rng(0).choice(train, max_people, replace=False))
        rec = rec.subset(np.sort(np.r_[keep, np.where(rec.is_test)[0]]))
    if len(rec) == 0:
        raise DatasetError(f"no usable people in {annotations}")
    cs = build_cache_from_records(rec, side, progress)
    _save_cropset(path, cs)
    return cs
