"""Where do LSP's joint marks sit against the motion capture's joint centres?

    python -m evaluation.joint_convention [--out docs/results/results_joint_convention.json]

The 2D network learns LSP's marks; the lifter learns the mocap's joints. No data here has both
on one person, so this estimates the offset by fitting: each fully labelled LSP training photo
is matched (scaled orthographic, nearest neighbour) to the mocap pose and view whose limb joints
(ankles, knees, wrists, elbows: marks annotators put on the joint) best fit the photo's, and the
matched pose says where the mocap would put the hips, shoulders and neck. The label minus that,
in the matched torso's frame (units of its pelvis-thorax length; "down" along the torso, "out"
away from the body's midline), is one sample; the medians over the photos are the estimate.

A control runs the same fit on held-out mocap poses (their own joints known), which must come
out near zero. The fit is repeated against each mocap source alone: where the sources disagree
by more than the offset, the offset is not measurable from this data (docs/lifter.md).
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from data import cameras, mocap
from data.lsp import DEFAULT_LSP, load_annotations
from posefile.skeleton import JOINT_INDEX

LIMBS = [JOINT_INDEX[n] for n in ("r_ankle", "r_knee", "l_knee", "l_ankle",
                                  "r_wrist", "r_elbow", "l_elbow", "l_wrist")]
MEASURED = ("r_hip", "l_hip", "r_shoulder", "l_shoulder", "neck", "head_top")
YAWS_DEG = np.arange(0, 360, 15)
PITCHES_DEG = (-15.0, 0.0, 15.0)


def orthographic_views(X: np.ndarray, yaws_deg, pitches_deg) -> np.ndarray:
    """Root-relative world poses (N, 16, 3), Y up -> image-like views (V*N, 16, 2), y down."""
    out = []
    for p in np.deg2rad(pitches_deg):
        for y in np.deg2rad(yaws_deg):
            ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
            rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
            Z = X @ (rx @ ry).T
            out.append(np.stack([Z[..., 0], -Z[..., 1]], -1))
    return np.concatenate(out).astype(np.float32)


def normalise(P: np.ndarray):
    """Centre and scale 2D poses by their limb joints: (normalised, centre, scale)."""
    c = P[:, LIMBS].mean(1, keepdims=True)
    Q = P - c
    s = np.sqrt((Q[:, LIMBS] ** 2).sum(-1).mean(1))[:, None, None]
    return Q / s, c, s


class PoseBank:
    """Candidate 2D poses (mocap poses x views) and a nearest-neighbour fit on their limb joints."""

    def __init__(self, views: np.ndarray, source: np.ndarray):
        self.norm, _, _ = normalise(views)
        self.source = source
        self.desc = self.norm[:, LIMBS].reshape(len(views), -1)

    def fit(self, P: np.ndarray, source: str | None = None, chunk: int = 256) -> np.ndarray:
        """For each pose in P (N, 16, 2) the best candidate, placed on P's limbs (N, 16, 2)."""
        qn, c, s = normalise(P.astype(np.float32))
        q = qn[:, LIMBS].reshape(len(P), -1)
        idx = np.arange(len(self.desc)) if source is None else np.where(self.source == source)[0]
        D = self.desc[idx]
        dn = (D ** 2).sum(1)
        best = np.empty(len(P), np.int64)
        for i in range(0, len(P), chunk):
            best[i:i + chunk] = idx[(dn[None] - 2 * q[i:i + chunk] @ D.T).argmin(1)]
        return self.norm[best] * s + c


def body_frame_offsets(labels: np.ndarray, fitted: np.ndarray) -> dict:
    """Median offset of each MEASURED joint, label - fit, in the fitted torso's frame:
    'down' (towards the pelvis) and 'out' (away from the midline), in pelvis-thorax lengths."""
    pel = 0.5 * (fitted[:, JOINT_INDEX["r_hip"]] + fitted[:, JOINT_INDEX["l_hip"]])
    tho = 0.5 * (fitted[:, JOINT_INDEX["r_shoulder"]] + fitted[:, JOINT_INDEX["l_shoulder"]])
    down = pel - tho
    length = np.linalg.norm(down, axis=1, keepdims=True)
    down = down / np.maximum(length, 1e-9)
    across = np.stack([-down[:, 1], down[:, 0]], 1)
    out = {}
    for name in MEASURED:
        j = JOINT_INDEX[name]
        d = (labels[:, j] - fitted[:, j]) / np.maximum(length, 1e-9)
        side = np.sign(((fitted[:, j] - pel) * across).sum(1))
        side[side == 0] = 1
        out[name] = {"down": round(float(np.median((d * down).sum(1))), 3),
                     "out": round(float(np.median((d * across).sum(1) * side)), 3)}
    return out


def frames(ms: mocap.MocapSet, split: str, step: int):
    clips = ms.indices(split)
    X = np.concatenate([ms.rel[ms.starts[c]:ms.starts[c] + ms.lengths[c]:step] for c in clips]).astype(np.float32)
    src = np.concatenate([[ms.skeletons[c]] * len(range(0, int(ms.lengths[c]), step)) for c in clips])
    return X, src


def run(data_root: str = DEFAULT_LSP, step: int = 4, seed: int = 1) -> dict:
    ms = mocap.load(log=lambda *a: None)
    X, src = frames(ms, "train", step)
    X, src = np.concatenate([X, cameras.mirror_world(X)]), np.concatenate([src, src])
    n_views = len(YAWS_DEG) * len(PITCHES_DEG)
    bank = PoseBank(orthographic_views(X, YAWS_DEG, PITCHES_DEG), np.tile(src, n_views))

    # control: held-out mocap, one random view each
    Xt, _ = frames(ms, "test", 6)
    rng = np.random.default_rng(seed)
    ctrl = np.concatenate([orthographic_views(x[None], [rng.uniform(0, 360)], [rng.uniform(-20, 20)]) for x in Xt])

    _, j16, v16, is_test = load_annotations(data_root)   # our 16 joints; pelvis, thorax derived
    keep = v16.all(1) & ~is_test
    photos = j16[keep]
    res = {"photos": int(keep.sum()), "candidates": int(len(bank.desc)), "control_poses": int(len(ctrl)),
           "units": "pelvis-thorax lengths of the fitted pose; down = towards the pelvis, out = away from the midline",
           "control_heldout_mocap": body_frame_offsets(ctrl, bank.fit(ctrl)),
           "lsp_vs_all_sources": body_frame_offsets(photos, bank.fit(photos))}
    for s in sorted(set(src)):
        res[f"lsp_vs_{s}"] = body_frame_offsets(photos, bank.fit(photos, s))
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=DEFAULT_LSP)
    ap.add_argument("--step", type=int, default=4, help="every STEP-th training mocap frame (default 4)")
    ap.add_argument("--out", default=None, help="write the figures to this JSON file")
    args = ap.parse_args(argv)
    res = run(args.data, args.step)
    res["command"] = "python -m evaluation.joint_convention " + " ".join(argv if argv is not None else sys.argv[1:])
    print(json.dumps(res, indent=1))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
