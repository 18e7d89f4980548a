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

    R = c I + [v]x + v v^T / (1 + c) with v = a x b, c = a . b (Rodrigues).
    For opposite vectors it turns by pi about an axis perpendicular to a.
    """
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    v = np.cross(a, b)
    c = np.sum(a * b, axis=-1)
    opp = c < -1.0 + 1e-8
    inv = 1.0 / np.where(opp, 1.0, 1.0 + c)
    R = v[..., :, None] * v[..., None, :] * inv[..., None, None]
    R[..., 0, 0] += c
    R[..., 1, 1] += c
    R[..., 2, 2] += c
    R[..., 0, 1] -= v[..., 2]
    R[..., 0, 2] += v[..., 1]
    R[..., 1, 0] += v[..., 2]
    R[..., 1, 2] -= v[..., 0]
    R[..., 2, 0] -= v[..., 1]
    R[..., 2, 1] += v[..., 0]
    if np.any(opp):
        # any axis k perpendicular to a; a turn by pi is R = 2 k k^T - I
        ax = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
        k = normalize(np.cross(a, ax))
        Rpi = 2.0 * k[..., :, None] * k[..., None, :] - np.eye(3)
        R = np.where(opp[..., None, None], Rpi, R)
    return R


def mm(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Batched 3x3 product A @ B for (..., 3, 3) stacks (numpy's stacked matmul is slow
    for tiny matrices); a plain (3, 3) operand goes through one BLAS call."""
    A = np.asarray(A, float)
    B = np.asarray(B, float)
    if B.ndim == 2:
        return (A.reshape(-1, 3) @ B).reshape(A.shape)
    if A.ndim == 2:
        return np.swapaxes(mm(np.swapaxes(B, -1, -2), A.T), -1, -2)
    A, B = np.broadcast_arrays(A, B)
    out = np.empty(A.shape)
    for i in range(3):
        for k in range(3):
            out[..., i, k] = A[..., i, 0] * B[..., 0, k] + A[..., i, 1] * B[..., 1, k] + A[..., i, 2] * B[..., 2, k]
    return out


def mv(A: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Batched A @ v: (..., 3, 3), (..., 3) -> (..., 3)."""
    A = np.asarray(A, float)
    v = np.asarray(v, float)
    return A[..., :, 0] * v[..., None, 0] + A[..., :, 1] * v[..., None, 1] + A[..., :, 2] * v[..., None, 2]


def tr(A: np.ndarray) -> np.ndarray:
    """Transpose of the last two axes."""
    return np.swapaxes(A, -1, -2)


# --------------------------------------------------------------------------- quaternions
def quat_from_matrix(R: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (w, x, y, z), w >= 0.

    Shepperd's method, vectorized: the symmetric 4x4 matrix M = 4 q q^T is built
    from R's entries; its row k with the largest diagonal gives q = M[k] / (2 sqrt(M[k, k])),
    accurate for any rotation (and for slightly non-orthonormal float32 input).
    """
    R = np.asarray(R, float)
    r = [[R[..., i, j] for j in range(3)] for i in range(3)]
    M = np.empty(R.shape[:-2] + (4, 4))
    M[..., 0, 0] = 1 + r[0][0] + r[1][1] + r[2][2]
    M[..., 1, 1] = 1 + r[0][0] - r[1][1] - r[2][2]
    M[..., 2, 2] = 1 - r[0][0] + r[1][1] - r[2][2]
    M[..., 3, 3] = 1 - r[0][0] - r[1][1] + r[2][2]
    M[..., 0, 1] = M[..., 1, 0] = r[2][1] - r[1][2]
    M[..., 0, 2] = M[..., 2, 0] = r[0][2] - r[2][0]
    M[..., 0, 3] = M[..., 3, 0] = r[1][0] - r[0][1]
    M[..., 1, 2] = M[..., 2, 1] = r[0][1] + r[1][0]
    M[..., 1, 3] = M[..., 3, 1] = r[0][2] + r[2][0]
    M[..., 2, 3] = M[..., 3, 2] = r[1][2] + r[2][1]
    diag = np.stack([M[..., i, i] for i in range(4)], -1)
    k = np.argmax(diag, axis=-1)
    row = np.take_along_axis(M, k[..., None, None], axis=-2)[..., 0, :]
    q = row / (2.0 * np.sqrt(np.maximum(np.take_along_axis(diag, k[..., None], -1), _EPS)))
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
def _cross(a, b):
    """Cross product of component-first vectors (3, N) x (3, N) -> (3, N)."""
    return np.stack([a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]])


def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _unit(a):
    return a / np.maximum(np.sqrt(_dot(a, a)), _EPS)


def _combo(M, w):
    """sum_a w[a] * M[:, a] for (3, 3, N) M and a constant (3,) w, skipping zeros -> (3, N)."""
    out = None
    for a in range(3):
        if w[a] != 0.0:
            term = w[a] * M[:, a]
            out = term if out is None else out + term
    return np.zeros(M.shape[::2]) if out is None else out


def reference_vectors(joints: np.ndarray, joint_names) -> dict[str, np.ndarray]:
    """Per-frame twist references, Blender world.

    joints: (F, J, 3) world positions.  Returns name -> (F, 3) (not normalized;
    magnitude is a confidence: the hinge terms vanish for straight limbs).
    """
    P = np.ascontiguousarray(np.asarray(joints, float).transpose(1, 2, 0))
    return {k: v.T for k, v in _reference_vectors_cf(P, sk.joint_indices(joint_names)).items()}


def _reference_vectors_cf(P, ji):
    """P: (J, 3, F) component-first joints -> name -> (3, F)."""
    hips = _unit(P[ji["l_hip"]] - P[ji["r_hip"]])
    shoulders = _unit(P[ji["l_shoulder"]] - P[ji["r_shoulder"]])
    up = _unit(P[ji["thorax"]] - P[ji["pelvis"]])

    def hinge(a, b, c, sign):
        # normal of the plane (a, b, c): |.| = sin(bend angle)
        n = _cross(_unit(P[ji[b]] - P[ji[a]]), _unit(P[ji[c]] - P[ji[b]]))
        return n if sign > 0 else -n

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
    return np.ascontiguousarray(_solve_cf(joints, joint_names, ref_threshold).transpose(3, 0, 1, 2))


def _solve_cf(joints, joint_names, ref_threshold=0.1):
    """Component-first solve: (F, J, 3) -> (B, 3, 3, F) (contiguous per-component rows)."""
    F = joints.shape[0]
    ji = sk.joint_indices(joint_names)
    P = np.ascontiguousarray(joints.transpose(1, 2, 0))             # (J, 3, F)
    refs = _reference_vectors_cf(P, ji)
    parents = sk.bone_parents()
    W = np.empty((len(sk.BONES), 3, 3, F))
    for i, b in enumerate(sk.BONES):
        d0 = np.asarray(b.rest_dir, float)
        x0 = np.asarray(b.rest_x, float)
        d = _unit(P[ji[b.tail]] - P[ji[b.head]])                      # observed direction
        if parents[i] >= 0:
            u_d = _combo(W[parents[i]], d0)                           # parent-carried direction
            u_x = _combo(W[parents[i]], x0)                           # and local X
        else:
            u_d = np.broadcast_to(d0[:, None], d.shape)
            u_x = np.broadcast_to(x0[:, None], d.shape)
        # swing: turn u_x by the shortest arc u_d -> d (Rodrigues on a vector)
        v = _cross(u_d, d)
        c = _dot(u_d, d)
        opp = c < -1.0 + 1e-8
        x_cur = c * u_x + _cross(v, u_x) + v * (_dot(v, u_x) / np.where(opp, 1.0, 1.0 + c))
        if np.any(opp):
            # half turn about an axis k perpendicular to u_d: x -> 2 k (k . x) - x
            ax = np.where(np.abs(u_d[0]) < 0.9, np.array([[1.0], [0.0], [0.0]]), np.array([[0.0], [1.0], [0.0]]))
            k = _unit(_cross(u_d, ax))
            x_pi = 2.0 * k * _dot(k, u_x) - u_x
            x_cur = np.where(opp, x_pi, x_cur)
        # twist: towards the reference where it is well defined
        r = refs[b.ref]
        p = r - _dot(r, d) * d
        pn = np.sqrt(_dot(p, p))
        w = np.clip(pn / ref_threshold, 0.0, 1.0)
        x_des = w * (p / np.maximum(pn, _EPS)) + (1.0 - w) * x_cur
        x_des = x_des - _dot(x_des, d) * d
        n = np.sqrt(_dot(x_des, x_des))
        x_des = np.where(n > 1e-6, x_des / np.maximum(n, _EPS), x_cur)
        z = _cross(x_des, d)
        # W = R R0^T with R = [x_des, d, z] (columns), R0 = [x0, d0, x0 x d0]
        R0 = np.stack([x0, d0, np.cross(x0, d0)], axis=1)
        cols = (x_des, d, z)
        for kk in range(3):
            acc = None
            for j in range(3):
                if R0[kk, j] != 0.0:
                    term = R0[kk, j] * cols[j]
                    acc = term if acc is None else acc + term
            W[i, :, kk] = acc
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
    Wcf = np.ascontiguousarray(world_rot.transpose(1, 2, 3, 0))
    return np.ascontiguousarray(_local_cf(Wcf, parents, bone_rest).transpose(3, 0, 1, 2))


def _local_cf(W, parents, bone_rest):
    """(B, 3, 3, F) world rotations -> (B, 3, 3, F) local ones (see local_rotations)."""
    B, F = W.shape[0], W.shape[-1]
    out = np.empty_like(W)
    for b in range(B):
        if parents[b] >= 0:
            Wp, Wb = W[parents[b]], W[b]
            rel = np.empty((3, 3, F))
            for i in range(3):
                for k in range(3):
                    rel[i, k] = Wp[0, i] * Wb[0, k] + Wp[1, i] * Wb[1, k] + Wp[2, i] * Wb[2, k]
        else:
            rel = W[b]
        Rb = np.asarray(bone_rest[b], float)
        # vec(Rb^T rel Rb) = K vec(rel) with K[(i,k),(j,l)] = Rb[j,i] Rb[l,k]
        K = np.einsum("ji,lk->ikjl", Rb, Rb).reshape(9, 9)
        out[b] = (K @ rel.reshape(9, F)).reshape(3, 3, F)
    return out


def local_quaternions(world_rot_cf: np.ndarray, parents: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """Component-first fast path: (B, 3, 3, F) world rotations -> (F, B, 4) local
    quaternions, sign-continuous over F."""
    L = _local_cf(world_rot_cf, parents, bone_rest)
    q = _quat_from_matrix_cf(L)                                        # (B, 4, F)
    return make_sign_continuous(np.ascontiguousarray(q.transpose(2, 0, 1)))


def _quat_from_matrix_cf(R):
    """(..., 3, 3, N) -> (..., 4, N), same method as quat_from_matrix.

    Most mocap rotations are under 90 degrees, where w is the largest component
    (row 0 of M); the other rows are only evaluated where they are needed.
    """
    r = [[R[..., i, j, :] for j in range(3)] for i in range(3)]
    tr_ = r[0][0] + r[1][1] + r[2][2]
    d = np.stack([1 + tr_, 1 + r[0][0] - r[1][1] - r[2][2],
                  1 - r[0][0] + r[1][1] - r[2][2], 1 - r[0][0] - r[1][1] + r[2][2]], 0)   # (4, ..., N)
    k = np.argmax(d, axis=0)
    q = np.empty((4,) + k.shape)
    inv = 0.5 / np.sqrt(np.maximum(d[0], _EPS))
    q[0] = d[0] * inv
    q[1] = (r[2][1] - r[1][2]) * inv
    q[2] = (r[0][2] - r[2][0]) * inv
    q[3] = (r[1][0] - r[0][1]) * inv
    other = k != 0
    if np.any(other):
        Rs = np.moveaxis(R, (-3, -2), (0, 1))[:, :, other]          # (3, 3, n)
        ks = k[other]
        ds = d[:, other]
        m = {(i, j): Rs[i, j] for i in range(3) for j in range(3)}
        sx, sy, sz = m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1]
        pxy, pxz, pyz = m[0, 1] + m[1, 0], m[0, 2] + m[2, 0], m[1, 2] + m[2, 1]
        k1, k2 = ks == 1, ks == 2
        rows = np.stack([np.where(k1, sx, np.where(k2, sy, sz)),
                         np.where(k1, ds[1], np.where(k2, pxy, pxz)),
                         np.where(k1, pxy, np.where(k2, ds[2], pyz)),
                         np.where(k1, pxz, np.where(k2, pyz, ds[3]))])
        dk = np.take_along_axis(ds, ks[None], 0)[0]
        q[:, other] = rows * (0.5 / np.sqrt(np.maximum(dk, _EPS)))
    q /= np.maximum(np.sqrt((q * q).sum(0)), _EPS)
    q = np.where(q[:1] < 0, -q, q)
    return np.moveaxis(q, 0, -2)


def world_from_local(local_rot: np.ndarray, parents: np.ndarray, bone_rest: np.ndarray) -> np.ndarray:
    """Inverse of :func:`local_rotations`: (F, B, 3, 3) -> (F, B, 3, 3)."""
    out = np.empty_like(local_rot)
    for b in range(local_rot.shape[1]):
        w = mm(mm(bone_rest[b], local_rot[:, b]), bone_rest[b].T)
        if parents[b] >= 0:
            w = mm(out[:, parents[b]], w)
        out[:, b] = w
    return out
