"""Stable person ids across frames (pure numpy).

Each frame's poses are matched to the live tracks by a minimum-cost assignment (Hungarian
method, Kuhn 1955 / Munkres 1957; the O(n^2 m) shortest-augmenting-path form with potentials)
on a cost that mixes the distance between box centres and the mean distance between joints,
both in units of the person's size, after predicting each track forward with its velocity.
A track that is not seen is remembered for ``max_age`` frames, so a person hidden for a moment
keeps their id; short gaps are filled afterwards by linear interpolation (``fill_gaps``).

The tracker also proposes crops for the next frames from each track's last pose (moved by its
velocity), so the person detector need not run on every frame.

Letters: J joints, N poses in a frame, T tracks, F frames.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.core.crops import box_from_joints, MIN_SIZE
from inference.core.sides import apply_swaps
from inference.stages.types import PersonTrack2D
from posefile.skeleton import FLIP_PAIRS

GATED = 1e6


# ---------------------------------------------------------------------------- assignment
def linear_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost assignment of a (n, m) cost matrix (finite values).

    Returns (rows, cols), int arrays of length min(n, m), rows increasing: row rows[k] is paired
    with column cols[k] and the sum of cost[rows, cols] is minimal.
    """
    C = np.asarray(cost, np.float64)
    assert C.ndim == 2, C.shape
    n, m = C.shape
    if n == 0 or m == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not np.isfinite(C).all():
        raise ValueError("cost matrix must be finite (use a large value for forbidden pairs)")
    transposed = n > m
    if transposed:
        C, n, m = C.T, m, n
    # 1-based rows/cols; column 0 is a virtual start. p[j]: row matched to column j (0 = none).
    u = np.zeros(n + 1)
    v = np.zeros(m + 1)
    p = np.zeros(m + 1, np.int64)
    way = np.zeros(m + 1, np.int64)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        minv = np.full(m + 1, np.inf)
        used = np.zeros(m + 1, bool)
        while True:
            used[j0] = True
            i0 = p[j0]
            free = ~used[1:]
            cur = C[i0 - 1] - u[i0] - v[1:]
            better = free & (cur < minv[1:])
            minv[1:][better] = cur[better]
            way[1:][better] = j0
            cand = np.where(free, minv[1:], np.inf)
            j1 = int(np.argmin(cand)) + 1
            delta = cand[j1 - 1]
            u[p[used]] += delta
            v[used] -= delta
            minv[~used] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0:  # augment along the alternating path
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    cols = np.nonzero(p[1:])[0]
    rows = p[1:][cols] - 1
    if transposed:
        rows, cols = cols, rows
    order = np.argsort(rows)
    return rows[order].astype(np.int64), cols[order].astype(np.int64)


# ---------------------------------------------------------------------------- pose geometry
def pose_box(joints: np.ndarray, scores: np.ndarray, threshold: float = 0.2) -> np.ndarray | None:
    """(cx, cy, size) of the confident joints (J, 2) / (J,), or None: crops.box_from_joints, the
    one box definition, on the joints scoring above threshold."""
    return box_from_joints(joints, (scores > threshold) & np.isfinite(joints).all(-1))


def align_sides(a: np.ndarray, sa: np.ndarray, b: np.ndarray, sb: np.ndarray,
                threshold: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """Pose b (J, 2) with scores sb, each left/right pair relabelled where the other labelling
    lies closer to pose a: the same person read as facing the other way (back views often are),
    or with one limb pair swapped, is still the same person. Pairs not seen in both stay."""
    swap = np.zeros(len(FLIP_PAIRS), bool)
    for n, (i, k) in enumerate(FLIP_PAIRS):
        if (sa[[i, k]] > threshold).all() and (sb[[i, k]] > threshold).all():
            same = np.linalg.norm(a[i] - b[i]) + np.linalg.norm(a[k] - b[k])
            swap[n] = np.linalg.norm(a[i] - b[k]) + np.linalg.norm(a[k] - b[i]) < same
    b, sb = apply_swaps(b[None], sb[None], swap[None])
    return b[0], sb[0]


def pose_distance(a: np.ndarray, sa: np.ndarray, b: np.ndarray, sb: np.ndarray, size: float,
                  threshold: float = 0.2) -> float:
    """Mean distance between joints seen in both poses (J, 2), in units of size, left and right
    as they fit best (align_sides); NaN when fewer than 3 joints are shared."""
    b, sb = align_sides(a, sa, b, sb, threshold)
    ok = (sa > threshold) & (sb > threshold)
    if ok.sum() < 3:
        return float("nan")
    return float(np.linalg.norm(a[ok] - b[ok], axis=-1).mean() / max(size, MIN_SIZE))


def shared_joints(a: np.ndarray, sa: np.ndarray, b: np.ndarray, sb: np.ndarray, size: float,
                  threshold: float = 0.2) -> int:
    """How many joints seen in both poses (J, 2) lie within size of each other, left and right as
    they fit best (align_sides)."""
    b, sb = align_sides(a, sa, b, sb, threshold)
    ok = (sa > threshold) & (sb > threshold)
    return int((np.linalg.norm(a[ok] - b[ok], axis=-1) < size).sum())


def part_of(small: np.ndarray, big: np.ndarray) -> bool:
    """Whether box small (cx, cy, size) is the smaller one and its centre lies inside box big."""
    return bool(small[2] < big[2] and (np.abs(small[:2] - big[:2]) < 0.5 * big[2]).all())


def suppress_duplicates(joints: np.ndarray, scores: np.ndarray, max_distance: float = 0.15,
                        max_centre: float = 0.15, min_shared: int = 5) -> np.ndarray:
    """Indices of the poses to keep when several crops found the same person.

    joints (N, J, 2), scores (N, J). A pose is dropped when a better-scoring kept pose is closer
    than max_distance (mean joint distance over the person's size), or when their boxes have
    centres closer than max_centre sizes and sizes within a factor 1.3, or when one box's centre
    lies inside the other, larger, box and at least min_shared of their joints coincide (within
    max_distance of the larger size): a crop on part of a person (upper body, legs) whose pose
    folds the missing half onto the visible one; by mean distance that is no duplicate, and it
    made second tracks that followed a person around. Returns sorted indices.
    """
    n = len(joints)
    order = np.argsort(-scores.mean(-1), kind="stable") if n else np.zeros(0, int)
    keep: list[int] = []
    boxes = [pose_box(joints[i], scores[i]) for i in range(n)]
    for i in order:
        bi = boxes[i]
        size = bi[2] if bi is not None else MIN_SIZE
        dup = False
        for k in keep:
            d = pose_distance(joints[i], scores[i], joints[k], scores[k], size)
            bk = boxes[k]
            same_box = (bi is not None and bk is not None
                        and np.linalg.norm(bi[:2] - bk[:2]) < max_centre * max(bi[2], bk[2])
                        and max(bi[2], bk[2]) / max(min(bi[2], bk[2]), 1e-6) < 1.3)
            part = (bi is not None and bk is not None and (part_of(bi, bk) or part_of(bk, bi))
                    and shared_joints(joints[i], scores[i], joints[k], scores[k],
                                      max_distance * max(bi[2], bk[2])) >= min_shared)
            if (d == d and d < max_distance) or same_box or part:
                dup = True
                break
        if not dup:
            keep.append(int(i))
    return np.array(sorted(keep), np.int64)


# ---------------------------------------------------------------------------- tracker
@dataclass
class TrackerConfig:
    max_age: int = 15             # frames a track is kept while unseen (occlusion memory)
    propose_age: int = 3          # frames after the last sighting that a track still proposes crops
    gate: float = 0.8             # largest matching cost accepted
    gate_growth: float = 0.03     # gate grows by this per unseen frame (the prediction gets vaguer)
    w_centre: float = 1.0
    w_pose: float = 1.0
    w_scale: float = 0.5
    velocity_smoothing: float = 0.5   # weight of the new displacement in the velocity EMA
    size_smoothing: float = 0.3
    # Least factor the box may shrink by per frame, however small the poses come out (0: no
    # limit). A crop that lost the legs yields a smaller pose, whose box cuts a smaller crop...
    # the floor stops that spiral at the pace a person's image can really shrink.
    min_shrink: float = 0.0
    min_joints_for_box: int = 6       # confident joints a pose needs to move the track's box
    hint_factor: float = 0.5          # cost factor for a pose found in the track's own proposed crop
    # Lost person: a track whose crops drifted onto the background keeps matching its own
    # weak poses. It ends when, over the last `lost_window` observations, the median mean joint
    # score is below `lost_score` and below `lost_ratio` x its median before; that weak tail is
    # cut off. 0 turns the rule off. "Before" is the median over at most `lost_history` windows
    # before the last one (bounded, so the check costs the same on a long track). A track whose
    # recent median falls below `lost_floor` x `lost_score` ends whatever its history (one that
    # was weak from its start, e.g. a ghost started on the background).
    lost_window: int = 15
    lost_history: int = 20
    lost_score: float = 0.0
    lost_ratio: float = 0.8
    lost_floor: float = 0.8


@dataclass
class Track:
    id: int
    last_frame: int
    joints: np.ndarray            # (J, 2) last observed pose
    scores: np.ndarray            # (J,)
    centre: np.ndarray            # (2,) last observed box centre
    size: float                   # smoothed box size
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # px / frame
    frames: list = field(default_factory=list)       # observed frame indices
    poses: list = field(default_factory=list)        # (J, 2) per observation
    confs: list = field(default_factory=list)        # (J,) per observation
    mean_confs: list = field(default_factory=list)   # mean joint score per observation

    def predict(self, frame: int) -> tuple[np.ndarray, np.ndarray]:
        """Predicted (joints (J, 2), centre (2,)) at `frame` (constant velocity)."""
        shift = self.velocity * (frame - self.last_frame)
        return self.joints + shift, self.centre + shift


class Tracker:
    """Assigns stable ids to per-frame poses. Call ``update`` once per processed frame, in order.

    Frames may be skipped (not processed); tracks then age by the frame gap.
    """

    def __init__(self, config: TrackerConfig | None = None):
        self.cfg = config or TrackerConfig()
        self.tracks: list[Track] = []      # live tracks
        self.finished: list[Track] = []    # tracks past max_age
        self._next_id = 0
        self.lost = 0                      # tracks ended by the lost-person rule

    # -- association --------------------------------------------------------
    def cost_matrix(self, frame: int, joints: np.ndarray, scores: np.ndarray,
                    boxes: np.ndarray, hint: np.ndarray | None = None) -> np.ndarray:
        """(T, N) matching costs of live tracks against poses; GATED where not allowed.
        hint (N,): id of the track whose proposed crop gave the pose (-1: none); that pair's cost
        is scaled by cfg.hint_factor."""
        cfg = self.cfg
        T, N = len(self.tracks), len(joints)
        cost = np.full((T, N), GATED)
        for t, tr in enumerate(self.tracks):
            pj, pc = tr.predict(frame)
            gap = frame - tr.last_frame
            gate = cfg.gate + cfg.gate_growth * max(gap - 1, 0)
            for n in range(N):
                size = max(tr.size, float(boxes[n, 2]), MIN_SIZE)
                dc = float(np.linalg.norm(boxes[n, :2] - pc)) / size
                dp = pose_distance(pj, tr.scores, joints[n], scores[n], size)
                if dp != dp:
                    dp = dc
                # A pose that shows little of the body says little about its size.
                full = (scores[n] > 0.2).sum() >= cfg.min_joints_for_box
                ds = abs(np.log(max(float(boxes[n, 2]), MIN_SIZE) / max(tr.size, MIN_SIZE))) if full else 0.0
                c = cfg.w_centre * dc + cfg.w_pose * dp + cfg.w_scale * ds
                if hint is not None and hint[n] == tr.id:
                    c *= cfg.hint_factor
                if c <= gate:
                    cost[t, n] = c
        return cost

    def update(self, frame: int, joints: np.ndarray, scores: np.ndarray,
               may_start: np.ndarray | None = None, hint: np.ndarray | None = None) -> np.ndarray:
        """Associate the poses of one frame. joints (N, J, 2), scores (N, J) -> ids (N,) int.

        may_start (N,) bool: whether an unmatched pose may start a new track (default all).
        Poses found in crops that a track proposed should not: if they match no track they are
        a duplicate or a drifted crop, not a new person. hint (N,) int: the id of the track that
        proposed each pose's crop, -1 for none (favours that pairing). Poses that are not tracked (fewer than
        2 confident joints, or unmatched and not allowed to start) get id -1.
        """
        joints = np.asarray(joints, np.float64)
        scores = np.asarray(scores, np.float64)
        assert joints.ndim == 3 and joints.shape[-1] == 2 and scores.shape == joints.shape[:2], (joints.shape, scores.shape)
        self._retire(frame)
        N = len(joints)
        ids = np.full(N, -1, np.int64)
        boxes = np.zeros((N, 3))
        usable = np.zeros(N, bool)
        for n in range(N):
            b = pose_box(joints[n], scores[n])
            if b is not None:
                boxes[n], usable[n] = b, True
        cand = np.nonzero(usable)[0]
        cost = self.cost_matrix(frame, joints[cand], scores[cand], boxes[cand],
                                None if hint is None else np.asarray(hint)[cand])
        rows, cols = linear_assignment(cost) if cost.size else (np.zeros(0, int), np.zeros(0, int))
        matched = set()
        observed = []
        for t, c in zip(rows, cols):
            if cost[t, c] >= GATED:
                continue
            n = int(cand[c])
            self._observe(self.tracks[t], frame, joints[n], scores[n], boxes[n])
            ids[n] = self.tracks[t].id
            matched.add(n)
            observed.append((self.tracks[t], n))
        for tr, n in observed:
            if self._lost(tr):
                ids[n] = -1
        for n in cand:
            if int(n) not in matched and (may_start is None or may_start[n]):
                tr = Track(self._next_id, frame, joints[n].copy(), scores[n].copy(), boxes[n, :2].copy(),
                           float(boxes[n, 2]))
                self._next_id += 1
                tr.frames.append(frame)
                tr.poses.append(joints[n].astype(np.float32))
                tr.confs.append(scores[n].astype(np.float32))
                tr.mean_confs.append(float(scores[n].mean()))
                self.tracks.append(tr)
                ids[n] = tr.id
        return ids

    def _observe(self, tr: Track, frame: int, joints, scores, box) -> None:
        cfg = self.cfg
        # The box that proposes the next crops moves only with poses that show most of the
        # body, and its size changes at most 25% per observation, so a collapsed pose (a weak
        # frame) cannot shrink or drag the crop away from the person; nor can a run of
        # shrinking poses shrink it faster than min_shrink a frame.
        if (scores > 0.2).sum() >= cfg.min_joints_for_box:
            dt = max(frame - tr.last_frame, 1)
            step = (box[:2] - tr.centre) / dt
            a = cfg.velocity_smoothing
            tr.velocity = (1 - a) * tr.velocity + a * step if len(tr.frames) > 1 else step
            size = float(np.clip(box[2], 0.8 * tr.size, 1.25 * tr.size))
            floor = tr.size * cfg.min_shrink ** dt
            tr.size = max((1 - cfg.size_smoothing) * tr.size + cfg.size_smoothing * size, floor)
            tr.centre = box[:2].copy()
        else:
            tr.centre = tr.centre + tr.velocity * (frame - tr.last_frame)
        tr.joints, tr.scores, tr.last_frame = joints.copy(), scores.copy(), frame
        tr.frames.append(frame)
        tr.poses.append(joints.astype(np.float32))
        tr.confs.append(scores.astype(np.float32))
        tr.mean_confs.append(float(scores.mean()))

    def _lost(self, tr: Track) -> bool:
        """Apply the lost-person rule to a track just observed; True if it ended it (the track
        is moved to ``finished`` with its weak tail removed)."""
        W, cfg = self.cfg.lost_window, self.cfg
        m = tr.mean_confs
        if cfg.lost_score <= 0 or W < 1 or len(m) < 2 * W:
            return False
        # Runs after every observation: look at the recent window first (W poses) and at the
        # history before it only when that already looks lost.
        recent = float(np.median(m[-W:]))
        if not recent < cfg.lost_score:
            return False
        before = float(np.median(m[max(0, len(m) - W * (1 + max(cfg.lost_history, 1))):-W]))
        if recent < cfg.lost_ratio * before:
            cut = cfg.lost_ratio * before
        elif recent < cfg.lost_floor * cfg.lost_score:
            cut = cfg.lost_floor * cfg.lost_score
        else:
            return False
        keep = len(m)
        while keep > 0 and m[keep - 1] < cut:
            keep -= 1
        del tr.frames[keep:], tr.poses[keep:], tr.confs[keep:], tr.mean_confs[keep:]
        if tr.frames:
            tr.last_frame = tr.frames[-1]
        self.tracks.remove(tr)
        self.finished.append(tr)
        self.lost += 1
        return True

    def _retire(self, frame: int) -> None:
        live = []
        for tr in self.tracks:
            (live if frame - tr.last_frame <= self.cfg.max_age else self.finished).append(tr)
        self.tracks = live

    # -- crop proposals -----------------------------------------------------
    def proposals(self, frame: int) -> list[tuple[int, np.ndarray]]:
        """Crops for `frame` from the tracks seen in the last `propose_age` frames:
        list of (track id, box (cx, cy, size)), the box moved by the track's velocity."""
        out = []
        for tr in self.tracks:
            if frame - tr.last_frame > self.cfg.propose_age:
                continue
            c = tr.centre + tr.velocity * (frame - tr.last_frame)
            out.append((tr.id, np.array([c[0], c[1], tr.size], np.float32)))
        return out

    # -- results --------------------------------------------------------------
    def all_tracks(self, min_frames: int = 1) -> list[Track]:
        """Every track (live and finished) with at least min_frames observations, by id."""
        return sorted((t for t in self.tracks + self.finished if len(t.frames) >= min_frames),
                      key=lambda t: t.id)


def dense_track(track: Track, frame0: int, F: int, J: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A track's observations on frames [frame0, frame0 + F): joints (F, J, 2) NaN where unseen,
    scores (F, J) 0 where unseen, valid (F,)."""
    joints = np.full((F, J, 2), np.nan, np.float32)
    scores = np.zeros((F, J), np.float32)
    valid = np.zeros(F, bool)
    idx = np.asarray(track.frames, np.int64) - frame0
    ok = (idx >= 0) & (idx < F)
    if ok.any():
        joints[idx[ok]] = np.stack(track.poses)[ok]
        scores[idx[ok]] = np.stack(track.confs)[ok]
        valid[idx[ok]] = True
    return joints, scores, valid


def person_track2d(track: Track, frame0: int, F: int, J: int, max_gap: int) -> PersonTrack2D:
    """A finished track as the next stages take it: dense over frames [frame0, frame0 + F), with
    dropouts of at most max_gap frames interpolated (dense_track, fill_gaps)."""
    joints, scores, valid = dense_track(track, frame0, F, J)
    return PersonTrack2D(*fill_gaps(joints, scores, valid, max_gap))


def fill_gaps(joints: np.ndarray, scores: np.ndarray, valid: np.ndarray, max_gap: int,
              score_factor: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Interpolate short dropouts of one person.

    joints (F, J, C), scores (F, J), valid (F,). Runs of at most max_gap invalid frames between
    two valid frames are filled by linear interpolation (joints and scores; scores are then
    multiplied by score_factor to mark them as guessed). Returns joints, scores, valid, filled
    (F,) bool (the frames that were filled).
    """
    joints = np.array(joints, np.float32, copy=True)
    scores = np.array(scores, np.float32, copy=True)
    valid = np.array(valid, bool, copy=True)
    filled = np.zeros_like(valid)
    idx = np.nonzero(valid)[0]
    if len(idx) < 2 or max_gap < 1:
        return joints, scores, valid, filled
    for a, b in zip(idx[:-1], idx[1:]):
        gap = b - a - 1
        if gap < 1 or gap > max_gap:
            continue
        w = (np.arange(1, gap + 1, dtype=np.float32) / (gap + 1))
        joints[a + 1:b] = (1 - w)[:, None, None] * joints[a] + w[:, None, None] * joints[b]
        scores[a + 1:b] = score_factor * ((1 - w)[:, None] * scores[a] + w[:, None] * scores[b])
        valid[a + 1:b] = True
        filled[a + 1:b] = True
    return joints, scores, valid, filled
