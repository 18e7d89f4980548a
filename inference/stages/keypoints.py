"""Keypoint files as the engine's tracks: our 16 joints, ids kept or tracked (numpy).

    tracks, stats = keypoint_tracks(kf, fps, max_people=10)     # kf: keypoint_readers.KeypointFile
    write_keypoint_table(path, tracks, ...)                     # a run's own 2D tracks as a table

After this the tracks go through the same stage 2 as a video run's (pipeline: stitching when the
engine tracked them, fill_gaps, left/right flicker, lifting, smoothing, floor). A file with ids for
every person keeps them (one track per id); otherwise the engine's Tracker follows the people
frame by frame, as it does the pose network's poses.

A missing joint (score 0) gets a stand-in position, the mean of the pose's seen joints, so every
array stays finite; with score 0 nothing reads it (tracker, lifter), and the pipeline replaces it in
the pose file by the projection of the lifted 3D joint.
"""
from __future__ import annotations

import os

import numpy as np

from inference.core.keypoint_formats import to_ours
from inference.stages.keypoint_readers import KeypointError, KeypointFile
from inference.stages.tracking import pose_box, Track, Tracker, TrackerConfig
from posefile.skeleton import JOINT_NAMES

J = len(JOINT_NAMES)


def ours(kf: KeypointFile) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per frame (relative to kf.frame_start): joints (N, 16, 2) float32, finite (missing joints at
    the pose's centre), scores (N, 16) float32 (0 = missing), ids (N,) int64."""
    out = {}
    for f, (joints, scores, ids) in kf.frames.items():
        j16, s16 = to_ours(joints, scores, kf.joint_set)
        seen = s16 > 0
        centre = np.nansum(np.where(seen[..., None], j16, 0.0), -2) / np.maximum(seen.sum(-1), 1)[..., None]
        stand_in = centre[..., None, :]
        if kf.joint_set == "ours":   # our own table (--dump-keypoints): positions as the run had them
            given = np.asarray(joints, np.float64)
            stand_in = np.where(np.isfinite(given).all(-1, keepdims=True), given, stand_in)
        j16 = np.where(seen[..., None], j16, stand_in).astype(np.float32)
        out[f - kf.frame_start] = (j16, s16.astype(np.float32), np.asarray(ids, np.int64))
    return out


def _tracks_from_ids(frames) -> list[Track]:
    by_id: dict[int, Track] = {}
    for f in sorted(frames):
        joints, scores, ids = frames[f]
        for n, pid in enumerate(ids):
            pid = int(pid)
            if pid in by_id and by_id[pid].frames[-1] == f:
                raise KeypointError(f"frame {f}: person id {pid} appears twice")
            tr = by_id.setdefault(pid, Track(pid, f, joints[n], scores[n], np.zeros(2), 1.0))
            tr.last_frame = f
            tr.frames.append(f)
            tr.poses.append(joints[n])
            tr.confs.append(scores[n])
            tr.mean_confs.append(float(scores[n].mean()))
    return [by_id[k] for k in sorted(by_id)]


def tracker_config(fps: float) -> TrackerConfig:
    """The video run's tracker settings (pipeline._Stage1), without the lost-person rule: another
    detector's scores are not on our scale."""
    half = max(3, int(round(0.5 * fps)))
    return TrackerConfig(max_age=half, lost_window=half, lost_score=0.0)


def keypoint_tracks(kf: KeypointFile, fps: float, max_people: int = 10) -> tuple[list[Track], dict]:
    """The file's people as tracks (stage 1's result) and counts for the run's stats."""
    frames = ours(kf)
    stats = {"poses": sum(len(v[2]) for v in frames.values()), "poses_untracked": 0,
             "tracked_by": "ids" if kf.has_ids else "tracker"}
    if kf.has_ids:
        return _tracks_from_ids(frames), stats
    tracker = Tracker(tracker_config(fps))
    for f in sorted(frames):
        joints, scores, _ = frames[f]
        order = np.argsort(-scores.mean(-1), kind="stable")[:max_people]
        ids = tracker.update(f, joints[order], scores[order])
        stats["poses_untracked"] += int((ids < 0).sum()) + len(scores) - len(order)
    return tracker.all_tracks(), stats


def frames_without_person(frames, F: int) -> int:
    return sum(1 for f in range(F) if f not in frames or len(frames[f][2]) == 0)


def write_keypoint_table(path: str | os.PathLike, tracks: list[Track], frame0: int, F: int, fps: float,
                         image_size: tuple[int, int]) -> None:
    """Tracks (person = index in the list) as a keypoint table .npz (keypoint_readers.read_table):
    one row per seen (frame, person, joint), frames absolute; with fps, image_size, num_frames,
    frame_start and joint_set, so that ``--keypoints`` reads it without the video. Written in one
    step (a temporary file renamed)."""
    fr, pe, jo, xy, sc = [], [], [], [], []
    for p, tr in enumerate(tracks):
        for f, pose, conf in zip(tr.frames, tr.poses, tr.confs):
            if not frame0 <= f < frame0 + F:
                continue
            fr.append(np.full(J, f)), pe.append(np.full(J, p)), jo.append(np.arange(J))
            xy.append(np.asarray(pose, np.float32)), sc.append(np.asarray(conf, np.float32))
    cat = (lambda a, dt, shape: np.concatenate(a).astype(dt) if a else np.zeros(shape, dt))
    xy_ = cat(xy, np.float32, (0, 2))
    path = os.fspath(path)
    tmp = path + ".part.npz"
    np.savez(tmp, frame=cat(fr, np.int64, 0), person=cat(pe, np.int64, 0), joint=cat(jo, np.int64, 0),
             x=xy_[:, 0], y=xy_[:, 1], score=cat(sc, np.float32, 0), fps=np.float64(fps),
             image_size=np.array(image_size, np.int64), num_frames=np.int64(F), frame_start=np.int64(frame0),
             joint_set=np.array("ours"))
    os.replace(tmp, path)
