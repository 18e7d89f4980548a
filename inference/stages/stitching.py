"""Join the pieces of one person's broken track after tracking (pure numpy).

The online tracker (``tracking.Tracker``) must decide frame by frame; when a person is lost for
longer than its memory, or their poses turn weak and the lost-person rule ends the track, the
same person comes back under a new id, and the animator gets two armatures for one actor. With
the whole video tracked, each track that ends can be compared with the tracks that start soon
after it: a later track is the same person when it starts where the first one, moved on with
its own velocity, would be by then (and the later one, moved back with its velocity, meets
the first), at about the same size.

The rule is conservative, because joining two different people is worse than leaving one
person in two pieces: the gap is at most ``max_gap_s``, the tracks must not overlap in time, the
allowed distance grows with the gap only at a brisk walking pace, and a pair is joined only
when neither track has a second candidate nearly as good (two people who leave the view
together keep their own pieces).

Letters: F frames, J joints.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from inference.stages.tracking import pose_box, Track


@dataclass
class StitchConfig:
    max_gap_s: float = 1.0        # longest gap between the end of one piece and the next (seconds)
    reach: float = 0.6            # allowed distance at no gap, in units of the person's size
    speed: float = 1.0            # allowed distance grows by this many sizes per second of gap
    max_scale: float = 1.5        # largest ratio between the two pieces' sizes
    ends_s: float = 0.4           # how much of each piece's end estimates its position and velocity
    ambiguity: float = 1.5        # a rival candidate costing less than this x the best blocks the join


def _ends(track: Track, fps: float, cfg: StitchConfig, tail: bool):
    """(frame, centre (2,), velocity px/frame (2,), size) at the last (tail) or first end of a
    track, from the boxes of its poses over ``cfg.ends_s`` seconds there; None if no pose there
    shows a box."""
    n = len(track.frames)
    span = max(1, int(round(cfg.ends_s * fps)))
    order = range(n - 1, -1, -1) if tail else range(n)
    edge = track.frames[n - 1] if tail else track.frames[0]
    fr, boxes = [], []
    for i in order:
        if abs(track.frames[i] - edge) > span:
            break
        b = pose_box(track.poses[i], track.confs[i])
        if b is not None:
            fr.append(track.frames[i])
            boxes.append(b)
    if not boxes:
        return None
    fr, boxes = np.asarray(fr, np.float64), np.asarray(boxes, np.float64)
    size = float(np.median(boxes[:, 2]))
    vel = np.zeros(2)
    if len(fr) >= 3 and np.ptp(fr) > 0:
        # Least-squares slope of the centres over the end: one jittery box does not set it.
        t = fr - fr.mean()
        vel = (t[:, None] * (boxes[:, :2] - boxes[:, :2].mean(0))).sum(0) / (t ** 2).sum()
        # A person covers at most ~2 body sizes a second (a run): faster is box jitter.
        vmax = 2.0 * size / fps
        speed = float(np.linalg.norm(vel))
        if speed > vmax:
            vel *= vmax / speed
    return float(edge), boxes[0, :2], vel, size


def _cost(ea, eb, fps: float, cfg: StitchConfig) -> float:
    """join_cost from the two ends (see _ends); ea ends before eb starts."""
    if ea is None or eb is None:
        return float("inf")
    (fa, ca, va, sa), (fb, cb, vb, sb) = ea, eb
    if max(sa, sb) / max(min(sa, sb), 1e-6) > cfg.max_scale:
        return float("inf")
    half = 0.5 * (fb - fa)
    # The velocities at the ends come from few, often weak poses: a person who stops, or an end
    # whose boxes jitter, is judged by the plain distance instead.
    moved = np.linalg.norm((ca + va * half) - (cb - vb * half))
    d = float(min(moved, np.linalg.norm(ca - cb))) / max(sa, sb)
    allowed = cfg.reach + cfg.speed * (fb - fa) / fps
    return d / allowed


def join_cost(a: Track, b: Track, fps: float, cfg: StitchConfig | None = None) -> float:
    """How well track b continues track a: the distance between a's end moved forward and b's
    start moved back to the middle of the gap (or between the two ends as they are, if that is
    less), in units of the larger size, divided by the allowed distance for that gap. <= 1 is a
    candidate; inf where b does not start after a ends within the gap, the sizes differ too
    much, or an end shows no box."""
    cfg = cfg or StitchConfig()
    gap = b.frames[0] - a.frames[-1]
    if gap <= 0 or gap > cfg.max_gap_s * fps:
        return float("inf")
    return _cost(_ends(a, fps, cfg, tail=True), _ends(b, fps, cfg, tail=False), fps, cfg)


def _candidates(tracks: list[Track], fps: float, cfg: StitchConfig) -> dict[tuple[int, int], float]:
    """{(i, k): cost} of the pairs with a join cost <= 1. Only pairs whose gap fits are scored,
    from ends computed once per track, so a long video with many tracks stays cheap."""
    tails = [_ends(t, fps, cfg, tail=True) for t in tracks]
    heads = [_ends(t, fps, cfg, tail=False) for t in tracks]
    first = np.array([t.frames[0] for t in tracks])
    order = np.argsort(first, kind="stable")
    sorted_first = first[order]
    out = {}
    for i, t in enumerate(tracks):
        end = t.frames[-1]
        lo, hi = np.searchsorted(sorted_first, [end, end + cfg.max_gap_s * fps], side="right")
        for k in order[lo:hi]:
            c = _cost(tails[i], heads[k], fps, cfg)
            if c <= 1.0:
                out[(i, int(k))] = c
    return out


def stitch_pairs(tracks: list[Track], fps: float, cfg: StitchConfig | None = None) -> list[tuple[int, int]]:
    """The (earlier, later) index pairs of ``tracks`` to join: each track gets at most one
    successor and one predecessor, best pairs first, and a pair is skipped when a rival
    candidate of either track costs less than ``cfg.ambiguity`` x its cost."""
    cfg = cfg or StitchConfig()
    cand = _candidates(tracks, fps, cfg)
    after, before = {}, {}                 # track -> costs of its candidate successors / predecessors
    for (i, k), c in cand.items():
        after.setdefault(i, []).append(c)
        before.setdefault(k, []).append(c)
    pairs, has_next, has_prev = [], set(), set()
    for (i, k), c in sorted(cand.items(), key=lambda kv: kv[1]):
        if i in has_next or k in has_prev:
            continue
        rivals = after[i] + before[k]
        rivals.remove(c)                   # c itself, once in each list
        rivals.remove(c)
        if any(r < cfg.ambiguity * c for r in rivals):
            continue
        pairs.append((i, k))
        has_next.add(i)
        has_prev.add(k)
    return pairs


def _concat(pieces: list[Track]) -> Track:
    """One track made of pieces in time order (the first piece's id; the last one's state)."""
    first, last = pieces[0], pieces[-1]
    out = Track(first.id, last.last_frame, last.joints.copy(), last.scores.copy(), last.centre.copy(),
                last.size, last.velocity.copy())
    for p in pieces:
        out.frames += list(p.frames)
        out.poses += list(p.poses)
        out.confs += list(p.confs)
        out.mean_confs += list(p.mean_confs)
    return out


def stitch_tracks(tracks: list[Track], fps: float, cfg: StitchConfig | None = None) -> tuple[list[Track], int]:
    """Join the broken pieces of each person's track. Returns (tracks in order of their first
    frame, number of joins made). The input tracks are not changed; tracks without
    observations (a lost track whose whole run was cut) are left out."""
    cfg = cfg or StitchConfig()
    tracks = [t for t in tracks if t.frames]
    if cfg.max_gap_s <= 0 or len(tracks) < 2:
        return sorted(tracks, key=lambda t: t.frames[0]), 0
    pairs = stitch_pairs(tracks, fps, cfg)
    nxt = dict(pairs)
    starts = set(range(len(tracks))) - set(nxt.values())
    out = []
    for s in starts:
        chain = [s]
        while chain[-1] in nxt:
            chain.append(nxt[chain[-1]])
        out.append(tracks[s] if len(chain) == 1 else _concat([tracks[i] for i in chain]))
    return sorted(out, key=lambda t: t.frames[0]), len(pairs)
