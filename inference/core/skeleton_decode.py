"""Skeleton-consistent decoding: choose each joint among its heatmap's peaks so the whole
skeleton is plausible.

A heatmap often holds the right answer as its second or third peak, or on its left/right
partner's map (merged knees: both knee maps peak on one leg, the other knee is a weaker peak).
Arg-max per map cannot see that. This decoder keeps the top K local maxima of every map and,
per person, picks the assignment that maximises

    w_unary * sum_j log h_j(x_j)                       evidence: each joint on its own map
  + sum_bones log p(x_child - x_parent)                learned bone displacement (crop units)
  + w_sym * sum_limb_pairs log p(left/right length)    a person's two limbs are alike
  - w_merge * [left and right joint on one spot]       two joints are rarely in one place

exactly, by max-sum dynamic programming on the kinematic tree. Left/right partners form one
node (their K + K candidates as ordered pairs), which is what lets the search move a merged joint
onto the other limb and weigh the two sides against each other. The priors are learned from
training labels in the crop frame that inference uses (``training/fit_skeleton_prior.py``) and
are mirror-symmetric, so they never prefer a front view over a back view; which side is left is
the network's call, kept consistent along each limb.

Pure numpy. Letters: N crops, J joints, H x W heatmap, K peaks per map.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from inference.core import codec
from posefile.skeleton import FLIP_PERM, JOINT_INDEX, NUM_JOINTS

# Nodes of the search tree: a tuple of one joint, or a (right, left) pair.
_I = JOINT_INDEX
NODES: tuple[tuple[int, ...], ...] = (
    (_I["pelvis"],),
    (_I["r_hip"], _I["l_hip"]),
    (_I["r_knee"], _I["l_knee"]),
    (_I["r_ankle"], _I["l_ankle"]),
    (_I["thorax"],),
    (_I["neck"],),
    (_I["head_top"],),
    (_I["r_shoulder"], _I["l_shoulder"]),
    (_I["r_elbow"], _I["l_elbow"]),
    (_I["r_wrist"], _I["l_wrist"]),
)
NODE_PARENT = (-1, 0, 1, 2, 0, 4, 5, 4, 7, 8)   # index into NODES; children come after parents

#: Bones whose displacement is scored: (parent joint, child joint), following NODE_PARENT.
PRIOR_BONES: tuple[tuple[int, int], ...] = tuple(
    (p, c) for n, par in enumerate(NODE_PARENT) if par >= 0
    for p, c in zip(NODES[par] * (len(NODES[n]) // len(NODES[par])), NODES[n]))
_BONE_INDEX = {pc: i for i, pc in enumerate(PRIOR_BONES)}
#: Limb pairs with a symmetry term: (right bone, left bone) as indices into PRIOR_BONES; the
#: bones between two left/right nodes (upper and lower arms and legs).
SYM_PAIRS: tuple[tuple[int, int], ...] = tuple(
    (_BONE_INDEX[(NODES[par][0], NODES[n][0])], _BONE_INDEX[(NODES[par][1], NODES[n][1])])
    for n, par in enumerate(NODE_PARENT) if par >= 0 and len(NODES[n]) == 2 and len(NODES[par]) == 2)


@dataclasses.dataclass(frozen=True)
class SkeletonPrior:
    """Learned geometry, in heatmap pixels of the crop frame.

    bone_logp (B, 2R+1, 2R+1): log density of bone b's displacement (dx, dy) at [dy+R, dx+R];
    sym_logp (S,): log density of (len_r - len_l) / (len_r + len_l) over S bins on [-1, 1];
    outside: log density used beyond the tables; heatmap_size: the side of the maps the tables
    were learned for (other sizes are scaled to it: the crop frame is the same).
    """
    bone_logp: np.ndarray
    sym_logp: np.ndarray
    outside: float
    heatmap_size: int = 32

    @property
    def radius(self) -> int:
        return (self.bone_logp.shape[-1] - 1) // 2


@dataclasses.dataclass(frozen=True)
class DecodeWeights:
    """How the terms are weighed. The defaults were picked on 3,000 LSPET *training* crops
    (``training/fit_skeleton_prior.py --sweep``): the best PCK@0.2 among the settings that bring
    merged knees and ankles to about 5%."""
    unary: float = 4.0
    sym: float = 1.0
    merge: float = 6.0
    merge_radius: float = 1.5     # heatmap pixels: closer than this counts as one spot
    peaks: int = 3                # K local maxima kept per map
    floor: float = 0.05           # heatmap values below this count as this (log of 0 is -inf)
    only_merged: bool = True      # search only pairs whose arg-maxes coincide; the rest keep them


def save_prior(path, prior: SkeletonPrior) -> None:
    """Write a prior as an .npz (three arrays)."""
    with open(path, "wb") as fh:
        np.savez(fh, bone_logp=prior.bone_logp, sym_logp=prior.sym_logp, outside=np.float32(prior.outside),
                 heatmap_size=np.int32(prior.heatmap_size))


def load_prior(path) -> SkeletonPrior:
    """Read a prior written by ``save_prior``; ValueError when its tables do not fit PRIOR_BONES."""
    with np.load(path, allow_pickle=False) as z:
        prior = SkeletonPrior(z["bone_logp"].astype(np.float32), z["sym_logp"].astype(np.float32),
                              float(z["outside"]), int(z["heatmap_size"]))
    b = prior.bone_logp
    if b.ndim != 3 or b.shape[0] != len(PRIOR_BONES) or b.shape[1] != b.shape[2] or b.shape[1] % 2 == 0:
        raise ValueError(f"skeleton prior {path}: bone tables of shape {b.shape}, expected "
                         f"({len(PRIOR_BONES)}, 2R+1, 2R+1)")
    return prior


def fit_prior(joints: np.ndarray, visible: np.ndarray, heatmap_size: int, radius: int = 24, sym_bins: int = 41,
              smooth: float = 1.5, uniform: float = 0.02) -> SkeletonPrior:
    """Learn the prior from labelled poses in heatmap pixels of their crops.

    joints (N, J, 2), visible (N, J). Each bone's displacement histogram is pooled with its
    mirror image (the other side's bone, x negated), smoothed, mixed with a uniform density so no
    pose is impossible, and logged.
    """
    joints = np.asarray(joints, np.float64)
    visible = np.asarray(visible, bool)
    side = 2 * radius + 1
    tables = []
    for p, c in PRIOR_BONES:
        mp, mc = FLIP_PERM[p], FLIP_PERM[c]
        d = []
        for (a, b, sx) in ((p, c, 1.0), (mp, mc, -1.0)):
            ok = visible[:, a] & visible[:, b]
            dd = joints[ok, b] - joints[ok, a]
            dd[:, 0] *= sx
            d.append(dd)
        d = np.concatenate(d)
        hist = np.zeros((side, side))
        ij = np.rint(d).astype(int) + radius
        inside = ((ij >= 0) & (ij < side)).all(1)
        np.add.at(hist, (ij[inside, 1], ij[inside, 0]), 1.0)
        hist = codec.gaussian_blur(hist[None, None].astype(np.float32), smooth)[0, 0].astype(np.float64)
        dens = hist / max(hist.sum(), 1.0)
        dens = (1 - uniform) * dens + uniform / side ** 2
        tables.append(np.log(dens))
    ratios = []
    for a, b in SYM_PAIRS:
        (pa, ca), (pb, cb) = PRIOR_BONES[a], PRIOR_BONES[b]
        ok = visible[:, pa] & visible[:, ca] & visible[:, pb] & visible[:, cb]
        la = np.linalg.norm(joints[ok, ca] - joints[ok, pa], axis=-1)
        lb = np.linalg.norm(joints[ok, cb] - joints[ok, pb], axis=-1)
        r = (la - lb) / np.maximum(la + lb, 1e-6)
        ratios.append(np.concatenate([r, -r]))
    ratios = np.concatenate(ratios)
    hist, _ = np.histogram(ratios, bins=sym_bins, range=(-1, 1))
    hist = np.convolve(hist.astype(np.float64), np.exp(-0.5 * np.arange(-3, 4) ** 2), "same")
    dens = (1 - uniform) * hist / max(hist.sum(), 1.0) + uniform / sym_bins
    outside = float(np.log(uniform / side ** 2))
    return SkeletonPrior(np.stack(tables).astype(np.float32), np.log(dens).astype(np.float32), outside,
                         int(heatmap_size))


def peaks(sm: np.ndarray, k: int, rel: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Top k local maxima (3x3) of each smoothed map above rel x its maximum.

    sm (N, J, H, W) -> idx (N, J, k) flat indices (the arg-max first; missing peaks repeat it),
    ok (N, J, k) bool (a real peak).
    """
    N, J, H, W = sm.shape
    pad = np.pad(sm, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    is_max = np.ones(sm.shape, bool)
    for dy in (0, 1, 2):
        for dx in (0, 1, 2):
            if dy == 1 and dx == 1:
                continue
            is_max &= sm >= pad[:, :, dy:dy + H, dx:dx + W]
    top = sm.reshape(N, J, -1).max(-1)
    is_max &= sm > rel * top[..., None, None]
    score = np.where(is_max, sm, -np.inf).reshape(N, J, -1)
    idx = np.argsort(-score, axis=-1)[..., :k]
    ok = np.isfinite(np.take_along_axis(score, idx, -1))
    idx = np.where(ok, idx, idx[..., :1])      # the first is always a real peak (the arg-max)
    return idx, ok


def decode(heatmaps: np.ndarray, prior: SkeletonPrior, weights: DecodeWeights = DecodeWeights(),
           blur: float = codec.DECODE_BLUR) -> tuple[np.ndarray, np.ndarray]:
    """Skeleton-consistent peaks.

    heatmaps (N, J, H, W) of person crops -> coords (N, J, 2) heatmap pixels, scores (N, J) (the
    raw map's value at the chosen peak, clipped to [0, 1]), like ``codec.decode``.
    """
    hm = np.asarray(heatmaps, np.float32)
    assert hm.ndim == 4 and hm.shape[1] == NUM_JOINTS, hm.shape
    N, J, H, W = hm.shape
    if N == 0:
        return np.zeros((0, J, 2), np.float32), np.zeros((0, J), np.float32)
    sm = codec.gaussian_blur(hm, blur) if blur > 0 else hm
    K = weights.peaks
    idx, ok = peaks(sm, K)                                        # (N, J, K)
    iy, ix = idx // W, idx % W
    xy = np.stack([ix, iy], -1).astype(np.float32)
    # Sub-pixel step on the map each peak came from.
    flatN = np.repeat(np.arange(N), J * K).reshape(N, J, K)
    flatJ = np.broadcast_to(np.arange(J)[None, :, None], (N, J, K))
    off = codec.taylor_offsets(sm[flatN.reshape(-1), flatJ.reshape(-1)][:, None],
                                ix.reshape(-1, 1), iy.reshape(-1, 1))
    xy += off.reshape(N, J, K, 2)
    logsm = np.log(np.maximum(sm, weights.floor))
    n_ix = np.arange(N)[:, None]

    # Candidates and unary terms per node: states are candidate indices (single) or ordered
    # pairs (right, left) of the pooled candidates of both maps.
    state_xy, state_src, unary = [], [], []
    for node in NODES:
        if len(node) == 1:
            j = node[0]
            cand_xy = xy[:, j]                                    # (N, K, 2)
            u = np.where(ok[:, j], logsm[n_ix, j, iy[:, j], ix[:, j]], -np.inf)
            if weights.only_merged:
                u = np.where(np.arange(K) == 0, u, -np.inf)       # the arg-max only
            state_xy.append(cand_xy[:, :, None, :])               # (N, S, 1, 2)
            state_src.append(np.stack([iy[:, j], ix[:, j]], -1)[:, :, None])
            unary.append(weights.unary * u)
            continue
        r, l = node
        cxy = np.concatenate([xy[:, r], xy[:, l]], 1)             # (N, 2K, 2)
        cy = np.concatenate([iy[:, r], iy[:, l]], 1)
        cx = np.concatenate([ix[:, r], ix[:, l]], 1)
        cok = np.concatenate([ok[:, r], ok[:, l]], 1)
        ur = np.where(cok, logsm[n_ix, r, cy, cx], -np.inf)       # right joint on each candidate
        ul = np.where(cok, logsm[n_ix, l, cy, cx], -np.inf)
        u = weights.unary * (ur[:, :, None] + ul[:, None, :])     # (N, 2K, 2K)
        dist = np.linalg.norm(cxy[:, :, None] - cxy[:, None, :], axis=-1) * (prior.heatmap_size / H)
        u = u - weights.merge * (dist < weights.merge_radius)
        C = 2 * K
        if weights.only_merged:
            # (right arg-max, left arg-max) is state (0, K); other states only where those coincide
            merged = dist[:, 0, K] < weights.merge_radius
            keep = np.zeros((N, C, C), bool)
            keep[:, 0, K] = True
            keep |= merged[:, None, None]
            u = np.where(keep, u, -np.inf)
        a, b = np.meshgrid(np.arange(C), np.arange(C), indexing="ij")
        a, b = a.reshape(-1), b.reshape(-1)
        state_xy.append(np.stack([cxy[:, a], cxy[:, b]], 2))      # (N, C*C, 2, 2)
        state_src.append(np.stack([np.stack([cy[:, a], cx[:, a]], -1),
                                   np.stack([cy[:, b], cx[:, b]], -1)], 2))
        unary.append(u.reshape(N, C * C))

    # Max-sum from the leaves up (children come after parents in NODES).
    total = [u.copy() for u in unary]
    choice = [None] * len(NODES)
    for n in range(len(NODES) - 1, 0, -1):
        p = NODE_PARENT[n]
        pair = _pair_terms(NODES[p], NODES[n], state_xy[p], state_xy[n], prior, weights, prior.heatmap_size / H)
        scores = pair + total[n][:, None, :]                      # (N, Sp, Sc)
        choice[n] = scores.argmax(-1)
        total[p] = total[p] + scores.max(-1)
    best = [None] * len(NODES)
    best[0] = total[0].argmax(-1)
    for n in range(1, len(NODES)):
        best[n] = choice[n][np.arange(N), best[NODE_PARENT[n]]]
    coords = np.zeros((N, J, 2), np.float32)
    scores = np.zeros((N, J), np.float32)
    rows = np.arange(N)
    for n, node in enumerate(NODES):
        pos = state_xy[n][rows, best[n]]                          # (N, m, 2)
        src = state_src[n][rows, best[n]]                         # (N, m, 2) y, x of the peak
        for m, j in enumerate(node):
            coords[:, j] = pos[:, m]
            scores[:, j] = hm[rows, j, src[:, m, 0], src[:, m, 1]]
    return coords, np.clip(scores, 0.0, 1.0)


def _lookup(prior: SkeletonPrior, bone: int, d: np.ndarray) -> np.ndarray:
    """log density of displacements d (..., 2) for bone."""
    R = prior.radius
    ij = np.rint(d).astype(np.int64) + R
    inside = ((ij >= 0) & (ij <= 2 * R)).all(-1)
    ij = np.clip(ij, 0, 2 * R)
    return np.where(inside, prior.bone_logp[bone][ij[..., 1], ij[..., 0]], prior.outside)


def _pair_terms(pnode, cnode, pxy, cxy, prior: SkeletonPrior, w: DecodeWeights, scale: float) -> np.ndarray:
    """(N, Sp, Sc) bone (and symmetry) log terms between parent and child node states.
    pxy (N, Sp, mp, 2), cxy (N, Sc, mc, 2) in heatmap pixels; scale: to the prior's pixels."""
    N = pxy.shape[0]
    out = np.zeros((N, pxy.shape[1], cxy.shape[1]), np.float32)
    lengths = []
    for m, c in enumerate(cnode):
        mp = m if len(pnode) == len(cnode) else 0
        d = (cxy[:, None, :, m] - pxy[:, :, None, mp]) * scale    # (N, Sp, Sc, 2)
        out += _lookup(prior, _BONE_INDEX[(pnode[mp], c)], d)
        lengths.append(np.linalg.norm(d, axis=-1))
    if len(cnode) == 2 and len(pnode) == 2 and w.sym:
        la, lb = lengths
        r = (la - lb) / np.maximum(la + lb, 1e-6)
        bins = len(prior.sym_logp)
        k = np.clip(((r + 1) / 2 * bins).astype(np.int64), 0, bins - 1)
        out += w.sym * prior.sym_logp[k]
    return out
