"""Join the pieces of one person's broken track after tracking (pure numpy).

The online tracker (``tracking.Tracker``) must decide frame by frame; when a person is lost for
longer than its memory, or their poses turn weak and the lost-person rule ends the track, the
same person comes back under a new id, and the animator gets two armatures for one actor. With
the whole video tracked, each track that ends can be compared with the tracks that start soon
after it: a later track is the same person when it starts where the first one, moved on with
its own velocity, would be by then (and the later one, moved back with its velocity, meets
the first), at about the same size.

A person who walks out of the picture and back in is a second case: the track ends at the frame
side edge (its last box, moved on with its velocity for ``exit_s``, reaches past it) and the
new one starts in the same half of the frame, on the side of that edge, within ``edge_gap_s``
(longer than ``max_gap_s``: the time outside, plus the frames it takes the detector to find
and the verification to confirm them again), at about the same size. Where they turned round
outside, extrapolation says nothing, so the edge is the evidence.

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
    edge_gap_s: float = 1.5       # longest gap for a person who left over the frame edge and came back
    exit_s: float = 0.5           # a track whose box, moved on this long, crosses the edge left the view


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


def exit_edge(end, fps: float, cfg: StitchConfig, image_size) -> int | None:
    """The side edge a track's tail end (from _ends) leaves over: 0 left, 1 right; None when its
    box, moved on with its velocity for up to cfg.exit_s, stays inside. Top and bottom are not
    exits: people cut off there (feet below the frame, a head above it) usually stay."""
    if end is None or image_size is None:
        return None
    _, c, v, size = end
    W = image_size[0]
    half = 0.5 * size
    # the box's sides at the end and after exit_s, inwards from each side edge (negative: beyond)
    for t in (0.0, cfg.exit_s * fps):
        x = c[0] + v[0] * t
        inside = (x - half, W - (x + half))
        k = int(np.argmin(inside))
        if inside[k] < 0:
            return k
    return None


def _edge_cost(ea, eb, gap: int, fps: float, cfg: StitchConfig, image_size) -> float:
    """Join cost for a person who left over an edge and came back: in (0.5, 1] when track a's
    tail leaves over an edge, b starts in the half of the frame on that edge's side within
    cfg.edge_gap_s, at about the same size; inf otherwise."""
    edge = exit_edge(ea, fps, cfg, image_size)
    if edge is None or eb is None or gap > cfg.edge_gap_s * fps:
        return float("inf")
    sa, sb = ea[3], eb[3]
    if max(sa, sb) / max(min(sa, sb), 1e-6) > cfg.max_scale:
        return float("inf")
    W = image_size[0]
    x = eb[1][0]
    near = x <= W / 2 if edge == 0 else x >= W / 2
    if not near:
        return float("inf")
    return 0.5 + 0.5 * gap / (cfg.edge_gap_s * fps)


def _cost(ea, eb, fps: float, cfg: StitchConfig, image_size=None) -> float:
    """join_cost from the two ends (see _ends); ea ends before eb starts."""
    if ea is None or eb is None:
        return float("inf")
    (fa, ca, va, sa), (fb, cb, vb, sb) = ea, eb
    gap = int(round(fb - fa))
    edge = _edge_cost(ea, eb, gap, fps, cfg, image_size)
    if gap > cfg.max_gap_s * fps or max(sa, sb) / max(min(sa, sb), 1e-6) > cfg.max_scale:
        return edge
    half = 0.5 * (fb - fa)
    # The velocities at the ends come from few, often weak poses: a person who stops, or an end
    # whose boxes jitter, is judged by the plain distance instead.
    moved = np.linalg.norm((ca + va * half) - (cb - vb * half))
    d = float(min(moved, np.linalg.norm(ca - cb))) / max(sa, sb)
    allowed = cfg.reach + cfg.speed * (fb - fa) / fps
    return min(d / allowed, edge)


def join_cost(a: Track, b: Track, fps: float, cfg: StitchConfig | None = None, image_size=None) -> float:
    """How well track b continues track a: the distance between a's end moved forward and b's
    start moved back to the middle of the gap (or between the two ends as they are, if that is
    less), in units of the larger size, divided by the allowed distance for that gap; with
    image_size (W, H), the edge-exit cost (_edge_cost) where that is lower. <= 1 is a
    candidate; inf where b does not start after a ends within the gap, the sizes differ too
    much, or an end shows no box."""
    cfg = cfg or StitchConfig()
    gap = b.frames[0] - a.frames[-1]
    if gap <= 0 or gap > _longest_gap(cfg, image_size) * fps:
        return float("inf")
    return _cost(_ends(a, fps, cfg, tail=True), _ends(b, fps, cfg, tail=False), fps, cfg, image_size)


def _longest_gap(cfg: StitchConfig, image_size) -> float:
    return max(cfg.max_gap_s, cfg.edge_gap_s if image_size is not None else 0.0)


def _candidates(tracks: list[Track], fps: float, cfg: StitchConfig, image_size=None) -> dict[tuple[int, int], float]:
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
        lo, hi = np.searchsorted(sorted_first, [end, end + _longest_gap(cfg, image_size) * fps], side="right")
        for k in order[lo:hi]:
            c = _cost(tails[i], heads[k], fps, cfg, image_size)
            if c <= 1.0:
                out[(i, int(k))] = c
    return out


def stitch_pairs(tracks: list[Track], fps: float, cfg: StitchConfig | None = None,
                 image_size=None) -> list[tuple[int, int]]:
    """The (earlier, later) index pairs of ``tracks`` to join: each track gets at most one
    successor and one predecessor, best pairs first, and a pair is skipped when a rival
    candidate of either track costs less than ``cfg.ambiguity`` x its cost. image_size (W, H)
    turns on the edge-exit rule."""
    cfg = cfg or StitchConfig()
    cand = _candidates(tracks, fps, cfg, image_size)
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


def stitch_tracks(tracks: list[Track], fps: float, cfg: StitchConfig | None = None,
                  image_size=None) -> tuple[list[Track], int]:
    """Join the broken pieces of each person's track. Returns (tracks in order of their first
    frame, number of joins made). image_size (W, H): also join a person who left over the frame
    edge and came back. The input tracks are not changed; tracks without observations (a lost
    track whose whole run was cut) are left out."""
    cfg = cfg or StitchConfig()
    tracks = [t for t in tracks if t.frames]
    if cfg.max_gap_s <= 0 or len(tracks) < 2:
        return sorted(tracks, key=lambda t: t.frames[0]), 0
    pairs = stitch_pairs(tracks, fps, cfg, image_size)
    nxt = dict(pairs)
    starts = set(range(len(tracks))) - set(nxt.values())
    out = []
    for s in starts:
        chain = [s]
        while chain[-1] in nxt:
            chain.append(nxt[chain[-1]])
        out.append(tracks[s] if len(chain) == 1 else _concat([tracks[i] for i in chain]))
    return sorted(out, key=lambda t: t.frames[0]), len(pairs)
