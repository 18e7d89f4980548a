"""Bone rotations from joint positions (pure numpy).

Each bone's world rotation W (the rotation that takes the rest bone to the posed
bone, in world axes) is a swing plus a twist:

* swing: the shortest arc from the bone's direction as carried by its parent's
  rotation to the observed direction (for the root: from the rest direction);
* twist: about the observed direction, turning the bone's local X towards a
  reference vector observed in the same frame (for the spine the hip and
  shoulder lines, for limbs the normal of the limb plane, i.e. the knee or elbow
  hinge axis).  When the reference is nearly parallel to the bone (a straight
  limb), its weight goes to zero and the bone keeps the twist carried from its
  parent, so roll does not jump between frames.

Quaternions are (w, x, y, z), Blender's order.  Over time they are made
sign-continuous (q and -q are the same rotation; a sign change would make
interpolated keys spin the long way round).
"""
from __future__ import annotations

import numpy as np

from . import skeleton as sk

_EPS = 1e-9


# --------------------------------------------------------------------------- vectors
def normalize(v: np.ndarray, eps: float = _EPS) -> np.ndarray:
    """(..., 3) -> (..., 3) unit vectors (zero vectors stay zero)."""
    n = np.linalg.norm(v, axis=-1, keepdims=True)
    return v / np.maximum(n, eps)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shortest-arc rotation taking unit vectors a to b: (..., 3), (..., 3) -> (..., 3, 3).

    For opposite vectors it turns by pi about an axis perpendicular to a.
    """
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    # Rodrigues with k = v / |v|, sin = |v|, cos = c:  R = I + [v]x + [v]x^2 / (1 + c)
    opp = c < -1.0 + 1e-8
    if np.any(opp):
        # any axis perpendicular to a; rotate by pi: R = 2 k k^T - I
        ax = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
        k = normalize(np.cross(a, ax))
    vx = _skew(v)
    denom = np.where(opp, 1.0, 1.0 + c)[..., None, None]
    R = np.eye(3) + vx + vx @ vx / denom
    if np.any(opp):
        Rpi = 2.0 * k[..., :, None] * k[..., None, :] - np.eye(3)
        R = np.where(opp[..., None, None], Rpi, R)
    return R


def _skew(v: np.ndarray) -> np.ndarray:
    z = np.zeros(v.shape[:-1])
    return np.stack([np.stack([z, -v[..., 2], v[..., 1]], -1),
                     np.stack([v[..., 2], z, -v[..., 0]], -1),
                     np.stack([-v[..., 1], v[..., 0], z], -1)], -2)


# --------------------------------------------------------------------------- quaternions
def quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0."""
    R = np.asarray(R, float)
    m00, m11, m22 = R[..., 0, 0], R[..., 1, 1], R[..., 2, 2]
    # four candidate magnitudes; take the largest for numerical stability (Shepperd)
    t = np.stack([1 + m00 + m11 + m22, 1 + m00 - m11 - m22,
                  1 - m00 + m11 - m22, 1 - m00 - m11 + m22], -1)
    k = np.argmax(t, axis=-1)
    s = np.sqrt(np.maximum(np.take_along_axis(t, k[..., None], -1)[..., 0], _EPS)) * 2.0
    q = np.empty(R.shape[:-2] + (4,))
    r = R
    cand = [
        np.stack([0.25 * s, (r[..., 2, 1] - r[..., 1, 2]) / s,
                  (r[..., 0, 2] - r[..., 2, 0]) / s, (r[..., 1, 0] - r[..., 0, 1]) / s], -1),
        np.stack([(r[..., 2, 1] - r[..., 1, 2]) / s, 0.25 * s,
                  (r[..., 0, 1] + r[..., 1, 0]) / s, (r[..., 0, 2] + r[..., 2, 0]) / s], -1),
        np.stack([(r[..., 0, 2] - r[..., 2, 0]) / s, (r[..., 0, 1] + r[..., 1, 0]) / s,
                  0.25 * s, (r[..., 1, 2] + r[..., 2, 1]) / s], -1),
        np.stack([(r[..., 1, 0] - r[..., 0, 1]) / s, (r[..., 0, 2] + r[..., 2, 0]) / s,
                  (r[..., 1, 2] + r[..., 2, 1]) / s, 0.25 * s], -1),
    ]
    for i in range(4):
        sel = k == i
        q[sel] = cand[i][sel]
    q = normalize_quat(q)
    return np.where(q[..., :1] < 0, -q, q)


def matrix_from_quat(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (w, x, y, z) -> (..., 3, 3) rotation matrices."""
    q = normalize_quat(np.asarray(q, float))
    w, x, y, z = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], -2)


def normalize_quat(q: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    out = q / np.maximum(n, _EPS)
    bad = n[..., 0] < _EPS
    if np.any(bad):
        out[bad] = (1.0, 0.0, 0.0, 0.0)
    return out


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product (..., 4) x (..., 4) -> (..., 4)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, float), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, float), -1, 0)
    return np.stack([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw], -1)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return np.asarray(q, float) * np.array([1.0, -1.0, -1.0, -1.0])


def make_sign_continuous(q: np.ndarray) -> np.ndarray:
    """Flip signs so consecutive quaternions have a non-negative dot product.

    q: (F, ..., 4) quaternions over F frames (fill gaps before calling).
    Returns a copy; q[0] keeps its sign.
    """
    q = np.array(q, dtype=float, copy=True)
    if q.shape[0] < 2:
        return q
    d = np.sum(q[1:] * q[:-1], axis=-1, keepdims=True)
    flips = np.cumprod(np.where(d < 0, -1.0, 1.0), axis=0)
    q[1:] *= flips
    return q


# --------------------------------------------------------------------------- solving
def reference_vectors(joints: np.ndarray, joint_names) -> dict[str, np.ndarray]:
    """Per-frame twist references, Blender world.

    joints: (F, J, 3) world positions.  Returns name -> (F, 3) (not normalized;
    magnitude is a confidence: the hinge terms vanish for straight limbs).
    """
    ji = sk.joint_indices(joint_names)
    P = {n: joints[:, i] for n, i in ji.items()}
    hips = normalize(P["l_hip"] - P["r_hip"])
    shoulders = normalize(P["l_shoulder"] - P["r_shoulder"])
    up = normalize(P["thorax"] - P["pelvis"])

    def hinge(a, b, c, sign):
        # normal of the plane (a, b, c): |.| = sin(bend angle)
        return sign * np.cross(normalize(P[b] - P[a]), normalize(P[c] - P[b]))

    # fallback weights 0.25: a 15 degree bend already outweighs the fallback
    return {
        "torso_lateral": hips + shoulders,
        "shoulder_lateral": shoulders,
        "up": up,
        "knee.R": hinge("r_hip", "r_knee", "r_ankle", 1.0) + 0.25 * hips,
        "knee.L": hinge("l_hip", "l_knee", "l_ankle", 1.0) + 0.25 * hips,
        "elbow.R": hinge("r_shoulder", "r_elbow", "r_wrist", 1.0) + 0.25 * up,
        "elbow.L": hinge("l_shoulder", "l_elbow", "l_wrist", -1.0) + 0.25 * up,
    }


def solve_world_rotations(joints: np.ndarray, joint_names, ref_threshold: float = 0.1):
    """World rotations of every bone, per frame.

    joints: (F, J, 3) finite world positions (Blender axes).
    Returns (F, B, 3, 3): W[f, b] maps rest bone b onto its pose at frame f, so
    W @ rest_dir is the observed bone direction and W @ rest_x its local X.
    """
    joints = np.asarray(joints, float)
    assert joints.ndim == 3 and joints.shape[2] == 3, joints.shape
    F = joints.shape[0]
    ji = sk.joint_indices(joint_names)
    refs = reference_vectors(joints, joint_names)
    parents = sk.bone_parents()
    W = np.empty((F, len(sk.BONES), 3, 3))
    for i, b in enumerate(sk.BONES):
        d0 = np.asarray(b.rest_dir, float)
        x0 = np.asarray(b.rest_x, float)
        d = normalize(joints[:, ji[b.tail]] - joints[:, ji[b.head]])
        base = W[:, parents[i]] if parents[i] >= 0 else np.broadcast_to(np.eye(3), (F, 3, 3))
        carried = base @ d0
        S = rotation_between(carried, d) @ base                       # (F, 3, 3)
        x_cur = S @ x0
        r = refs[b.ref]
        p = r - np.sum(r * d, -1, keepdims=True) * d
        w = np.clip(np.linalg.norm(p, axis=-1, keepdims=True) / ref_threshold, 0.0, 1.0)
        x_des = w * normalize(p) + (1.0 - w) * x_cur
        x_des = x_des - np.sum(x_des * d, -1, keepdims=True) * d
        nrm = np.linalg.norm(x_des, axis=-1, keepdims=True)
        x_des = np.where(nrm > 1e-6, x_des / np.maximum(nrm, _EPS), x_cur)
        R = np.stack([x_des, d, np.cross(x_des, d)], axis=-1)        # posed frame
        R0 = np.stack([x0, d0, np.cross(x0, d0)], axis=-1)           # rest frame
        W[:, i] = R @ R0.T
    return W


def local_rotations(world_rot: np.ndarray, parents: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """Blender pose-bone rotations from world rotations.

    world_rot: (F, B, 3, 3) world deltas; parents: (B,) (-1 = root);
    bone_rest: (B, 3, 3) rest rotation of each bone in armature space
    (Blender ``bone.matrix_local``).  Returns (F, B, 3, 3)
    L_b = Rb^T W_p^T W_b Rb, the matrix keyed as ``rotation_quaternion``.
    """
    F, B = world_rot.shape[:2]
    assert parents.shape == (B,) and bone_rest.shape == (B, 3, 3)
    out = np.empty_like(world_rot)
    for b in range(B):
        rel = world_rot[:, b]
        if parents[b] >= 0:
            rel = np.swapaxes(world_rot[:, parents[b]], -1, -2) @ rel
        out[:, b] = bone_rest[b].T @ rel @ bone_rest[b]
    return out


def world_from_local(local_rot: np.ndarray, parents: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """Inverse of :func:`local_rotations`: (F, B, 3, 3) -> (F, B, 3, 3)."""
    out = np.empty_like(local_rot)
    for b in range(local_rot.shape[1]):
        w = bone_rest[b] @ local_rot[:, b] @ bone_rest[b].T
        if parents[b] >= 0:
            w = out[:, parents[b]] @ w
        out[:, b] = w
    return out
