"""Top-down 2D pose: person boxes -> square crops -> stacked-hourglass heatmaps -> joints.

For each person box (cx, cy, size) (crops.py's definition) the crop is warped with
``crops.crop_matrix`` (the geometry training used), normalised with ``preprocess.to_tensor`` (the
same preprocessing as training), run through the network in batches, decoded with
``codec.decode`` (arg-max + Taylor sub-pixel step) and mapped back to frame pixels with the
inverse affine. Optional flip test: the mirrored crop's heatmaps are mirrored back, their
left/right channels swapped, and averaged with the plain ones (Newell et al., ECCV 2016).

Very large frames: a person much bigger than the crop is cut from a half- (quarter-, ...)
resolution copy of the frame (area-averaged), so that the bilinear warp never shrinks more than
2x and does not alias.

Letters: N crops, J joints, S input side, H heatmap side.
"""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np

from inference.core import codec, crops
from inference.core import skeleton_decode
from posefile.skeleton import FLIP_PAIRS, JOINT_NAMES
from inference.models.hourglass_config import HourglassConfig
# The networks run behind one interface (models/runtime.py: PyTorch or ONNX Runtime); the torch
# helpers are re-exported here for the evaluation scripts and tests that use them by these names.
from inference.models.runtime import (fold_batchnorm, load_hourglass, load_network, Network,  # noqa: F401
                                      resolve_device, run_network)
from inference.models.weights import WeightsError, load_manifest
from inference.stages.types import FramePoses


MIN_BOX_PX = 4.0          # person boxes smaller than this are grown to it
MAX_BOX_FACTOR = 20.0     # ... and larger than this many times the frame's longer side shrunk to it


def sanitize_boxes(boxes, image_size) -> tuple[np.ndarray, np.ndarray]:
    """Make person boxes safe to crop.

    boxes (n, 3) (cx, cy, size) px; image_size (W, H). Returns (boxes (n, 3) float32 with sizes
    clamped to [MIN_BOX_PX, MAX_BOX_FACTOR * max(W, H)], usable (n,) bool). A box is not usable
    when a value is not finite, its size is below 1 px, or its crop square lies wholly outside
    the frame; its row is then returned unchanged (NaNs included) and must not be cropped.
    """
    b = np.array(boxes, np.float64).reshape(-1, 3)
    W, H = float(image_size[0]), float(image_size[1])
    with np.errstate(invalid="ignore", over="ignore"):
        usable = np.isfinite(b).all(1) & (b[:, 2] >= 1.0)
        size = np.clip(np.where(usable, b[:, 2], MIN_BOX_PX), MIN_BOX_PX, MAX_BOX_FACTOR * max(W, H, 1.0))
        half = 0.5 * size * crops.CROP_MARGIN
        usable &= (b[:, 0] + half > 0) & (b[:, 0] - half < W) & (b[:, 1] + half > 0) & (b[:, 1] - half < H)
    out = b.copy()
    out[usable, 2] = size[usable]
    return out.astype(np.float32), usable


class Pyramid:
    """Crops from one frame, area-averaged first where the crop shrinks the image more than 2x.

    Only the part of the frame under the crop is shrunk (by 2^l), so a big frame costs little.
    """

    def __init__(self, frame: np.ndarray):
        self.frame = frame

    def crop(self, M: np.ndarray, out_size: int) -> np.ndarray:
        """Warp with the image->crop affine M (2, 3) of the full-resolution frame."""
        blank = np.zeros((out_size, out_size) + self.frame.shape[2:], self.frame.dtype)
        M = np.asarray(M, np.float64)
        if not np.isfinite(M).all():
            return blank
        scale = math.sqrt(abs(np.linalg.det(M[:, :2])))
        if not (np.isfinite(scale) and scale > 1e-12):
            return blank
        if scale >= 0.5:
            return crops.warp(self.frame, M, out_size)
        k = 2 ** max(1, math.ceil(math.log2(0.5 / scale)))
        H, W = self.frame.shape[:2]
        corners = np.array([[-1, -1], [out_size, -1], [-1, out_size], [out_size, out_size]], np.float64)
        src = np.asarray(crops.apply_affine(crops.invert_affine(M), corners), np.float64)
        if not np.isfinite(src).all():
            return blank
        # Clamp in floating point first: a far-away or huge crop must not overflow the integers.
        src = np.clip(src, -4.0, [W + 4.0, H + 4.0])
        x0, y0 = np.floor(src.min(0)).astype(int) - 2
        x1, y1 = np.ceil(src.max(0)).astype(int) + 2 + k
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, W), min(y1, H)
        if x1 - x0 < 2 * k or y1 - y0 < 2 * k:
            return blank
        # A region of whole multiples of k: OpenCV's INTER_AREA then takes its fast integer path
        # (5-10x faster than for a fractional factor); at most k - 1 px at a frame edge are left out.
        w, h = (x1 - x0) // k, (y1 - y0) // k
        x1, y1 = x0 + w * k, y0 + h * k
        small = cv2.resize(self.frame[y0:y1, x0:x1], (w, h), interpolation=cv2.INTER_AREA)
        kx, ky = (x1 - x0) / w, (y1 - y0) / h   # small pixel centre u -> x0 + (u + 0.5) * kx - 0.5
        A = M[:, :2] @ np.diag([kx, ky])
        t = M[:, :2] @ np.array([x0 + 0.5 * kx - 0.5, y0 + 0.5 * ky - 0.5]) + M[:, 2]
        return crops.warp(small, np.hstack([A, t[:, None]]), out_size)


def crop_heatmaps(model: Network, patches: np.ndarray, device=None, flip: bool = False) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR crops -> (N, J, H, H) float32 heatmaps; with flip, averaged with the
    mirrored crops' maps mirrored back and their left/right channels swapped."""
    if not flip:
        return run_network(model, patches, device)
    hm = run_network(model, np.concatenate([patches, patches[:, :, ::-1]]), device)
    n = len(patches)
    return 0.5 * (hm[:n] + codec.flip_heatmaps(hm[n:], FLIP_PAIRS))


def decode_crops(heat: np.ndarray, mats: np.ndarray, in_size: int,
                 blur: float = codec.DECODE_BLUR) -> tuple[np.ndarray, np.ndarray]:
    """Heatmaps of crops -> joints in the source image.

    heat (N, J, H, H) of crops of side in_size made with the image->crop affines mats (N, 2, 3)
    -> joints (N, J, 2) float32 image pixels, scores (N, J) float32.
    """
    heat = np.asarray(heat, np.float32)
    assert heat.ndim == 4 and len(mats) == len(heat), (heat.shape, np.shape(mats))
    coords, scores = codec.decode(heat, blur=blur)
    return crop_to_image(coords, mats, in_size, heat.shape[-1]), scores.astype(np.float32)


def crop_to_image(coords: np.ndarray, mats: np.ndarray, in_size: int, heatmap_side: int) -> np.ndarray:
    """Heatmap pixels of crops -> source-image pixels. coords (N, J, 2) on maps of side
    heatmap_side of crops of side in_size made with the image->crop affines mats (N, 2, 3)
    -> (N, J, 2) float32."""
    in_crop = codec.from_heatmap(coords, in_size / heatmap_side)
    joints = np.empty_like(in_crop)
    for n in range(len(in_crop)):
        joints[n] = crops.apply_affine(crops.invert_affine(mats[n]), in_crop[n])
    return joints.astype(np.float32)


def load_skeleton_prior(name: str = "skeleton_prior"):
    """The skeleton decoder's checked prior and its decode weights (weights/skeleton_prior.*)."""
    man = load_manifest(name, "skeleton_prior")
    try:
        prior = skeleton_decode.load_prior(man["path"])
    except (OSError, ValueError) as e:
        raise WeightsError(str(e)) from e
    return prior, skeleton_decode.DecodeWeights(**man["config"]["decode"])


class PoseEstimator:
    """Single-person 2D pose on person boxes, batched across boxes and frames.

    weights: manifest name ('pose_fast'), manifest path or weights path (kind '2d'); runtime:
    'auto' | 'torch' | 'onnx' (models/runtime.py; self.model.runtime says which runs).
    """

    def __init__(self, weights="pose_fast", device: str = "auto", flip: bool = False, batch_size: int = 16,
                 runtime: str = "auto", threads: int = 0, skeleton: bool = False):
        self.model, self.manifest = load_network(weights, "2d", device, runtime, threads)
        # skeleton: decode with core/skeleton_decode (peaks chosen under bone and symmetry priors,
        # weights/skeleton_prior.*) instead of each map's arg-max
        self.skeleton = load_skeleton_prior() if skeleton else None
        self.device = self.model.device
        # raw score -> lifter score (evaluation.pose_errors); None for weights measured before it
        self.score_calibration = self.manifest.get("score_calibration")
        self.cfg: HourglassConfig = self.model.cfg
        if self.cfg.out_channels != len(JOINT_NAMES):
            raise WeightsError(f"pose weights predict {self.cfg.out_channels} maps, expected {len(JOINT_NAMES)}")
        self.flip = flip
        self.batch_size = max(1, int(batch_size))
        self.crops_run = 0
        self.boxes_skipped = 0     # boxes estimate() could not crop (see sanitize_boxes)

    @property
    def in_size(self) -> int:
        return self.cfg.in_size

    def estimate(self, frames: Sequence[np.ndarray], boxes: Sequence[np.ndarray],
                 flip: bool | None = None) -> list[FramePoses]:
        """frames: F images (H, W, 3) uint8 BGR; boxes: F arrays (n_f, 3) of (cx, cy, size);
        flip: this call's flip test (None: the estimator's own).

        Returns F FramePoses (joints (n_f, J, 2) float32 frame pixels, scores (n_f, J)), one pose
        per box in the boxes' order.
        """
        assert len(frames) == len(boxes)
        S, J = self.in_size, len(JOINT_NAMES)
        mats, owner, slot, patches, counts = [], [], [], [], []
        for f, (frame, fb) in enumerate(zip(frames, boxes)):
            # Boxes that cannot be cropped (non-finite, < 1 px, off the frame) get NaN joints and
            # zero scores; absurd sizes are clamped (sanitize_boxes).
            fb, usable = sanitize_boxes(fb, (frame.shape[1], frame.shape[0]))
            counts.append(len(fb))
            self.boxes_skipped += int((~usable).sum())
            if not usable.any():
                continue
            pyr = Pyramid(frame)
            for k in np.nonzero(usable)[0]:
                M = crops.crop_matrix(fb[k], S)
                mats.append(M)
                owner.append(f)
                slot.append(k)
                patches.append(pyr.crop(M, S))
        joints, scores = self.estimate_crops(np.stack(patches) if patches else np.zeros((0, S, S, 3), np.uint8),
                                             np.stack(mats) if mats else np.zeros((0, 2, 3)), flip)
        out = []
        owner, slot = np.asarray(owner, np.int64), np.asarray(slot, np.int64)
        for f in range(len(frames)):
            sel = owner == f
            jf = np.full((counts[f], J, 2), np.nan, np.float32)
            sf = np.zeros((counts[f], J), np.float32)
            jf[slot[sel]], sf[slot[sel]] = joints[sel], scores[sel]
            out.append(FramePoses(jf, sf))
        return out

    def estimate_crops(self, patches: np.ndarray, mats: np.ndarray,
                       flip: bool | None = None) -> tuple[np.ndarray, np.ndarray]:
        """patches (N, S, S, 3) uint8 BGR crops made with mats (N, 2, 3) -> joints (N, J, 2) in
        the pixels the mats map from, scores (N, J)."""
        J = len(JOINT_NAMES)
        if len(patches) == 0:
            return np.zeros((0, J, 2), np.float32), np.zeros((0, J), np.float32)
        heat = self.heatmaps(patches, flip)
        if self.skeleton is None:
            return decode_crops(heat, mats, self.cfg.in_size)
        coords, scores = skeleton_decode.decode(heat, *self.skeleton)
        return crop_to_image(coords, mats, self.cfg.in_size, heat.shape[-1]), scores.astype(np.float32)

    def heatmaps(self, patches: np.ndarray, flip: bool | None = None) -> np.ndarray:
        """(N, S, S, 3) uint8 BGR -> (N, J, H, H) float32 (flip-averaged when flip, or with None
        the estimator's own flip, is on)."""
        flip = self.flip if flip is None else flip
        outs = []
        for i in range(0, len(patches), self.batch_size):
            chunk = patches[i:i + self.batch_size]
            n = len(chunk)
            m = padded_batch(n, self.batch_size)
            if m > n:
                chunk = np.concatenate([chunk, np.zeros((m - n,) + chunk.shape[1:], chunk.dtype)])
            outs.append(crop_heatmaps(self.model, chunk, self.device, flip)[:n])
            self.crops_run += n
        return np.concatenate(outs)


BATCH_STEP = 4   # network batches are padded to a multiple of this (see padded_batch)


def padded_batch(n: int, batch_size: int) -> int:
    """Batch size that n crops are padded to: the next multiple of BATCH_STEP, at most batch_size.

    On the CPU, oneDNN builds its convolution kernels for each new input shape the first time it
    sees it (about 0.1 s each for the fast network on 2 cores); a run whose chunks hold 1..32 crops
    would pay that 32 times. A few fixed sizes cost a few padded crops instead.
    """
    return n if n >= batch_size else min(batch_size, -(-n // BATCH_STEP) * BATCH_STEP)
