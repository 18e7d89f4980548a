"""A synthetic scene for the floor tests: people walking on a floor seen by a known, tilted and
rolled camera, with the errors of a lifter (per-person depth bias, slow depth drift, joint noise)
and of a 2D pose network (pixel noise). World frame: Z up, floor z = 0."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from posefile.skeleton import JOINT_INDEX, NUM_JOINTS, PELVIS

JI = JOINT_INDEX
ANKLE_H = 0.09


def camera_pose(height=1.6, pitch_deg=12.0, roll_deg=3.0, yaw_deg=0.0) -> np.ndarray:
    """world_from_camera (4, 4) of a camera at (0, 0, height) looking yaw_deg left of +Y,
    pitch_deg down, rolled (image +x up when positive)."""
    p, r, y = np.radians(pitch_deg), np.radians(roll_deg), np.radians(yaw_deg)
    level = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)   # columns: camera x, y, z in world
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    rz = np.array([[np.cos(y), -np.sin(y), 0], [np.sin(y), np.cos(y), 0], [0, 0, 1]])
    T = np.eye(4)
    T[:3, :3] = rz @ rx @ level @ roll.T
    T[2, 3] = height
    return T


def walker(F: int, fps: float, start, heading_deg: float, speed: float = 1.2, phase: float = 0.0,
           stand: bool = False):
    """World joints (F, J, 3) of one person walking in a straight line (or standing), and the
    true contacts (F, 2) (r_ankle, l_ankle)."""
    t = np.arange(F) / fps
    hd = np.radians(heading_deg)
    fwd = np.array([np.cos(hd), np.sin(hd), 0.0])
    left = np.array([-np.sin(hd), np.cos(hd), 0.0])
    step_t = 0.55                                   # seconds per step
    L = 0.0 if stand else speed * step_t            # step length
    X = np.zeros((F, NUM_JOINTS, 3))
    contact = np.zeros((F, 2), bool)
    start = np.asarray(start, float)
    for f, tt in enumerate(t):
        s = tt / step_t + phase
        k, ph = int(np.floor(s)), s - np.floor(s)
        pelvis = start + fwd * (L * s) + np.array([0, 0, 0.95 + 0.02 * np.cos(2 * np.pi * s)])
        feet = {}
        for side, sgn, parity in (("r", -1.0, 0), ("l", 1.0, 1)):
            lat = start + left * (0.1 * sgn)
            if stand:
                pos, h, c = lat, ANKLE_H, True
            elif (k % 2) == parity:                 # this foot stands during step k
                pos, h, c = lat + fwd * (L * (k + 0.5)), ANKLE_H, ph < 0.85
            else:                                   # swings from k - 0.5 to k + 1.5
                u = 0.5 - 0.5 * np.cos(np.pi * ph)
                pos, h, c = lat + fwd * (L * (k - 0.5 + 2 * u)), ANKLE_H + 0.12 * np.sin(np.pi * ph), ph > 0.92
            if not stand and ph >= 0.85 and (k % 2) == parity:
                c = True                            # double support at the end of the step
            feet[side] = pos * np.array([1, 1, 0]) + np.array([0, 0, h])
            contact[f, 0 if side == "r" else 1] = c
        hip_r, hip_l = pelvis - left * 0.1, pelvis + left * 0.1
        X[f, PELVIS] = pelvis
        X[f, JI["r_hip"]], X[f, JI["l_hip"]] = hip_r, hip_l
        X[f, JI["r_ankle"]], X[f, JI["l_ankle"]] = feet["r"], feet["l"]
        for side, hip in (("r", hip_r), ("l", hip_l)):
            X[f, JI[f"{side}_knee"]] = 0.5 * (hip + feet[side]) + fwd * 0.05
        thorax = pelvis + np.array([0, 0, 0.5]) + fwd * 0.03
        X[f, JI["thorax"]], X[f, JI["neck"]] = thorax, thorax + np.array([0, 0, 0.1])
        X[f, JI["head_top"]] = thorax + np.array([0, 0, 0.32])
        for side, sgn in (("r", -1.0), ("l", 1.0)):
            sh = thorax + left * (0.18 * sgn)
            X[f, JI[f"{side}_shoulder"]] = sh
            X[f, JI[f"{side}_elbow"]] = sh - np.array([0, 0, 0.28])
            X[f, JI[f"{side}_wrist"]] = sh - np.array([0, 0, 0.52]) + fwd * 0.05
    return X, contact


@dataclass
class Scene:
    world: np.ndarray          # (P, F, J, 3) true joints, world frame
    cam: np.ndarray            # (P, F, J, 3) true joints, camera frame
    lifted: np.ndarray         # (P, F, J, 3) float32: what a lifter would give (depth errors)
    joints2d: np.ndarray       # (P, F, J, 2) px (noisy)
    scores: np.ndarray         # (P, F, J)
    valid: np.ndarray          # (P, F)
    contacts: np.ndarray       # (P, F, 2) true
    K: np.ndarray
    T: np.ndarray              # true world_from_camera
    fps: float


def scene(F=150, fps=30.0, height=1.6, pitch_deg=12.0, roll_deg=3.0, seed=0, people=None,
          depth_bias=(1.08, 0.93, 1.03), px_noise=2.0, T_per_frame=None, raised=None) -> Scene:
    """Three people walking (default) in front of the camera; T_per_frame (F, 4, 4) makes the
    camera move (world_from_camera per frame); raised {person: metres}: people on a platform."""
    rng = np.random.default_rng(seed)
    people = people or [((-1.5, 4.0, 0), 0.0, 1.2, 0.0, False), ((1.5, 8.0, 0), 180.0, 1.0, 0.3, False),
                        ((0.3, 5.5, 0), 100.0, 0.9, 0.6, False)]
    T = camera_pose(height, pitch_deg, roll_deg)
    K = np.array([[1000.0, 0, 640], [0, 1000.0, 360], [0, 0, 1]])
    P = len(people)
    world = np.zeros((P, F, NUM_JOINTS, 3))
    contacts = np.zeros((P, F, 2), bool)
    for p, (start, hd, sp, ph, stand) in enumerate(people):
        world[p], contacts[p] = walker(F, fps, start, hd, sp, ph, stand)
        world[p, ..., 2] += (raised or {}).get(p, 0.0)
    Ts = np.broadcast_to(T, (F, 4, 4)) if T_per_frame is None else T_per_frame
    cam = np.empty_like(world)
    for f in range(F):
        Tinv = np.linalg.inv(Ts[f])
        cam[:, f] = world[:, f] @ Tinv[:3, :3].T + Tinv[:3, 3]
    uv = cam[..., :2] / cam[..., 2:3] * K[0, 0] + K[:2, 2]
    joints2d = (uv + rng.normal(0, px_noise, uv.shape)).astype(np.float32)
    # Lifter: root-relative pose with 1 cm noise; root depth with a per-person bias, a slow drift
    # and frame noise, along the ray through the true root.
    lifted = np.empty_like(cam)
    t = np.arange(F) / fps
    for p in range(P):
        drift = 0.04 * np.sin(2 * np.pi * t / 3.0 + p) + rng.normal(0, 0.015, F)
        s = depth_bias[p % len(depth_bias)] * np.exp(drift)
        root = cam[p, :, PELVIS]
        rel = cam[p] - root[:, None] + rng.normal(0, 0.01, cam[p].shape)
        lifted[p] = rel + (root * s[:, None])[:, None, :]
    return Scene(world, cam, lifted.astype(np.float32), joints2d, np.full((P, F, NUM_JOINTS), 0.9, np.float32),
                 np.ones((P, F), bool), contacts, K, T, fps)
