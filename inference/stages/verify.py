"""Person verification: only tracks that are shown to be people are written (pure numpy).

A ghost track (a skeleton on a chair, on glare, on someone's legs) is started by one pose that
passed the start gate and then follows its own weak poses. Over a whole track the difference is
plain: a person's poses score like a person most of the time, a ghost's seldom. So a track is
*confirmed* only when the median of its poses' mean joint scores reaches ``confirm_score`` and
at least ``confirm_frames`` of its poses do; every other track is dropped before stitching, so a
ghost can neither be written nor glued onto a real person's track.

The check goes on over the whole track: where a track's poses stay below ``weak_score`` for
``weak_frames`` observations in a row (its crops drifted off the person onto the background),
the track is cut there, the weak stretch is dropped, and each side must confirm on its own.

Both thresholds are the pose network's start gate, from its manifest (``gate.start_score``,
measured by ``evaluation.eval_2d --gate`` on held-out photographs: the mean joint score that 90%
of person crops reach; half of the background crops of the same photographs stay below 0.23 and
three quarters below 0.33 for the shipped balanced network). A single pose may pass it by chance;
the median over a track does not.

Letters: J joints, N observations of a track.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.core.filters import runs
from inference.stages.tracking import Track, pose_box


@dataclass(frozen=True)
class VerifyConfig:
    confirm_score: float = 0.376  # mean joint score of a pose that looks like a person
    confirm_frames: int = 6       # such poses a track needs to be confirmed
    weak_score: float = 0.376     # below this a pose does not look like a person (start gate)
    weak_frames: int = 15         # this many weak poses in a row end a stretch of the track

    @staticmethod
    def from_gate(gate: dict | None, fps: float, confirm_s: float = 0.2, weak_s: float = 0.5) -> "VerifyConfig":
        """Thresholds from a pose manifest's ``gate`` (see module doc); durations in seconds
        become observation counts at the video's frame rate. Without a gate: the defaults."""
        start = float((gate or {}).get("start_score", VerifyConfig.confirm_score))
        return VerifyConfig(confirm_score=start, confirm_frames=max(3, int(round(confirm_s * fps))),
                            weak_score=start, weak_frames=max(3, int(round(weak_s * fps))))


@dataclass
class Verdict:
    """What verification kept and dropped. ``kept``: confirmed tracks (pieces of the input
    tracks, ids unchanged; a track cut in two keeps its id on its first confirmed piece and
    the next pieces get new ids); ``dropped``: number of unconfirmed pieces; ``dropped_frames``:
    observations removed in all (unconfirmed pieces and weak stretches)."""
    kept: list[Track] = field(default_factory=list)
    dropped: int = 0
    dropped_frames: int = 0


def _piece(track: Track, a: int, b: int, new_id: int) -> Track:
    """Observations a..b-1 of a track as a track of its own."""
    last = b - 1
    pose, conf = np.asarray(track.poses[last]), np.asarray(track.confs[last])
    box = pose_box(pose, conf)
    centre, size = (box[:2], float(box[2])) if box is not None else (np.asarray(track.centre), track.size)
    return Track(id=new_id, last_frame=track.frames[last], joints=pose, scores=conf,
                 centre=centre, size=size, velocity=np.zeros(2),
                 frames=list(track.frames[a:b]), poses=list(track.poses[a:b]),
                 confs=list(track.confs[a:b]), mean_confs=list(track.mean_confs[a:b]))


def strong_stretches(mean_scores: np.ndarray, cfg: VerifyConfig) -> list[tuple[int, int]]:
    """(N,) mean joint score per observation -> [(a, b)] ranges of observations left after
    removing every run of at least ``weak_frames`` weak poses (shorter weak runs stay: a person
    turning or partly hidden for a moment)."""
    s = np.asarray(mean_scores, np.float64)
    assert s.ndim == 1, s.shape
    cut = np.zeros(len(s), bool)
    for a, b in runs(s < cfg.weak_score):
        if b - a >= cfg.weak_frames:
            cut[a:b] = True
    return runs(~cut)


def is_confirmed(mean_scores: np.ndarray, cfg: VerifyConfig) -> bool:
    """Enough poses that look like a person, and most of them (see module doc)."""
    s = np.asarray(mean_scores, np.float64)
    return (len(s) > 0 and float(np.median(s)) >= cfg.confirm_score
            and int((s >= cfg.confirm_score).sum()) >= cfg.confirm_frames)


def verify_tracks(tracks: list[Track], cfg: VerifyConfig, next_id: int | None = None) -> Verdict:
    """Confirmed pieces of ``tracks`` (order kept) and what was dropped; see module doc."""
    next_id = next_id if next_id is not None else 1 + max((t.id for t in tracks), default=-1)
    out = Verdict()
    for tr in tracks:
        s = np.asarray(tr.mean_confs, np.float64)
        stretches = strong_stretches(s, cfg)
        confirmed = [(a, b) for a, b in stretches if is_confirmed(s[a:b], cfg)]
        # every unconfirmed stretch, or the whole track when it is weak throughout
        out.dropped += len(stretches) - len(confirmed) if stretches else 1
        for k, (a, b) in enumerate(confirmed):
            if (a, b) == (0, len(s)):
                out.kept.append(tr)
            elif k == 0:
                out.kept.append(_piece(tr, a, b, tr.id))
            else:
                out.kept.append(_piece(tr, a, b, next_id))
                next_id += 1
        out.dropped_frames += len(s) - sum(b - a for a, b in confirmed)
    return out
