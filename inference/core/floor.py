"""One floor for everyone: ground plane, foot contacts and root depth from the floor (pure numpy).

For a static camera every person stands on the same floor. From the lifted 3D joints of all
people (camera frame, OpenCV axes, metres) over a whole clip:

1. ``fit_floor``: the plane of the footprints (``rest_points``: each run of frames in which an
   ankle rests, its median point; rest is judged from the 2D ankle's speed), fitted robustly
   (``fit_plane``: RANSAC over normals from 3 footprints of one person, then refits on shrinking
   inlier sets) with a per-person plane offset (a person whose root depth is off by a constant
   factor lies on a parallel plane) and a weak prior towards the people's "up" direction
   (mid-ankles -> thorax while they stand), which fixes what footprints along a line cannot. The
   floor is that plane moved down by the ankle height (``ankle_height_m``, from the training
   mocap: docs/floor.md). With a known focal length ``refine_from_heights`` then turns the normal
   to fit the people's image heights. People on a clearly higher plane (a wall, a stage) are left
   off the floor (``estimate``).
2. ``root_depth_from_floor``: where a foot rests on the floor, the ray through its 2D ankle
   meets the ankle plane: that fixes the ankle's (and so the person's) distance. Per person, the
   log root depth is the Whittaker-smoothed, weighted mean of the lifter's (pinhole/RootNet)
   estimate and these floor estimates, each weighted by its expected error (the floor's grows as
   the ray grazes the floor and with the floor's own tilt error).
3. ``foot_contacts``: per person, frame and foot, in contact when the ankle is near its resting
   height over the floor and slow, with hysteresis (entering is stricter than staying).
4. ``estimate``: all of it, with the fallbacks: too few frames, feet never seen at rest, or a
   camera that moves (the ankles hardly ever rest in the image, or the standing people's up
   direction turns between windows of the clip) give no floor and say why
   (``FloorEstimate.status``).

World frame (the pose file's ``world_from_camera``): Z up, floor z = 0, camera at (0, 0, h),
+Y = the viewing direction projected on the floor, +X = right.

Letters: P people, F frames, J joints.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from inference.core.filters import runs, whittaker, whittaker_lambda
from posefile.skeleton import JOINT_INDEX, PELVIS

ANKLES = (JOINT_INDEX["r_ankle"], JOINT_INDEX["l_ankle"])   # contacts columns 0, 1
THORAX = JOINT_INDEX["thorax"]
SPEED_BASELINE_S = 0.27    # ankle speeds over this long (joint_speed)


@dataclass(frozen=True)
class FloorConfig:
    """Settings of the floor stage (defaults: docs/floor.md)."""

    ankle_height_m: float = 0.09       # ankle centre above the floor when standing (training mocap)
    min_score: float = 0.3             # least 2D confidence of an ankle used for the floor
    rest_speed_mps: float = 0.35       # ankle points slower than this feed the plane fit
    min_frames: int = 8                # fewer frames with people: no floor ("too_few_frames")
    min_points: int = 20               # fewer confident resting ankle positions: no floor ("no_feet")
    min_footprints: int = 2            # fewer footprints (runs of a resting ankle): no floor
    ransac_iters: int = 150
    inlier_m: float = 0.06             # distance to the plane of an inlier
    prior_deg: float = 10.0            # spread of the body-up prior on the floor normal
    max_prior_deg: float = 35.0        # RANSAC planes further than this from the body up are rejected
    min_rest_share: float = 0.05       # confident ankle points at rest, at least (else the camera moves)
    window_s: float = 2.0              # moving-camera check: the clip in windows this long ...
    max_window_tilt_deg: float = 8.0   # ... whose people's up direction turns more than this from the clip's
    min_window_s: float = 0.5          # ... judged only with this much of standing poses in the window (a
                                       # few frames of one person turn it by chance: the sample clip's
                                       # first 1.4 s, 9-11 frames of the man, read 7.8-11 degrees)
    contact_on_m: float = 0.05         # contact starts below this height (over the resting height) ...
    contact_off_m: float = 0.10        # ... and ends above this one
    contact_on_mps: float = 0.5        # contact starts below this ankle speed ...
    contact_off_mps: float = 0.9       # ... and ends above this one
    min_contact_frames: int = 2
    max_person_scale: float = 1.3      # a person further off the floor (as a depth factor) is not on it
    person_scale: float = 0.0          # move each person's root depth onto the floor (their plane offset):
                                       # 1 all the way, 0 not at all (off: on pairs of training mocap
                                       # people through our 2D errors it made root depth 6.5 -> 7.7%)
    depth: bool = True                 # correct root depths from the floor
    refine_heights: bool = True        # refine the floor from the people's image heights (refine_from_heights;
                                       # needs the true focal length: the stage turns it off without one)
    max_refine_deg: float = 30.0       # ... unless that turns the normal further than this
    pinhole_sigma: float = 0.12        # expected error of the lifter's log root depth, per frame
    ankle_sigma_rel: float = 0.03      # expected 2D error of an ankle, in the person's 2D height
    min_grazing_deg: float = 1.5       # rays closer than this to the floor plane are not used
    depth_cutoff_hz: float = 0.7       # smoothing of the fused log root depth


@dataclass
class Floor:
    """The floor in the camera frame: unit normal ``normal`` (3,) pointing up (towards the
    camera's side), camera height ``height`` m: floor points X satisfy normal . X = -height."""

    normal: np.ndarray
    height: float
    tilt_sigma_deg: float = 0.0     # expected error of the normal (fit_floor), degrees

    def signed_height(self, X: np.ndarray) -> np.ndarray:
        """Height above the floor (m) of camera-frame points (..., 3)."""
        return np.asarray(X, np.float64) @ self.normal + self.height

    def world_from_camera(self) -> np.ndarray:
        """(4, 4) float64: the contract's world frame (Z up, floor z = 0, camera at (0, 0, h))."""
        z = self.normal / np.linalg.norm(self.normal)
        fwd = np.array([0.0, 0.0, 1.0]) - z[2] * z
        if np.linalg.norm(fwd) < 1e-9:        # looking straight down: image up is forward
            fwd = np.array([0.0, -1.0, 0.0]) - z[1] * z
        y = fwd / np.linalg.norm(fwd)
        x = np.cross(y, z)
        T = np.eye(4)
        T[:3, :3] = np.stack([x, y, z])
        T[2, 3] = self.height
        return T

    @property
    def pitch_deg(self) -> float:
        """Optical axis below the horizon (positive: looking down)."""
        return float(np.degrees(np.arcsin(np.clip(-self.normal[2], -1, 1))))

    @property
    def roll_deg(self) -> float:
        """Rotation about the optical axis (positive: the image's +x axis points up)."""
        return float(np.degrees(np.arctan2(self.normal[0], -self.normal[1])))


@dataclass
class FloorEstimate:
    """What ``estimate`` found. status: "estimated" (floor, contacts and joints3d set) or why
    not ("no_feet", "moving_camera", "too_few_frames"); message: a sentence for the user."""

    status: str
    floor: Floor | None = None
    contacts: np.ndarray | None = None        # (P, F, 2) bool
    joints3d: np.ndarray | None = None        # (P, F, J, 3) float32, root depths from the floor
    message: str = ""
    info: dict = field(default_factory=dict)  # counts and figures for meta["floor"]


# --------------------------------------------------------------------------- helpers

def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


def joint_speed(X: np.ndarray, valid: np.ndarray, fps: float, baseline_s: float = 0.0) -> np.ndarray:
    """Speed (m/s) of every joint, (P, F, J, 3) -> (P, F, J): the displacement between the frames
    baseline_s / 2 before and after (at least one frame; clamped to the run of valid frames)
    over their time apart. A longer baseline averages a pose network's frame-to-frame jitter
    (at 30 fps, 0.27 s: about a third of the noise of central differences). NaN where not valid
    or a run has one frame."""
    P, F = valid.shape
    k = max(1, int(round(0.5 * baseline_s * fps)))
    out = np.full(X.shape[:-1], np.nan)
    for p in range(P):
        for a, b in runs(valid[p]):
            if b - a < 2:
                continue
            t = np.arange(a, b)
            lo, hi = np.maximum(t - k, a), np.minimum(t + k, b - 1)
            Y = np.asarray(X[p], np.float64)
            out[p, a:b] = np.linalg.norm(Y[hi] - Y[lo], axis=-1) * fps / (hi - lo)[:, None]
    return out


def ankle_speed(X: np.ndarray, joints2d: np.ndarray | None, valid: np.ndarray, fps: float,
                K: np.ndarray | None) -> np.ndarray:
    """Speed (m/s) of both ankles (P, F, 2): across the image, from the 2D ankles (pixels/s at the
    ankle's depth over the focal length), which stay still on a resting foot even when the lifted
    depth jitters; from the 3D joints when no 2D is given."""
    A = np.asarray(X[:, :, list(ANKLES)], np.float64)
    if joints2d is None or K is None:
        return joint_speed(A, valid, fps, SPEED_BASELINE_S)
    uv = np.asarray(joints2d[:, :, list(ANKLES)], np.float64)
    px = joint_speed(np.concatenate([uv, np.zeros(uv.shape[:-1] + (1,))], -1), valid, fps, SPEED_BASELINE_S)
    return px * np.maximum(A[..., 2], 0.1) / float(K[1, 1])


def body_up(X: np.ndarray, valid: np.ndarray, scores: np.ndarray | None = None) -> np.ndarray | None:
    """People's mean up direction (3,) in the camera frame: mid-ankles -> thorax, averaged over
    every valid frame (weighted by the ankles' and thorax's confidence). None without any."""
    m = valid
    if not m.any():
        return None
    mid = 0.5 * (X[..., ANKLES[0], :] + X[..., ANKLES[1], :])
    v = (X[..., THORAX, :] - mid)[m].astype(np.float64)
    w = np.ones(len(v)) if scores is None else scores[..., [ANKLES[0], ANKLES[1], THORAX]][m].min(-1)
    n = np.linalg.norm(v, axis=-1)
    ok = np.isfinite(v).all(-1) & (n > 0.3)
    if not ok.any() or w[ok].sum() <= 0:
        return None
    return _unit((v[ok] / n[ok, None] * w[ok, None]).sum(0))


def _group_offsets(h: np.ndarray, grp: np.ndarray, G: int) -> np.ndarray:
    """Median of h per group (G,), NaN for an empty group."""
    out = np.full(G, np.nan)
    for g in range(G):
        m = grp == g
        if m.any():
            out[g] = np.median(h[m])
    return out


def _fit_with_prior(pts: np.ndarray, w: np.ndarray, grp: np.ndarray, G: int, up: np.ndarray,
                    mu: float) -> np.ndarray:
    """Unit normal n minimising sum w (n . (x - c_g))^2 + mu |n - up|^2, c_g the weighted mean of
    each group's points (every person gets its own offset: a person whose root depth is off by a
    constant factor lies on a parallel plane). n = mu (C - g I)^-1 up with g below the scatter C's
    smallest eigenvalue such that |n| = 1 (bisection on the secular equation)."""
    D = np.empty_like(pts)
    for g in range(G):
        m = grp == g
        if m.any():
            D[m] = pts[m] - (w[m, None] * pts[m]).sum(0) / max(w[m].sum(), 1e-12)
    C = (w[:, None] * D).T @ D
    lam, V = np.linalg.eigh(C)
    b = V.T @ up
    if mu <= 0:
        n = V[:, 0]
    else:
        def norm(g):
            return mu * np.sqrt(((b / (lam - g)) ** 2).sum())

        hi = lam[0] - 1e-12 * max(1.0, abs(lam[0]))
        lo = lam[0] - mu - 1.0
        while norm(lo) > 1.0:
            lo = lam[0] - 2.0 * (lam[0] - lo)
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            if norm(mid) > 1.0:
                hi = mid
            else:
                lo = mid
        n = V @ (mu * b / (lam - 0.5 * (lo + hi)))
    n = _unit(n)
    return -n if n @ up < 0 else n


def fit_plane(pts: np.ndarray, w: np.ndarray, grp: np.ndarray, up: np.ndarray, cfg: FloorConfig,
              rng: np.random.Generator, corr: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Robust floor normal from points (N, 3) with weights (N,) of G = grp.max() + 1 people,
    each on its own plane parallel to the others (n . x + d_g = 0).

    RANSAC: normals of 3 points of one person (sampled by weight) within cfg.max_prior_deg of
    ``up``, and ``up`` itself, scored by the weight of the points within cfg.inlier_m of their
    person's plane (offset: the person's median; a plane must beat ``up``'s by 10%); the best is
    refitted (``_fit_with_prior``) on shrinking inlier sets. The prior weighs like an error of
    cfg.prior_deg against points with errors of cfg.inlier_m / 2 of which ``corr`` neighbours at a
    time are one observation (a resting foot gives the same point frame after frame).
    Returns unit normal n (towards ``up``), offsets d (G,) (NaN for a person without inliers),
    inlier mask (N,)."""
    N = len(pts)
    G = int(grp.max()) + 1
    cos_max = np.cos(np.radians(cfg.max_prior_deg))

    def inliers(n, thr):
        d = -_group_offsets(pts @ n, grp, G)
        return np.abs(pts @ n + d[grp]) < thr, d

    best_n = up
    best_score = 1.1 * (w * inliers(up, cfg.inlier_m)[0]).sum()
    members = [np.nonzero(grp == g)[0] for g in range(G)]
    gw = np.array([w[m].sum() if len(m) >= 3 else 0.0 for m in members])
    if gw.sum() > 0:
        for g in rng.choice(G, size=cfg.ransac_iters, p=gw / gw.sum()):
            m = members[g]
            i, j, k = rng.choice(m, size=3, replace=False, p=w[m] / w[m].sum())
            n = np.cross(pts[j] - pts[i], pts[k] - pts[i])
            nn = np.linalg.norm(n)
            if nn < 1e-9:
                continue
            n = n / nn
            if n @ up < 0:
                n = -n
            if n @ up < cos_max:
                continue
            score = (w * inliers(n, cfg.inlier_m)[0]).sum()
            if score > best_score:
                best_n, best_score = n, score
    n = best_n
    mu = (cfg.inlier_m / 2.0) ** 2 * max(1.0, corr) / np.radians(cfg.prior_deg) ** 2 * float(w.mean())
    for thr in (2.0 * cfg.inlier_m, 1.5 * cfg.inlier_m, cfg.inlier_m, cfg.inlier_m):
        inl, _ = inliers(n, thr)
        if inl.sum() < 3:
            break
        n = _fit_with_prior(pts[inl], w[inl], grp[inl], G, up, mu)
    inl, _ = inliers(n, cfg.inlier_m)
    d = np.full(G, np.nan)
    for g in range(G):
        m = inl & (grp == g)
        if m.any():
            d[g] = -float(np.average(pts[m] @ n, weights=w[m]))
    inl = np.isfinite(d[grp]) & (np.abs(pts @ n + np.nan_to_num(d[grp])) < cfg.inlier_m)
    return n, d, inl


# --------------------------------------------------------------------------- stages

def rest_points(X: np.ndarray, scores: np.ndarray, valid: np.ndarray, fps: float,
                cfg: FloorConfig, joints2d: np.ndarray | None = None, K: np.ndarray | None = None) -> dict:
    """Footprints, the points the floor is fitted to: every run of frames in which an ankle rests
    (confident and slower than cfg.rest_speed_mps, 3 frames or more) becomes one point, its median position, which
    averages out the lifted depth's jitter along the ray. pts (N, 3), w (N,) (mean score), frame
    (N,) (the run's middle), person (N,); counts of confident and resting ankle positions."""
    sp = ankle_speed(X, joints2d, valid, fps, K)                      # (P, F, 2)
    sc = scores[:, :, list(ANKLES)]
    A = X[:, :, list(ANKLES)]
    conf = valid[..., None] & (sc >= cfg.min_score) & np.isfinite(A).all(-1)
    rest = conf & (sp < cfg.rest_speed_mps)
    pts, w, frame, person = [], [], [], []
    for p in range(valid.shape[0]):
        for k in range(2):
            for a, b in runs(rest[p, :, k]):
                if b - a < 3:
                    continue
                pts.append(np.median(np.asarray(A[p, a:b, k], np.float64), axis=0))
                w.append(float(sc[p, a:b, k].mean()))
                frame.append((a + b - 1) // 2)
                person.append(p)
    return {"pts": np.reshape(pts, (-1, 3)), "w": np.asarray(w, np.float64), "frame": np.asarray(frame, int),
            "person": np.asarray(person, int), "confident": int(conf.sum()), "rest": int(rest.sum()),
            "standing": rest.any(-1)}


def fit_floor(X: np.ndarray, scores: np.ndarray, valid: np.ndarray, fps: float,
              cfg: FloorConfig = FloorConfig(), seed: int = 0, joints2d: np.ndarray | None = None,
              K: np.ndarray | None = None) -> FloorEstimate:
    """The floor of a clip from all people's resting ankles (no contacts, no depth change yet):
    a FloorEstimate with status and, when "estimated", the floor and fit figures in info.
    joints2d (P, F, J, 2) px and K: ankle speeds from the image (``ankle_speed``)."""
    P, F = valid.shape
    frames = int(valid.any(0).sum()) if P else 0
    info: dict = {"frames_with_people": frames}
    if frames < cfg.min_frames:
        return FloorEstimate("too_few_frames", message=f"only {frames} frames show a person (the floor needs "
                             f"at least {cfg.min_frames})", info=info)
    rp = rest_points(X, scores, valid, fps, cfg, joints2d, K)
    info.update(ankle_points=rp["confident"], rest_points=rp["rest"])
    # The people's up direction from the frames in which they stand (a foot at rest): a jump, a
    # crouch or a bow does not count.
    standing = rp["standing"]
    up = body_up(X, standing if standing.sum() >= cfg.min_frames else valid, scores)
    if rp["confident"] < cfg.min_points or up is None:
        return FloorEstimate("no_feet", message=f"feet were seen clearly in only {rp['confident']} ankle "
                             f"positions (the floor needs {cfg.min_points})", info=info)
    share = rp["rest"] / rp["confident"]
    info["rest_share"] = round(share, 3)
    if share < cfg.min_rest_share:
        return FloorEstimate("moving_camera", message=f"the feet hardly ever stand still in the image (only "
                             f"{100 * share:.0f}% of ankle positions at rest): the camera seems to move (or "
                             "nobody stands or walks)", info=info)
    info["footprints"] = len(rp["pts"])
    if rp["rest"] < cfg.min_points or len(rp["pts"]) < cfg.min_footprints:
        return FloorEstimate("no_feet", message=f"feet were seen at rest in only {rp['rest']} ankle "
                             f"positions, {len(rp['pts'])} footprints (the floor needs {cfg.min_points} and "
                             f"{cfg.min_footprints})", info=info)
    pts, w, person, frame = rp["pts"], rp["w"], rp["person"], rp["frame"]
    # Each person gets their own offset (their root depth may be off by a factor); the normal is shared.
    _, grp = np.unique(person, return_inverse=True)
    corr = 1.0                          # footprints are independent observations
    rng = np.random.default_rng(seed)
    n, d_grp, inl = fit_plane(pts, w, grp, up, cfg, rng, corr)
    res = pts @ n + np.nan_to_num(d_grp[grp])
    info.update(inliers=int(inl.sum()), inlier_share=round(float(inl.mean()), 3),
                rms_m=round(float(np.sqrt(np.average(res[inl] ** 2, weights=w[inl]))), 4) if inl.any() else None,
                up_to_normal_deg=round(float(np.degrees(np.arccos(np.clip(n @ up, -1, 1)))), 2))
    if inl.sum() < cfg.min_footprints:
        return FloorEstimate("no_feet", message=f"only {int(inl.sum())} footprints agree on a floor", info=info)
    # Moving camera: the standing people's up direction in each window (in the camera frame) must
    # be the clip's: a camera that tilts or rolls turns it.
    win = max(1, int(round(cfg.window_s * fps)))
    worst = 0.0
    for a in range(0, F, win):
        sub = np.zeros_like(valid)
        sub[:, a:a + win] = standing[:, a:a + win]
        if sub.sum() < max(3, int(cfg.min_window_s * fps)):
            continue
        up_w = body_up(X, sub, scores)
        if up_w is not None:
            worst = max(worst, float(np.degrees(np.arccos(np.clip(up_w @ up, -1, 1)))))
    info["worst_window_tilt_deg"] = round(worst, 2)
    if worst > cfg.max_window_tilt_deg:
        return FloorEstimate("moving_camera", message=f"the people's up direction in one part of the clip is "
                             f"tilted {worst:.0f} degrees from the rest: the camera seems to move", info=info)
    # One floor for everyone: its distance is the people's mean (weighted by their inliers); each
    # person's own offset says how far off their root depth is (scale = d / d_person).
    d_person = np.full(P, np.nan)
    wp = np.zeros(P)
    for p in range(P):
        m = inl & (person == p)
        if m.any():
            d_person[p] = -float(np.average(pts[m] @ n, weights=w[m]))
            wp[p] = w[m].sum()
    d = float(np.average(np.nan_to_num(d_person), weights=wp))
    height = d + cfg.ankle_height_m     # n . x = -d on the ankle plane; the floor is ankle_height lower
    if cfg.refine_heights and joints2d is not None and K is not None and height > 0.05:
        # The people's image heights against where they stand (2D only): a better tilt.
        refined, counts = refine_from_heights(Floor(n, height), X, joints2d, scores, standing & valid, K, up, cfg)
        info.update(counts)
        turn = float(np.degrees(np.arccos(np.clip(refined.normal @ n, -1, 1))))
        info["refine_turn_deg"] = round(turn, 2)
        if turn <= cfg.max_refine_deg:
            # its normal only: the distance stays the footprints' (the people's mean root depth),
            # so the floor keeps the lifter's scale (taking the refined height too made the root
            # depth error 5.2 -> 6.2% on held-out mocap: eval_floor)
            n = refined.normal
            for p in range(P):
                m = inl & (person == p)
                if m.any():
                    d_person[p] = -float(np.average(pts[m] @ n, weights=w[m]))
            d = float(np.average(np.nan_to_num(d_person), weights=wp))
            height = d + cfg.ankle_height_m
    if not height > 0.05:
        return FloorEstimate("no_feet", message=f"the fitted floor lies {height:.2f} m below the camera, "
                             "which is not plausible", info=info)
    scale = np.ones(P)
    ok = np.isfinite(d_person) & (d_person > 0)
    scale[ok] = np.clip(d / d_person[ok], 0.6, 1.6)
    info["person_scale"] = [round(float(v), 3) for v in scale]
    # How well the footprints fix the normal: the inverse of the fit's information (footprints'
    # scatter about their person's mean over the residual variance, plus the prior's), and what
    # that tilt means for the camera height seen from the footprints' distance (plus the people's
    # size, known to about 5%).
    tilt, hsig = _uncertainty(pts[inl], w[inl], grp[inl], n, height, cfg, info.get("rms_m") or cfg.inlier_m / 2)
    info.update(tilt_sigma_deg=round(tilt, 2), height_sigma_pct=round(hsig, 1))
    return FloorEstimate("estimated", floor=Floor(n, float(height), tilt), info=info)


def _uncertainty(pts, w, grp, n, height, cfg, rms) -> tuple[float, float]:
    """(tilt sigma in degrees, camera height sigma in %) of a fitted floor."""
    G = int(grp.max()) + 1 if len(grp) else 0
    D = np.empty_like(pts)
    for g in range(G):
        m = grp == g
        if m.any():
            D[m] = pts[m] - np.average(pts[m], axis=0, weights=w[m])
    t1 = _unit(np.cross(n, [1.0, 0.0, 0.0]))
    t2 = np.cross(n, t1)
    Tb = np.stack([t1, t2], 1)                                   # (3, 2) tangent directions
    C = (w[:, None] * D).T @ D / max(float(w.mean()), 1e-9)      # footprints counted once each
    info = Tb.T @ C @ Tb / max(rms, 0.01) ** 2 + np.eye(2) / np.radians(cfg.prior_deg) ** 2
    tilt = float(np.sqrt(np.linalg.eigvalsh(np.linalg.inv(info)).max()))
    horiz = np.sqrt(np.maximum((pts ** 2).sum(-1) - (pts @ n) ** 2, 0.0))
    dist = float(np.median(horiz)) if len(horiz) else 0.0
    hsig = 100.0 * float(np.hypot(tilt * dist / max(height, 1e-3), 0.05))
    return float(np.degrees(tilt)), hsig


UPRIGHT = (PELVIS, THORAX, JOINT_INDEX["neck"], JOINT_INDEX["head_top"])


def refine_from_heights(floor: Floor, X: np.ndarray, joints2d: np.ndarray, scores: np.ndarray,
                        standing: np.ndarray, K: np.ndarray, up: np.ndarray,
                        cfg: FloorConfig = FloorConfig(), iters: int = 12) -> tuple[Floor, dict]:
    """Floor refined by the people's image heights (single-view metrology, as in Hoiem, Efros and
    Hebert, "Putting objects in perspective", CVPR 2006): where a person stands (both ankles at
    rest, ``standing`` (P, F)), the ray through the mid-ankle meets the floor, and their pelvis,
    thorax, neck and head top, at the heights above the ankles that the lifted pose gives them
    (per person, along ``up``), must project onto their 2D joints. Only 2D positions and the
    people's metric heights enter: the lifted depth's errors do not. Gauss-Newton on the normal's
    two tangent angles and log camera height, Huber-weighted pixel residuals, the normal kept
    near ``up`` with cfg.prior_deg. Returns (floor, counts); the floor unchanged without data."""
    Kf = np.asarray(K, np.float64)
    Kinv = np.linalg.inv(Kf)
    a_h = cfg.ankle_height_m
    obs = []
    for p in range(standing.shape[0]):
        m = standing[p]
        if m.sum() < 3:
            continue
        Xp = np.asarray(X[p], np.float64)
        # the lower ankle in the image stands on the floor (walking: one foot always does)
        low = np.where(joints2d[p, :, ANKLES[0], 1] >= joints2d[p, :, ANKLES[1], 1], ANKLES[0], ANKLES[1])
        fr = np.arange(len(Xp))
        base3 = Xp[fr, low]
        H = np.array([np.median((Xp[m, j] - base3[m]) @ up) for j in UPRIGHT])       # (4,)
        b2 = np.asarray(joints2d[p], np.float64)[fr, low]
        for f in np.nonzero(m)[0]:
            ok = np.isfinite(joints2d[p, f, list(UPRIGHT)]).all(-1) & (scores[p, f, list(UPRIGHT)] > 0.1)
            if ok.sum() < 2 or not np.isfinite(b2[f]).all():
                continue
            obs.append((Kinv @ np.array([b2[f, 0], b2[f, 1], 1.0]), H[ok],
                        np.asarray(joints2d[p, f, list(UPRIGHT)], np.float64)[ok],
                        np.asarray(scores[p, f, list(UPRIGHT)], np.float64)[ok]))
    if len(obs) < 5:
        return floor, {"height_frames": len(obs)}
    rays = np.array([o[0] for o in obs])
    Hs = np.concatenate([o[1] for o in obs])
    idx = np.concatenate([np.full(len(o[1]), i) for i, o in enumerate(obs)])
    uv = np.concatenate([o[2] for o in obs])
    w = np.sqrt(np.concatenate([o[3] for o in obs]))
    n0 = floor.normal
    t1 = _unit(np.cross(n0, [1.0, 0.0, 0.0]))
    t2 = np.cross(n0, t1)
    px_sigma = 8.0
    prior = np.radians(cfg.prior_deg)

    def normal(th):
        return _unit(n0 + th[0] * t1 + th[1] * t2)

    def resid(th, hub):
        n, h = normal(th), np.exp(th[2])
        nr = rays @ n
        z = (a_h - h) / np.where(nr < -1e-3, nr, -1e-3)
        Xj = (rays * z[:, None])[idx] + Hs[:, None] * n
        pj = Xj @ Kf.T
        r = (pj[:, :2] / np.maximum(pj[:, 2:3], 1e-3) - uv) * w[:, None]
        r = (r * hub[:, None]).ravel() / px_sigma
        pr = np.arccos(np.clip(n @ up, -1, 1)) / prior
        return np.concatenate([r, [pr]])

    th = np.array([0.0, 0.0, np.log(floor.height)])
    hub = np.ones(len(uv))
    for _ in range(iters):
        r0 = resid(th, hub)
        J = np.empty((len(r0), 3))
        for k in range(3):
            d = np.zeros(3)
            d[k] = 1e-5
            J[:, k] = (resid(th + d, hub) - r0) / 1e-5
        step = np.linalg.lstsq(J, -r0, rcond=None)[0]
        th = th + np.clip(step, -0.2, 0.2)
        e = np.linalg.norm(resid(th, np.ones(len(uv)))[:-1].reshape(-1, 2), axis=-1)   # px / sigma
        hub = np.where(e > 1.5, np.sqrt(1.5 / np.maximum(e, 1e-9)), 1.0)               # Huber at 12 px
    n, h = normal(th), float(np.exp(th[2]))
    if not (np.isfinite(n).all() and 0.05 < h < 100 * floor.height):
        return floor, {"height_frames": len(obs)}
    return Floor(n, h, floor.tilt_sigma_deg), {"height_frames": len(obs)}


def scale_root_depth(X: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Every joint of a person (..., J, 3) moved along the ray through their root so that the
    root's depth is multiplied by scale (...,); the pose relative to the root is unchanged."""
    X = np.asarray(X, np.float64)
    root = X[..., PELVIS, :]
    return X + (root * (np.asarray(scale, np.float64)[..., None] - 1.0))[..., None, :]


def foot_contacts(X: np.ndarray, valid: np.ndarray, floor: Floor, fps: float,
                  cfg: FloorConfig = FloorConfig(), joints2d: np.ndarray | None = None,
                  K: np.ndarray | None = None) -> np.ndarray:
    """Contacts (P, F, 2) bool, columns r_ankle, l_ankle: the ankle's height over its resting
    height (ankle_height_m above the floor) and its speed (``ankle_speed``), with hysteresis;
    runs shorter than min_contact_frames dropped; False where not valid."""
    P, F = valid.shape
    A = X[:, :, list(ANKLES)]
    hgt = floor.signed_height(A) - cfg.ankle_height_m              # (P, F, 2)
    sp = ankle_speed(X, joints2d, valid, fps, K)
    out = np.zeros((P, F, 2), bool)
    for p in range(P):
        for k in range(2):
            h, v, ok = hgt[p, :, k], np.nan_to_num(sp[p, :, k], nan=np.inf), valid[p]
            on = ok & (h < cfg.contact_on_m) & (v < cfg.contact_on_mps)
            stay = ok & (h < cfg.contact_off_m) & (v < cfg.contact_off_mps)
            c = np.zeros(F, bool)
            state = False
            for f in range(F):
                state = bool(on[f] or (state and stay[f]))
                c[f] = state
            for a, b in runs(c):
                if b - a < cfg.min_contact_frames:
                    c[a:b] = False
            out[p, :, k] = c
    return out


def root_depth_from_floor(X: np.ndarray, joints2d: np.ndarray, scores: np.ndarray, valid: np.ndarray,
                          contacts: np.ndarray, floor: Floor, K: np.ndarray, fps: float,
                          cfg: FloorConfig = FloorConfig()) -> tuple[np.ndarray, dict]:
    """Joints (P, F, J, 3) with each person's root depth fused from the lifter's and the floor's.

    For a contact foot the ray through its 2D ankle meets the ankle plane (ankle_height_m above the
    floor) at depth z_a; the root's depth is then z_a minus the ankle's depth offset from the root
    in the lifted pose. Its log is weighted 1 / sigma^2 with sigma from the ankle's 2D error
    (ankle_sigma_rel of the person's 2D height, over the score) seen at the ray's grazing angle;
    the lifter's log depth is weighted 1 / pinhole_sigma^2; both are combined per frame and
    Whittaker-smoothed (depth_cutoff_hz) over each run of valid frames. Each frame's joints move
    along the ray through its root (the 2D projection of the root is unchanged).
    Returns (joints (P, F, J, 3) float32, counts)."""
    Kinv = np.linalg.inv(np.asarray(K, np.float64))
    out = np.array(X, np.float32, copy=True)
    n, h = floor.normal, floor.height
    a_h = cfg.ankle_height_m
    sin_min = np.sin(np.radians(cfg.min_grazing_deg))
    lam = whittaker_lambda(cfg.depth_cutoff_hz, fps)
    used = 0
    changed = []
    P = valid.shape[0]
    for p in range(P):
        Xp = np.asarray(X[p], np.float64)
        z_root = Xp[:, PELVIS, 2]
        logz_p = np.log(np.maximum(z_root, 1e-3))
        num = np.zeros(len(Xp))
        den = np.zeros(len(Xp))
        uv = np.asarray(joints2d[p], np.float64)
        fin = np.isfinite(uv[..., 1])
        span = (np.where(fin, uv[..., 1], -np.inf).max(-1) - np.where(fin, uv[..., 1], np.inf).min(-1)
                if uv.size else np.zeros(0))
        for k, j in enumerate(ANKLES):
            m = contacts[p, :, k] & valid[p] & np.isfinite(uv[:, j]).all(-1)
            if not m.any():
                continue
            r = np.concatenate([uv[m, j], np.ones((m.sum(), 1))], -1) @ Kinv.T     # (M, 3), r_z = 1
            nr = r @ n
            rn = np.linalg.norm(r, axis=-1)
            ok = nr < -sin_min * rn
            z_a = (a_h - h) / np.where(ok, nr, -1.0)                               # ankle depth
            z_r = z_a - (Xp[m, j, 2] - Xp[m, PELVIS, 2])
            ok &= z_r > 0.3
            # d(log z_a) = d(n.r) / (n.r); an ankle error of e px moves n.r by about e / f
            e_px = cfg.ankle_sigma_rel * np.maximum(span[m], 10.0) / np.maximum(scores[p, m, j], 0.1)
            # a tilt error of the floor moves the ray's hit by about tilt * distance / (h - a)
            horiz = np.sqrt(np.maximum(1.0 - (nr / rn) ** 2, 0.0)) * np.abs(z_a) * rn
            tilt = np.radians(floor.tilt_sigma_deg) * horiz / max(h - a_h, 0.05)
            sig = np.sqrt((e_px / K[1, 1] * rn / np.maximum(-nr, 1e-6)) ** 2 + tilt ** 2 + 0.01 ** 2)
            wt = np.where(ok, 1.0 / sig ** 2, 0.0)
            idx = np.nonzero(m)[0]
            num[idx] += wt * np.log(np.where(ok, z_r, 1.0))
            den[idx] += wt
            used += int(ok.sum())
        if not (den > 0).any():
            continue
        wp = 1.0 / cfg.pinhole_sigma ** 2
        for a, b in runs(valid[p]):
            if not (den[a:b] > 0).any():
                continue
            y = (wp * logz_p[a:b] + num[a:b]) / (wp + den[a:b])
            fused = whittaker(y, lam, wp + den[a:b]) if b - a >= 3 else y
            s = np.exp(fused - logz_p[a:b])                          # new depth / old depth
            root = Xp[a:b, PELVIS]
            out[p, a:b] = (Xp[a:b] + (root * (s[:, None] - 1.0))[:, None, :]).astype(np.float32)
            changed.append(np.abs(s - 1.0))
    ch = np.concatenate(changed) if changed else np.zeros(0)
    return out, {"depth_from_floor_points": used,
                 "depth_change_pct_mean": round(float(ch.mean()) * 100, 2) if len(ch) else 0.0}


def estimate(X: np.ndarray, joints2d: np.ndarray, scores: np.ndarray, valid: np.ndarray, K: np.ndarray,
             fps: float, cfg: FloorConfig = FloorConfig(), seed: int = 0) -> FloorEstimate:
    """Floor, root depths from the floor and foot contacts of a clip (see the module docstring).

    X (P, F, J, 3) lifted joints, camera frame, m; joints2d (P, F, J, 2) px; scores (P, F, J);
    valid (P, F); K (3, 3). Never raises for odd input: a FloorEstimate whose status says why
    there is no floor."""
    X = np.asarray(X)
    valid = np.asarray(valid, bool)
    res = fit_floor(X, scores, valid, fps, cfg, seed, joints2d, K)
    if res.status != "estimated":
        return res
    # People whose planes differ by more than a depth factor of cfg.max_person_scale stand on
    # different things (a wall, a stage, stairs): the lowest plane is taken for the floor (it is
    # fitted again without the others), and the people above it get neither contacts nor depth.
    scale = np.asarray(res.info["person_scale"])      # d / d_person: the lowest plane has the smallest
    off = scale > scale.min() * cfg.max_person_scale
    if off.any() and not off.all():
        again = fit_floor(X, scores, valid & ~off[:, None], fps, cfg, seed, joints2d, K)
        if again.status == "estimated":
            res = again
            scale = np.asarray(res.info["person_scale"])
        scale = np.where(off, 1.0, scale)
        res.info["person_scale"] = [round(float(v), 3) for v in scale]
    elif off.all():
        scale = np.ones_like(scale)
        off[:] = False
    res.info["people_off_the_floor"] = np.nonzero(off)[0].tolist()
    floor = res.floor
    on = valid & ~off[:, None]
    # People on one floor: (optionally) each person's root depth scaled onto it, then contacts,
    # then the per-frame root depth from the contacts.
    if cfg.person_scale > 0:
        X = scale_root_depth(X, (scale ** cfg.person_scale)[:, None]).astype(np.float32)
    contacts = foot_contacts(X, on, floor, fps, cfg, joints2d, K)
    joints = np.array(X, np.float32, copy=True)
    if cfg.depth:
        joints, counts = root_depth_from_floor(X, joints2d, scores, on, contacts, floor, K, fps, cfg)
        res.info.update(counts)
        contacts = foot_contacts(joints, on, floor, fps, cfg, joints2d, K)
    res.contacts = contacts
    res.joints3d = joints
    res.info["contact_share"] = round(float(contacts.any(-1)[valid].mean()), 3) if valid.any() else 0.0
    return res
