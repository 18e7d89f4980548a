"""Run-time 2D -> 3D lifting of one tracked person.

    lifter = Lifter.load()                       # weights/lifter.json, sha256 checked
    X = lifter.lift(joints2d, scores, K)         # (F, 16, 2) px, (F, 16), (3, 3) -> (F, 16, 3) m

The network predicts root-relative 3D (camera axes) and a log correction of the RootNet pinhole
depth (camera.root_depth on the square box of the visible joints; Moon et al., ICCV 2019).  The
absolute root lies at that depth on the ray that the joints' rays agree on (core/root_ray.py; the
2D root, pelvis else mid-hips else mean of visible joints, where too few joints are seen or they
disagree).  Frames with fewer than 2 visible joints take the features of the nearest frame that
has them (counted in ``last_filled``).
"""
from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from inference.core.camera import check_K, normalize_pixels
from inference.core.root_ray import root_from_rays
from posefile.skeleton import FLIP_PAIRS
from inference.models import runtime as rt
from inference.models.lifter_features import J, PELVIS, pose_features, receptive_field, split_output
from inference.models.weights import REPO_WEIGHTS

# Joint index permutation of a left/right mirror image.
FLIP_PERM = np.arange(J)
FLIP_PERM[FLIP_PAIRS[:, 0]], FLIP_PERM[FLIP_PAIRS[:, 1]] = FLIP_PAIRS[:, 1], FLIP_PAIRS[:, 0]


class LifterError(RuntimeError):
    """Raised for missing/corrupt lifter weights or unusable input."""


def default_manifest() -> str:
    return str(REPO_WEIGHTS / "lifter.json")


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def smooth_log_depth(logz: np.ndarray, weight: np.ndarray, half: int = 4, inlier: float = 0.1) -> np.ndarray:
    """Robust temporal smoothing of per-frame log root depth, (F,) -> (F,).

    A person's distance changes slowly while the box-based depth jumps when joints are missed or the
    person is cut by the image border.  For each frame: weighted median over +-half frames (weights =
    visible-joint fraction), then a Gaussian-weighted mean of the window's values within ``inlier``
    (log units, ~10%) of that median.  half=0 returns logz unchanged.
    """
    if half <= 0 or len(logz) < 2:
        return logz
    pz = np.pad(logz, half, mode="edge")
    pw = np.pad(weight, half, mode="constant", constant_values=0.0)
    win = np.lib.stride_tricks.sliding_window_view(pz, 2 * half + 1)    # (F, 2h+1)
    ww = np.lib.stride_tricks.sliding_window_view(pw, 2 * half + 1) + 1e-9
    order = np.argsort(win, axis=1)
    ws = np.take_along_axis(ww, order, 1)
    cs = np.cumsum(ws, 1)
    mid = (cs < 0.5 * cs[:, -1:]).sum(1)
    med = np.take_along_axis(win, order, 1)[np.arange(len(win)), mid]
    g = np.exp(-0.5 * ((np.arange(-half, half + 1)) / max(half / 2.0, 1.0)) ** 2)
    wt = ww * g * (np.abs(win - med[:, None]) < inlier)
    return np.where(wt.sum(1) > 1e-6, (wt * win).sum(1) / np.maximum(wt.sum(1), 1e-12), med)


class Lifter:
    """model: the torch module (runtime 'torch'), or None with session: an ONNX Runtime session of
    the same network's whole-sequence pass (runtime 'onnx', models/runtime.py)."""

    def __init__(self, model, manifest: dict, flip: bool = True, session=None):
        self.model = model.eval() if model is not None else None
        self.session = session
        self.runtime = "torch" if session is None else "onnx"
        self.manifest = manifest
        # Test-time mirroring (as in VideoPose3D): the net also sees the left/right mirror image
        # and its mirrored-back answer is averaged in. Costs one more pass of a tiny network.
        self.flip = flip
        self.receptive_field = (int(getattr(model, "receptive_field", 1)) if model is not None
                                else receptive_field(manifest.get("config", {})))
        self.last_filled = 0
        self.depth_half_window = 15   # frames each side; 8 -> 15: root depth error on our own 2D 8.7 -> 7.0%
        self.min_depth_fraction = 0.5
        # The root's ray from every joint's, not the 2D pelvis alone (core/root_ray.py): root
        # lateral error on the balanced network's held-out errors 141 -> 126 mm.
        self.root_from_joints = True
        # Trained on a pose network's measured errors with calibrated scores (train_3d
        # --pose-errors): it expects scores in the lifter's convention (score_calibration).
        self.wants_calibrated_scores = bool(manifest.get("config", {}).get("pose_errors"))

    @classmethod
    def load(cls, path: str | None = None, runtime: str = "torch", threads: int = 0) -> "Lifter":
        """Load from a manifest (weights/lifter.json by default); checks kind and sha256.
        runtime 'onnx': the network runs in ONNX Runtime from the checked ONNX file built from these
        weights (models/runtime.py; WeightsError or InferenceError when that fails); no torch."""
        path = path or default_manifest()
        try:
            with open(path) as f:
                man = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise LifterError(f"cannot read lifter manifest {path}: {e}") from e
        if man.get("kind") != "3d":
            raise LifterError(f"{path}: kind is {man.get('kind')!r}, expected '3d'")
        wpath = os.path.join(os.path.dirname(os.path.abspath(path)), man["file"])
        if not os.path.exists(wpath):
            raise LifterError(f"lifter weights missing: {wpath}")
        sha = sha256_file(wpath)
        if sha != man.get("sha256"):
            raise LifterError(f"sha256 mismatch for {wpath}: {sha} != {man.get('sha256')}")
        if runtime == "onnx":
            onnx = rt.ensure_onnx({**man, "path": wpath})
            man = {**man, "onnx_sha256": rt.sha256_of(onnx)}
            return cls(None, man, session=rt.onnx_session(onnx, threads))
        import torch  # lazy: the ONNX runtime path runs without torch

        from inference.models.lifter import build_model

        model = build_model(man["config"])
        sd = torch.load(wpath, map_location="cpu", weights_only=True)
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
        return cls(model, man)

    def predict_normalized(self, xn: np.ndarray, scores: np.ndarray):
        """Network pass on normalised coordinates. xn (F, 16, 2), scores (F, 16).

        Returns rel (F, 16, 3) metres, z_root (F,) metres, root (F, 2) normalised root.
        """
        feats, root, k, valid = pose_features(xn, scores)
        F_ = len(feats)
        if not valid.any():
            raise LifterError("no frame has at least 2 visible joints")
        self.last_filled = int((~valid).sum())
        if self.last_filled:
            vi = np.where(valid)[0]
            near = vi[np.clip(np.searchsorted(vi, np.arange(F_)), 0, len(vi) - 1)]
            prev = vi[np.clip(np.searchsorted(vi, np.arange(F_)) - 1, 0, len(vi) - 1)]
            near = np.where(np.abs(prev - np.arange(F_)) < np.abs(near - np.arange(F_)), prev, near)
            feats, root, k = feats[near], root[near], k[near]
        rel, logc = self._run(feats)
        if self.flip:
            # Mirror about the principal point: x -> -x and left <-> right, for the input
            # (features of the mirrored 2D) and back for the output (X -> -X, swap sides).
            m_feats, _, _, _ = pose_features(self._mirror2d(xn), scores[:, FLIP_PERM])
            if self.last_filled:
                m_feats = m_feats[near]
            m_rel, m_logc = self._run(m_feats)
            m_rel = m_rel[:, FLIP_PERM] * np.array([-1.0, 1.0, 1.0])
            rel, logc = 0.5 * (rel + m_rel), 0.5 * (logc + m_logc)
        logz = np.log(k) + logc
        frac = np.where(valid, (scores > 0).sum(-1) / J, 0.0)
        good = frac >= self.min_depth_fraction
        if good.any() and not good.all():
            # box-based depth is unreliable when most joints are missing (occlusion, image border):
            # take it from the nearest well-seen frames instead (linear in log depth, held at the ends)
            t = np.arange(F_)
            logz = np.where(good, logz, np.interp(t, t[good], logz[good]))
        w = np.where(good, frac ** 2, 1e-3)
        z = np.exp(smooth_log_depth(logz, w, self.depth_half_window))
        return rel, z, root

    @staticmethod
    def _mirror2d(xn: np.ndarray) -> np.ndarray:
        return xn[:, FLIP_PERM] * np.array([-1.0, 1.0])

    def _run(self, feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Features (F, 50) -> root-relative joints (F, 16, 3) and log depth corrections (F,)."""
        pad = (self.receptive_field - 1) // 2
        x = np.concatenate([np.repeat(feats[:1], pad, 0), feats, np.repeat(feats[-1:], pad, 0)], 0)
        if self.session is not None:
            out = self.session.run(None, {"features": x[None].astype(np.float32)})[0][0]
            rel, logc = split_output(out)
            return rel.astype(np.float64), logc.astype(np.float64)
        import torch

        with torch.no_grad():
            out = self.model(torch.from_numpy(x)[None], strided=False)[0]
            rel, logc = split_output(out)
        return rel.numpy().astype(np.float64), logc.numpy().astype(np.float64)

    def lift(self, joints2d: np.ndarray, scores: np.ndarray, K, image_size=None,
             root_from_joints: bool | None = None) -> np.ndarray:
        """joints2d (F, 16, 2) pixels, scores (F, 16) in [0, 1] (0 = missing), K (3, 3).

        Returns joints3d (F, 16, 3) float32, metres, OpenCV camera frame, absolute.
        image_size is accepted for the engine's convenience; K already fixes the geometry.
        root_from_joints: the root's ray from every joint's (None: ``self.root_from_joints``).
        """
        joints2d = np.asarray(joints2d, np.float64)
        scores = np.nan_to_num(np.asarray(scores, np.float64))
        if joints2d.ndim != 3 or joints2d.shape[1:] != (J, 2) or scores.shape != joints2d.shape[:2]:
            raise LifterError(f"expected joints2d (F, {J}, 2) and scores (F, {J}); got "
                              f"{joints2d.shape} and {scores.shape}")
        K = check_K(K)
        bad = ~np.isfinite(joints2d).all(-1)
        scores = np.where(bad, 0.0, scores)
        joints2d = np.where(bad[..., None], 0.0, joints2d)
        xn = normalize_pixels(joints2d, K)
        rel, z, root = self.predict_normalized(xn, scores)
        rel = rel - rel[:, PELVIS:PELVIS + 1]
        if self.root_from_joints if root_from_joints is None else root_from_joints:
            root = root_from_rays(rel, z, xn, scores, root)
        root3d = np.concatenate([root * z[:, None], z[:, None]], -1)
        out = rel + root3d[:, None, :]
        return out.astype(np.float32)
