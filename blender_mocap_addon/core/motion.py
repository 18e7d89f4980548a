"""One person's pose-file track -> rest skeleton + per-frame bone rotations (pure numpy).

This is the maths behind "Import pose file": joints in the camera frame go to
Blender axes, the rest pose takes the person's median bone lengths, and every
valid frame gets a root location and one local quaternion per bone, ready to
be keyed (see keys_bpy).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import floor as fl
from . import foot_lock as fk
from . import rotations as rot
from . import skeleton as sk


@dataclass
class PersonMotion:
    """Solved motion of one person.

    frames: (K,) int pose-file frame indices that are keyed (valid frames);
    joints_world: (K, J, 3) Blender-world joints used for the solve;
    world_rot_cf: (B, 3, 3, K) world deltas, component-first (see the
    ``world_rot`` property for (K, B, 3, 3)); local_quat: (K, B, 4) (w, x, y, z),
    sign-continuous, relative to ``rest.frames``; root_world: (K, 3) pelvis;
    root_location: (K, 3) root pose-bone location (rest-bone local axes);
    floor_z: world height of the person's ankles when a foot is on the floor (ankle_height in
    a world frame with the feet put on the floor; otherwise where the ankles stand, see
    floor.contact_height);
    floor_shift: how far the person was moved up (m) to put the feet on the floor;
    contacts: (K, 2) bool (right, left ankle) or None; lock: foot_lock.LockResult or None.
    """
    person_id: int
    rest: sk.RestSkeleton
    frames: np.ndarray
    joints_world: np.ndarray
    world_rot_cf: np.ndarray
    local_quat: np.ndarray
    root_world: np.ndarray
    root_location: np.ndarray
    warnings: list = field(default_factory=list)
    floor_z: float = float("nan")
    floor_shift: float = 0.0
    contacts: np.ndarray | None = None
    lock: fk.LockResult | None = None

    @property
    def world_rot(self) -> np.ndarray:
        """(K, B, 3, 3) world rotations."""
        return np.ascontiguousarray(self.world_rot_cf.transpose(3, 0, 1, 2))


def smooth_tracks(x: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over time inside each run of valid frames.

    x: (F, ...) values; valid: (F,) bool; sigma: frames (<= 0: no smoothing).
    Edges are padded with the run's end values.  Returns a copy.
    """
    x = np.array(x, dtype=np.float64, copy=True)
    if sigma <= 0 or x.shape[0] < 2:
        return x
    r = int(np.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    v = np.asarray(valid, bool)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], v.astype(np.int8), [0]])))
    for s, e in zip(edges[::2], edges[1::2]):
        seg = x[s:e]
        pad = np.concatenate([np.repeat(seg[:1], r, 0), seg, np.repeat(seg[-1:], r, 0)], 0)
        out = np.zeros_like(seg)
        for i, w in enumerate(k):
            out += w * pad[i:i + len(seg)]
        x[s:e] = out
    return x


def solve_person(joints_cam: np.ndarray, valid: np.ndarray, joint_names, person_id: int = 0,
                 smoothing: float = 0.0, bone_rest: np.ndarray | None = None,
                 local: bool = True, world_from_camera: np.ndarray | None = None,
                 contacts: np.ndarray | None = None, feet_on_floor: bool = False,
                 lock_feet: bool = False, ankle_height: float = 0.0) -> PersonMotion:
    """Solve one person.

    joints_cam: (F, J, 3) camera-frame joints (metres, OpenCV axes);
    valid: (F,) bool; smoothing: Gaussian sigma in frames (0 = off);
    bone_rest: optional (B, 3, 3) rest rotations actually used by the armature
    (Blender's ``bone.matrix_local``); defaults to the skeleton's own rest frames.
    local=False skips the local quaternions (call :func:`localize` later).
    world_from_camera: (4, 4) camera -> world (floor z = 0), None = camera at the origin
    (axes.cam_to_blender); contacts: (F, 2) bool (right, left ankle) or None;
    feet_on_floor: move the person vertically so the contact ankles stand at z = ankle_height
    (the ankle's height above the floor when standing; use with a world frame); lock_feet: foot locking (foot_lock.lock_feet) where contacts are set.
    Raises ValueError when the person has no usable frame.
    """
    joints_cam = np.asarray(joints_cam, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if joints_cam.ndim != 3 or joints_cam.shape[2] != 3 or valid.shape != joints_cam.shape[:1]:
        raise ValueError(f"bad shapes joints {joints_cam.shape} valid {valid.shape}")
    warnings = []
    finite = np.isfinite(joints_cam).all(axis=(1, 2))
    bad = valid & ~finite
    if bad.any():
        warnings.append(f"person {person_id}: {int(bad.sum())} valid frames had non-finite joints; skipped")
    use = valid & finite
    if not use.any():
        raise ValueError(f"person {person_id} has no valid frame")
    world = fl.camera_to_world(np.where(use[:, None, None], joints_cam, 0.0), world_from_camera)
    world = smooth_tracks(world, use, smoothing)
    lengths = sk.median_bone_lengths(world, use, joint_names)
    if np.any(lengths < 1e-4):
        zero = [sk.BONE_NAMES[i] for i in np.flatnonzero(lengths < 1e-4)]
        raise ValueError(f"person {person_id}: zero-length bones {zero}")
    rest = sk.rest_skeleton(lengths)
    frames = np.flatnonzero(use)
    jw = world[frames]
    ji = sk.joint_indices(joint_names)
    ankles = [ji[n] for n in fl.ANKLES]
    cont = None
    if contacts is not None:
        cont = np.asarray(contacts, dtype=bool)
        if cont.shape != (len(valid), 2):
            raise ValueError(f"person {person_id}: contacts have shape {cont.shape}, expected ({len(valid)}, 2)")
        cont = cont[frames]
    # the armature's ankles: the joints rebuilt with its bone lengths
    floor_z = fl.contact_height(fk.conform_lengths(jw, lengths, joint_names)[:, ankles, 2], cont)
    shift = 0.0
    if feet_on_floor and np.isfinite(floor_z):
        shift = ankle_height - floor_z
        jw = jw + np.array([0.0, 0.0, shift])
        floor_z = float(ankle_height)
    lock = None
    if lock_feet and cont is not None and cont.any():
        lock = fk.lock_feet(jw, cont, lengths, joint_names, frames=frames,
                            floor_z=float(ankle_height) if feet_on_floor else None)
        jw = lock.joints
        warnings.extend(f"person {person_id}: {n}" for n in lock.notes)
    W = rot._solve_cf(jw, joint_names)                       # (B, 3, 3, K)
    pelvis = jw[:, sk.joint_indices(joint_names)[sk.ROOT_JOINT]]
    m = PersonMotion(person_id=int(person_id), rest=rest, frames=frames, joints_world=jw,
                     world_rot_cf=W, local_quat=None, root_world=pelvis, root_location=None,
                     warnings=warnings, floor_z=float(floor_z), floor_shift=float(shift),
                     contacts=cont, lock=lock)
    if not local:
        return m
    return localize(m, rest.frames if bone_rest is None else bone_rest)


def localize(m: PersonMotion, bone_rest: np.ndarray) -> PersonMotion:
    """Fill ``m.local_quat`` (K, B, 4) and ``m.root_location`` (K, 3) for the rest
    rotations (B, 3, 3) the armature really has (Blender ``bone.matrix_local``)."""
    bone_rest = np.asarray(bone_rest, dtype=np.float64)
    assert bone_rest.shape == (len(sk.BONES), 3, 3), bone_rest.shape
    m.local_quat = rot.local_quaternions(m.world_rot_cf, sk.bone_parents(), bone_rest)
    root_i = sk.BONE_NAMES.index(sk.ROOT_BONE)
    m.root_location = (m.root_world - m.rest.heads[root_i]) @ bone_rest[root_i]  # R^T (p - h)
    return m
