"""The one place that wires the stages: video -> people -> 2D poses -> tracks -> 3D -> smoothing.

    from inference import PipelineOptions, run
    result = run("clip.mp4", PipelineOptions(preset="fast", max_people=4))
    result.save("clip.npz")          # pose file (posefile, format version 2)

Stage 1 streams the video in chunks of ``detect_every`` frames. The person detector runs on the
first frame of each chunk; its boxes, together with the boxes that the tracker predicts from
each person's latest pose (moved by their velocity), are used for ``track_every`` frames at a
time, so that the crops of those frames go through the pose network in one batch. With
``refine_crops`` a crop whose pose came out clearly off-centre or of another size is cut again
around that pose and run once more. The tracker then gives each frame's poses their ids. Only per-person joints are kept: memory does
not grow with the frame size, only (slowly) with the number of frames.

Stage 2 works per track: short dropouts are interpolated (``tracking.fill_gaps``), each run
of present frames is lifted to 3D (``lifting.Lifter``), then ``smoothing.post_process`` smooths
it (zero-lag One-Euro; the pelvis path with a Whittaker smoother) and makes the bone lengths
constant.
"""
from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, TYPE_CHECKING

import cv2
import numpy as np

from inference.core import camera, score_calibration
from inference.core.filters import runs
from inference.core.sides import apply_swaps, side_swaps
from inference.errors import Cancelled, InferenceError
from inference.models import weights as W
from inference.models.runtime import check_runtime_name
from inference.stages.floor import place_on_floor
from inference.stages.smoothing import post_process, SmoothingConfig
from inference.stages.stitching import stitch_tracks, StitchConfig
from inference.stages.tracking import person_track2d, pose_box, suppress_duplicates, Tracker, TrackerConfig
from inference.stages.types import Detections, FramePoses, PersonMotion
from inference.stages.verify import VerifyConfig, verify_tracks
from inference.stages.video import background, FrameReader
import posefile
from posefile.skeleton import JOINT_NAMES

if TYPE_CHECKING:   # names only: the CLI imports this module before torch (fast --help)
    from inference.stages.detect import PersonDetector
    from inference.stages.lifting import Lifter
    from inference.stages.pose2d import PoseEstimator

ENGINE_VERSION = "0.1.0"
PRESETS = ("fast", "balanced", "accurate")
# The most accurate preset with shipped weights that runs at about real time on 2 CPU cores.
DEFAULT_PRESET = "balanced"


@dataclass
class PipelineOptions:
    """Everything a run can be told. Defaults are the CLI's defaults."""

    preset: str = DEFAULT_PRESET         # one of PRESETS (networks from presets.py)
    device: str = "auto"                 # "auto" | "cpu" | "cuda"
    runtime: str = field(default_factory=lambda: os.environ.get("MOCAP_RUNTIME") or "auto")
                                         # what runs the networks: "auto" (ONNX Runtime on the CPU when
                                         # installed, else PyTorch) | "torch" | "onnx" | "onnx-int8" (the
                                         # shipped int8 balanced pose network; models/runtime.py);
                                         # default: $MOCAP_RUNTIME, else auto
    max_people: int = 10                 # most people kept per frame (best scores first)
    focal: float | None = None           # focal length in pixels; None: from fov_deg
    fov_deg: float = camera.DEFAULT_FOV_DEG  # field of view across the long side assumed without focal
    start: int = 0                       # first frame (inclusive)
    end: int | None = None               # last frame (exclusive); None: to the end
    weights_dir: str | None = None       # folder with the manifests; None: $MOCAP_WEIGHTS or weights/
    smoothing: float = 1.0               # 0: off; larger: smoother (divides the filter cutoffs)
    min_cutoff: float = 1.0              # One-Euro min cutoff (Hz) at smoothing 1
    beta: float = 2.0                    # One-Euro speed coefficient (1/m) at smoothing 1
    root_cutoff: float = 2.0             # half-power frequency (Hz) of the pelvis path's smoother at
                                         # smoothing 1 (filters.smooth_track); 0: One-Euro like the joints
    bone_lengths: bool = True            # constant bone lengths per person
    flip_test: bool | None = None        # None: on for "accurate", off for the others
    detect_every: int = 8                # frames per chunk; the detector runs once per chunk
    track_every: int = 2                 # frames per pose batch: the tracked people's crops are
                                         # re-aimed from their latest poses this often
    fallback_detector: str = "hog"       # "hog": OpenCV's HOG people detector adds people the
                                         # learned detector misses; "none": learned detector only
    fallback_every_s: float = 1.0        # the fallback runs at most this often (seconds of video),
                                         # and at every chunk while nobody is being tracked
    detection_threshold: float | None = None  # least detector centre score; None: the weights' own
    min_pose_score: float = 0.2          # least mean joint score for a pose to count
    start_pose_score: float | None = None  # least mean joint score for a pose to start a new track;
                                         # None: the pose weights' own gate (manifest "gate", measured
                                         # on held-out people vs background), else min_pose_score
    end_lost_tracks: bool = True         # end a track whose poses stop looking like a person
    crop_shrink_per_s: float = 0.0       # least factor a tracked person's crop may shrink by in a
                                         # second (0: no limit); e.g. 0.7 stops poses that lose the
                                         # legs spiralling the crop onto the head, but can keep a
                                         # lost track alive (docs/engine.md); off by default
    refine_crops: bool = False           # re-run crops whose pose came out off-centre (with crops
                                         # re-aimed every 2 frames it no longer pays: docs/engine.md)
    max_gap_s: float = 0.5               # dropouts up to this long (seconds) are interpolated
    min_track_s: float = 0.2             # tracks shorter than this (seconds) are dropped
    verify_people: bool = True           # write only tracks confirmed as people (stages/verify.py)
    floor: bool = True                   # estimate the floor: root depths from it, foot contacts and
                                         # the world frame in the pose file (stages/floor.py)
    stitch_gap_s: float = 1.0            # a person's broken track is joined across gaps up to this
                                         # long (seconds; stitching.py); 0: off
    stitch_edge_gap_s: float = 1.5       # ... and a person who left over a side edge and came back,
                                         # across gaps up to this long; 0: off
    fix_side_flicker: bool = True        # undo short left/right flips of a limb pair (core/sides.py)
    root_from_joints: bool = True        # the root's ray from every joint's (core/root_ray.py), not the 2D pelvis
    skeleton_decode: bool = False        # peaks chosen under skeleton priors (core/skeleton_decode.py)
    fps: float | None = None             # override the source frame rate (image folders)
    batch_size: int = 16                 # crops per network call (16 is the fastest per crop on 2
                                         # CPU cores: see docs/engine.md "Speed")
    threads: int = 0                     # torch CPU threads (0: torch's default)
    initial_boxes: list | None = None    # [(cx, cy, size), ...] px: people to follow from the first
                                         # frame, in addition to what the detector finds

    def smoothing_config(self) -> SmoothingConfig:
        """The stage-2 post-process settings (smoothing.post_process)."""
        return SmoothingConfig(smoothing=self.smoothing, min_cutoff=self.min_cutoff, beta=self.beta,
                               root_cutoff=self.root_cutoff, bone_lengths=self.bone_lengths)

    def check(self) -> None:
        if self.preset not in PRESETS:
            raise InferenceError(f"unknown preset {self.preset!r} (choose from {', '.join(PRESETS)})")
        if self.device not in ("auto", "cpu", "cuda"):
            raise InferenceError(f"unknown device {self.device!r} (auto, cpu or cuda)")
        check_runtime_name(self.runtime)
        if not 0.0 <= self.crop_shrink_per_s <= 1.0:
            raise InferenceError(f"crop_shrink_per_s must be between 0 and 1, got {self.crop_shrink_per_s}")
        if self.max_people < 1:
            raise InferenceError(f"--max-people must be >= 1, got {self.max_people}")
        if self.focal is not None and not (np.isfinite(self.focal) and self.focal > 0):
            raise InferenceError(f"--focal must be a positive number of pixels, got {self.focal}")
        if not 1.0 < self.fov_deg < 179.0:
            raise InferenceError(f"field of view must be between 1 and 179 degrees, got {self.fov_deg}")
        if self.smoothing < 0 or not np.isfinite(self.smoothing):
            raise InferenceError(f"--smoothing must be >= 0, got {self.smoothing}")
        if self.root_cutoff < 0 or not np.isfinite(self.root_cutoff):
            raise InferenceError(f"root_cutoff must be >= 0 Hz, got {self.root_cutoff}")
        if self.start_pose_score is not None and not 0.0 <= self.start_pose_score <= 1.0:
            raise InferenceError(f"start_pose_score must be within 0..1, got {self.start_pose_score}")
        if self.detection_threshold is not None and not (np.isfinite(self.detection_threshold)
                                                         and self.detection_threshold >= 0.0):
            raise InferenceError(f"--detection-threshold must be >= 0 (scores lie in 0..1), got "
                                 f"{self.detection_threshold}")
        if self.detect_every < 1 or self.track_every < 1 or self.batch_size < 1:
            raise InferenceError("detect_every, track_every and batch_size must be >= 1")
        if not self.fallback_every_s > 0:
            raise InferenceError(f"fallback_every_s must be > 0, got {self.fallback_every_s}")
        if self.fallback_detector not in ("hog", "none"):
            raise InferenceError(f"unknown fallback detector {self.fallback_detector!r} (hog or none)")
        if not (np.isfinite(self.stitch_gap_s) and self.stitch_gap_s >= 0):
            raise InferenceError(f"stitch_gap_s must be >= 0 seconds, got {self.stitch_gap_s}")
        if not (np.isfinite(self.stitch_edge_gap_s) and self.stitch_edge_gap_s >= 0):
            raise InferenceError(f"stitch_edge_gap_s must be >= 0 seconds, got {self.stitch_edge_gap_s}")
        if self.fps is not None and not self.fps > 0:
            raise InferenceError(f"fps must be > 0, got {self.fps}")
        for b in self.initial_boxes or []:
            if np.shape(b) != (3,) or not np.all(np.isfinite(b)) or b[2] <= 0:
                raise InferenceError(f"initial box {b!r} is not (cx, cy, size) with size > 0")


@dataclass(eq=False)
class PoseResult(posefile.PoseData):
    """A run's result: the pose-file contents (posefile.PoseData: joints3d (P, F, J, 3) m camera
    frame, joints2d (P, F, J, 2) px, scores (P, F, J), valid (P, F), person_ids (P,), fps,
    image_size (W, H), camera_K (3, 3), meta) plus what the run has to tell:
    warnings: messages for the user; stats: counts and timings.
    """

    warnings: list[str] = field(default_factory=list)
    stats: dict = field(default_factory=dict)
    tracks: list = field(default_factory=list, repr=False)   # the 2D tracks that were lifted (stage 1's
                                                             # result; --dump-keypoints writes them)

    def save(self, path: str | os.PathLike) -> Path:
        """Validate and write the pose file atomically (never a half-written file)."""
        try:
            posefile.write_posefile(path, joints3d=self.joints3d, joints2d=self.joints2d, scores=self.scores,
                                    valid=self.valid, person_ids=self.person_ids, fps=self.fps,
                                    image_size=self.image_size, camera_K=self.camera_K, meta=self.meta,
                                    world_from_camera=self.world_from_camera, contacts=self.contacts,
                                    filled=self.filled)
        except posefile.PoseFileError as e:
            raise InferenceError(f"cannot write the pose file: {e}") from e
        return Path(path)


ProgressFn = Callable[[dict], None]


# ---------------------------------------------------------------------------- models
@dataclass
class Models:
    """The loaded networks of a preset (load_models). A run never changes them: its own settings
    (detection threshold, most people, flip test) go with each call, so one Models can serve
    many runs with different options."""

    pose: PoseEstimator
    detector: PersonDetector
    lifter: Lifter
    sha256: dict[str, str | None]       # weights file hashes: pose, detector, lifter


def _manifest(folder: Path, name: str) -> Path:
    return folder / f"{name}.json"


def load_models(opts: PipelineOptions) -> Models:
    """Pose network, detector and lifter for a preset; every failure is an InferenceError."""
    # The torch stages load here, not at the top, so the CLI's --help never imports torch.
    from inference.stages.detect import PersonDetector
    from inference.stages.lifting import Lifter, LifterError
    from inference.stages.pose2d import PoseEstimator

    folder = Path(opts.weights_dir) if opts.weights_dir else W.weights_dir()
    if opts.weights_dir and not folder.is_dir():
        raise InferenceError(f"--weights {folder}: no such folder")
    pose_m = _manifest(folder, f"pose_{opts.preset}")
    if not pose_m.is_file():
        if opts.preset == "accurate":
            raise InferenceError(
                f"the 'accurate' preset has no shipped weights yet ({pose_m} is missing): its 8-stack, "
                "256-px network needs a GPU to train. Use --preset balanced or fast, or train it "
                "(python -m training.train_2d --preset accurate) and put pose_accurate.json and its "
                "weights in a folder given with --weights.")
        raise InferenceError(f"pose weights not found: {pose_m}. The shipped weights live in the "
                             "repository's weights/ folder; point --weights at a folder holding "
                             f"pose_{opts.preset}.json, or set MOCAP_WEIGHTS.")
    det_m = _manifest(folder, f"detector_{opts.preset}")
    if not det_m.is_file():
        det_m = _manifest(folder, "detector_fast")
    lift_m = _manifest(folder, "lifter")
    flip = opts.flip_test if opts.flip_test is not None else opts.preset == "accurate"
    try:
        pose = PoseEstimator(pose_m, opts.device, flip=flip, batch_size=opts.batch_size,
                             runtime=opts.runtime, threads=opts.threads, skeleton=opts.skeleton_decode)
        det = PersonDetector(det_m, opts.device, threshold=opts.detection_threshold,
                             max_people=opts.max_people, runtime=opts.runtime, threads=opts.threads)
    except W.WeightsError as e:
        raise InferenceError(str(e)) from e
    if not lift_m.is_file():
        raise InferenceError(f"lifter weights not found: {lift_m} (the 3D lifter ships as weights/lifter.json "
                             "and its weights file)")
    try:   # the lifter runs where the pose network runs (onnx or torch; no int8 lifter)
        lifter = Lifter.load(str(lift_m), runtime="torch" if pose.model.runtime == "torch" else "onnx",
                             threads=opts.threads)
    except (LifterError, W.WeightsError) as e:
        raise InferenceError(str(e)) from e
    sha = {"pose": pose.manifest["sha256"], "detector": det.manifest["sha256"],
           "lifter": lifter.manifest.get("sha256")}
    return Models(pose, det, lifter, sha)


def run_flip(models: Models, opts: PipelineOptions) -> bool:
    """Whether this run's pose network uses the flip test: the option, else the models' own
    (load_models set it from the preset)."""
    return bool(models.pose.flip if opts.flip_test is None else opts.flip_test)


# ---------------------------------------------------------------------------- stage 1
def _covered(box: np.ndarray, others: list[np.ndarray]) -> int:
    """Index of the first box in others that is the same person as box (close centre, similar
    size), or -1."""
    for i, o in enumerate(others):
        size = max(box[2], o[2])
        if np.linalg.norm(box[:2] - o[:2]) < 0.35 * size and 0.6 < box[2] / max(o[2], 1e-6) < 1.67:
            return i
    return -1


def _needs_refine(box: np.ndarray, pbox: np.ndarray | None) -> bool:
    if pbox is None:
        return False
    # The crop is CROP_MARGIN (1.3) x the box, so a pose up to ~0.15 box sizes off-centre is
    # still wholly inside it: only re-crop beyond that, or when the size is off by > 30 %.
    return (np.linalg.norm(pbox[:2] - box[:2]) > 0.15 * box[2]
            or abs(np.log(max(pbox[2], 1.0) / max(box[2], 1.0))) > 0.3)


class _Stage1:
    """Chunked detection + pose + tracking over a frame stream."""

    def __init__(self, models: Models, opts: PipelineOptions, fps: float):
        self.m, self.opts = models, opts
        # This run's settings, passed with each call: the models stay as loaded (Models).
        self.flip = run_flip(models, opts) if models is not None else False
        self.threshold = opts.detection_threshold        # None: the detector's own
        self.tracker = Tracker(TrackerConfig(max_age=max(3, int(round(0.5 * fps))),
                                             propose_age=max(3, opts.detect_every),
                                             lost_window=max(3, int(round(0.5 * fps))),
                                             min_shrink=opts.crop_shrink_per_s ** (1.0 / fps)))
        self.stats = {"detector_frames": 0, "crops": 0, "refined_crops": 0, "poses": 0,
                      "frames_without_person": 0, "boxes_dropped": 0, "fallback_detections": 0,
                      "fallback_frames": 0, "fallback_frames_ahead": 0, "fallback_frames_unused": 0}
        self.fallback = self._ahead_hog = None
        if opts.fallback_detector == "hog":
            from inference.stages.detect import HogDetector  # lazy: detect imports torch (fast --help)

            self.fallback = HogDetector()
            self._ahead_hog = HogDetector()     # the decoding thread's own (look_ahead)
        self._ahead: dict[int, dict] = {}        # chunk's first frame -> detections made by look_ahead
        self._ahead_lock = threading.Lock()
        self._ahead_last = None                  # the last frame look_ahead ran the fallback on
        self.t = {"detect": 0.0, "pose": 0.0, "track": 0.0}
        self.first = True
        self.fallback_gap = max(1, int(round(opts.fallback_every_s * fps)))
        gate = (getattr(models.pose, "manifest", None) or {}).get("gate", {}) if models is not None else {}
        start = opts.start_pose_score if opts.start_pose_score is not None else gate.get("start_score")
        self.start_score = max(opts.min_pose_score, float(start) if start is not None else 0.0)
        # A track whose poses fall below the start gate for half a second has most likely
        # lost its person (tracking.TrackerConfig.lost_*).
        self.tracker.cfg.lost_score = self.start_score if opts.end_lost_tracks else 0.0
        self.last_fallback = None

    def _fallback_due(self, frame: int) -> bool:
        """The HOG fallback costs more than the learned detector and the pose crops of a chunk
        together, so it runs only while nobody is tracked or when its interval is up."""
        return (self.last_fallback is None or not self.tracker.tracks
                or frame - self.last_fallback >= self.fallback_gap)

    def look_ahead(self, batch: list) -> list:
        """In the decoding thread, before chunk() sees the batch: its first frame through the learned
        detector, and through the fallback when the fallback's interval will be up (the rule about
        nobody being tracked needs the tracker, so chunk() applies it). chunk() takes these results
        instead of computing them: the same numbers, computed beside the pose network's calls."""
        i, frame = batch[0]
        found = {"learned": self.m.detector.detect([frame], threshold=self.threshold,
                                                   max_people=self.opts.max_people)[0]}
        if self._ahead_hog is not None:
            last = max((v for v in (self.last_fallback, self._ahead_last) if v is not None), default=None)
            if last is None or i - last >= self.fallback_gap:
                found["hog"] = self._ahead_hog.detect([frame])[0]
                self._ahead_last = i
        with self._ahead_lock:
            self._ahead[i] = found
        return batch

    def chunk(self, idxs: list[int], frames: list[np.ndarray]) -> None:
        opts = self.opts
        t0 = time.perf_counter()
        with self._ahead_lock:
            ready = self._ahead.pop(idxs[0], {})
        dets = ready.get("learned")
        if dets is None:
            dets = self.m.detector.detect([frames[0]], threshold=self.threshold, max_people=opts.max_people)[0]
        self.stats["detector_frames"] += 1
        if self.fallback is not None and self._fallback_due(idxs[0]):
            self.last_fallback = idxs[0]
            self.stats["fallback_frames"] += 1
            extra = ready.get("hog")
            if extra is None:
                extra = self.fallback.detect([frames[0]])[0]
            else:
                self.stats["fallback_frames_ahead"] += 1
            self.stats["fallback_detections"] += len(extra)
            dets = dets + extra   # learned detections first; covered boxes are skipped below
        elif "hog" in ready:      # the interval was up, but an in-line run since had reset it
            self.stats["fallback_frames_unused"] += 1
        if self.first and opts.initial_boxes:
            given = np.asarray(opts.initial_boxes, np.float32).reshape(-1, 3)
            dets = Detections(given, np.ones(len(given), np.float32)) + dets
        self.first = False
        t1 = time.perf_counter()
        self.t["detect"] += t1 - t0
        step = max(1, min(opts.track_every, len(idxs)))
        for k in range(0, len(idxs), step):
            self._poses(idxs[k:k + step], frames[k:k + step], dets)

    def _poses(self, idxs: list[int], frames: list[np.ndarray], dets: Detections) -> None:
        """Pose crops and tracking for a few consecutive frames. dets: the chunk's detections."""
        opts = self.opts
        t1 = time.perf_counter()
        # Boxes at the first frame: the tracker's predictions (from the latest poses), then
        # the detections that no prediction covers (new or lost people).
        # Every box is sanitised here, where it enters the pose stage: non-finite, sub-pixel or
        # off-frame boxes are dropped and absurd sizes clamped (pose2d.sanitize_boxes).
        image_size = (frames[0].shape[1], frames[0].shape[0])
        props = self.tracker.proposals(idxs[0])
        vel = {tr.id: tr.velocity for tr in self.tracker.tracks}
        seeds = []
        for tid, b in self._sane([b for _, b in props], image_size, [tid for tid, _ in props]):
            v = np.asarray(vel.get(tid, np.zeros(2)), np.float32)
            seeds.append((b, v if np.isfinite(v).all() else np.zeros(2, np.float32), tid))
        for _, b in self._sane(list(dets.boxes), image_size):
            if _covered(b, [s[0] for s in seeds]) < 0:
                seeds.append((b, np.zeros(2), -1))
        seeds = seeds[: max(opts.max_people + 2, len(props))]
        seed_track = np.array([s[2] for s in seeds], np.int64)
        boxes = []
        for i in idxs:
            dt = i - idxs[0]
            boxes.append(np.array([[b[0] + v[0] * dt, b[1] + v[1] * dt, b[2]] for b, v, _ in seeds],
                                  np.float32).reshape(-1, 3))
        results = self.m.pose.estimate(frames, boxes, flip=self.flip)
        self.stats["crops"] += sum(len(b) for b in boxes)
        if opts.refine_crops:
            results = self._refine(frames, boxes, results)
        t2 = time.perf_counter()
        for i, poses in zip(idxs, results):
            joints, scores = poses.joints, poses.scores
            hint = seed_track.copy()
            ok = ((scores.mean(-1) >= opts.min_pose_score) & np.isfinite(joints).all((-2, -1))
                  if len(scores) else np.zeros(0, bool))     # NaN joints: a box that could not be cropped
            joints, scores, hint = joints[ok], scores[ok], hint[ok]
            keep = suppress_duplicates(joints, scores)
            joints, scores, hint = joints[keep], scores[keep], hint[keep]
            order = np.argsort(-scores.mean(-1), kind="stable")[: opts.max_people]
            joints, scores, hint = joints[order], scores[order], hint[order]
            # Only detections start tracks, and only with a pose that looks like a person (the
            # start gate); a crop a track proposed is matched with a bonus to it.
            may_start = (hint < 0) & (scores.mean(-1) >= self.start_score)
            ids = self.tracker.update(i, joints, scores, may_start=may_start, hint=hint)
            if not (ids >= 0).any():
                self.stats["frames_without_person"] += 1
            self.stats["poses"] += int((ids >= 0).sum())
        t3 = time.perf_counter()
        self.t["pose"] += t2 - t1
        self.t["track"] += t3 - t2

    def _sane(self, boxes, image_size, tags=None) -> list:
        """boxes: list of (3,) (cx, cy, size) px -> [(tag, clamped box (3,) float32)] for the usable
        ones (tags default to the indices); the dropped ones are counted in stats."""
        from inference.stages.pose2d import sanitize_boxes  # lazy: pose2d imports torch (fast --help)

        if not boxes:
            return []
        clean, ok = sanitize_boxes(np.stack([np.asarray(b, np.float64).reshape(3) for b in boxes]), image_size)
        self.stats["boxes_dropped"] += int((~ok).sum())
        tags = list(range(len(boxes))) if tags is None else tags
        return [(tags[k], clean[k]) for k in np.nonzero(ok)[0]]

    def _refine(self, frames, boxes, results):
        redo_f, redo_k, redo_boxes = [], [], []
        for f, (fb, poses) in enumerate(zip(boxes, results)):
            joints, scores = poses.joints, poses.scores
            for k in range(len(fb)):
                if scores[k].mean() < 0.5 * self.opts.min_pose_score:
                    continue
                pb = pose_box(joints[k], scores[k])
                if _needs_refine(fb[k], pb):
                    redo_f.append(f)
                    redo_k.append(k)
                    redo_boxes.append(pb)
        if not redo_f:
            return results
        per_frame = [np.zeros((0, 3), np.float32) for _ in frames]
        slots = {}
        for f, k, b in zip(redo_f, redo_k, redo_boxes):
            slots.setdefault(f, []).append(k)
            per_frame[f] = np.vstack([per_frame[f], b[None]])
        again = self.m.pose.estimate(frames, per_frame, flip=self.flip)
        self.stats["refined_crops"] += len(redo_f)
        out = [FramePoses(r.joints.copy(), r.scores.copy()) for r in results]
        for f, ks in slots.items():
            j2, s2 = again[f].joints, again[f].scores
            for n, k in enumerate(ks):
                if s2[n].mean() >= out[f].scores[k].mean():
                    out[f].joints[k], out[f].scores[k] = j2[n], s2[n]
        return out


# ---------------------------------------------------------------------------- stage 2
def lifter_scores(models: Models, scores: np.ndarray) -> np.ndarray:
    """The pose network's raw scores in the convention the lifter was trained with: calibrated
    (score_calibration) when it learnt from a pose network's measured errors, else as they are."""
    if not getattr(models.lifter, "wants_calibrated_scores", False):
        return scores
    return score_calibration.apply(getattr(models.pose, "score_calibration", None), scores).astype(np.float32)


def _build_result(tracks, frame0: int, F: int, fps: float, K: np.ndarray, models: Models,
                  opts: PipelineOptions, warnings: list[str], stats: dict) -> tuple:
    from inference.stages.lifting import LifterError  # lazy: lifting imports torch (fast --help)

    J = len(JOINT_NAMES)
    P = len(tracks)
    j3 = np.full((P, F, J, 3), np.nan, np.float32)
    j2 = np.full((P, F, J, 2), np.nan, np.float32)
    sc = np.zeros((P, F, J), np.float32)
    valid = np.zeros((P, F), bool)
    filled_any = np.zeros((P, F), bool)
    max_gap = max(0, int(round(opts.max_gap_s * fps)))
    filled_total = 0
    nonfinite_total = 0           # person-frames whose 3D came out inf/NaN (marked not valid)
    t_lift = t_smooth = 0.0
    side_fixes = 0                # left/right pair-frames swapped back (core/sides.py)
    smoothing = opts.smoothing_config()
    for p, tr in enumerate(tracks):
        person = person_track2d(tr, frame0, F, J, max_gap)
        joints, scores, v, filled = person.joints, person.scores, person.valid, person.filled
        if opts.fix_side_flicker:     # before lifting and smoothing, which would blend two limbs
            swaps = side_swaps(joints, scores, v, fps)
            joints, scores = apply_swaps(joints, scores, swaps)
            side_fixes += int(swaps.sum())
        filled_total += int(filled.sum())
        filled_any[p] = filled
        lifted = []                   # the runs lifted: smoothed one by one (post_process)
        for a, b in runs(v):
            t0 = time.perf_counter()
            try:
                X = models.lifter.lift(joints[a:b], lifter_scores(models, scores[a:b]), K,
                                       root_from_joints=opts.root_from_joints)
            except LifterError as e:   # e.g. no frame of the run has 2 confident joints
                v[a:b] = False
                warnings.append(f"person {p}: frames {frame0 + a}..{frame0 + b - 1} could not be lifted ({e})")
                continue
            t1 = time.perf_counter()
            # A lift that overflowed (inf/NaN) must not reach the pose file: its frames become
            # not valid, and the filters below skip them.
            X = np.array(X, np.float32)
            ok = np.isfinite(X).reshape(len(X), -1).all(1)
            if not ok.all():
                v[a:b] &= ok
                X[~ok] = np.nan
                nonfinite_total += int((~ok).sum())
                warnings.append(f"person {p}: the 3D lift of {int((~ok).sum())} frames in "
                                f"{frame0 + a}..{frame0 + b - 1} was not finite; they are marked not valid")
                if not ok.any():
                    continue
            j3[p, a:b] = X
            lifted.append((a, b))
            t_lift += t1 - t0
        t1 = time.perf_counter()
        done = post_process(PersonMotion(j3[p], joints, v), fps, K, smoothing, segments=lifted)
        j3[p], joints = done.joints3d, done.joints2d
        t_smooth += time.perf_counter() - t1
        # Last guard (e.g. smoothing or bone lengths overflowing huge but finite lifts).
        late = v & ~(np.isfinite(j3[p]).all((-2, -1)) & np.isfinite(joints).all((-2, -1)))
        if late.any():
            v &= ~late
            nonfinite_total += int(late.sum())
            warnings.append(f"person {p}: {int(late.sum())} frames had non-finite joints after smoothing; "
                            "they are marked not valid")
        j2[p], sc[p], valid[p] = joints, scores, v
    # Interpolated frames must not raise a frame above max_people: drop the weakest filled ones.
    over = np.nonzero(valid.sum(0) > opts.max_people)[0]
    for f in over:
        cand = [p for p in range(P) if valid[p, f] and filled_any[p, f]]
        cand.sort(key=lambda p: sc[p, f].mean())
        for p in cand[: int(valid[:, f].sum()) - opts.max_people]:
            valid[p, f] = False
            filled_total -= 1
    sc = np.clip(np.nan_to_num(sc), 0.0, 1.0)
    j2[~valid] = np.nan
    j3[~valid] = np.nan
    sc[~valid] = 0.0
    if filled_total:
        warnings.append(f"{filled_total} person-frames missing for up to {max_gap} frames were interpolated")
    stats["filled_person_frames"] = filled_total
    stats["side_flips_undone"] = side_fixes
    stats["nonfinite_lift_frames"] = nonfinite_total
    stats["seconds_lift"] = round(t_lift, 3)
    stats["seconds_smooth"] = round(t_smooth, 3)
    return j3, j2, sc, valid, filled_any & valid   # filled: the pose file's interpolated frames


# ---------------------------------------------------------------------------- run
def _prefetch_depth(models: Models) -> int:
    """Chunks decoded ahead in a background thread (0: decoded in line).

    ONNX Runtime: 2 on any machine with more than one core. Its threads sleep while they wait
    (runtime.onnx_session), so decoding fills the gaps in and between the small network calls
    (docs/runtime.md: the whole process on 2 cores, paired runs). PyTorch: 2 only when a core is
    free beside its threads. On 2 cores with torch on both, a decoding thread slows every network
    call (the threads of one convolution wait for the busiest core): serial decoding measured ~5%
    faster overall on the sample clip."""
    cores = os.cpu_count() or 1
    if getattr(models.pose.model, "runtime", None) in ("onnx", "onnx-int8"):
        return 2 if cores > 1 else 0
    threads = getattr(models.pose.model, "threads", None)
    if threads is None:
        import torch  # lazy: torch loads only when a run starts (fast --help)

        threads = torch.get_num_threads()
    return 2 if cores > threads else 0


def _decodes_ahead(opts: PipelineOptions, models: Models | None) -> bool:
    """Whether the run will decode in a background thread (_prefetch_depth), told before the models
    load: from the runtime that load_models will choose."""
    if models is not None:
        return _prefetch_depth(models) > 0
    from inference.models.runtime import choose_runtime  # lazy: the CLI's --help imports no runtime

    try:
        return choose_runtime(opts.runtime, opts.device)[0] == "onnx" and (os.cpu_count() or 1) > 1
    except InferenceError:   # load_models reports it
        return False


def run(source: str | os.PathLike, options: PipelineOptions | None = None,
        progress: ProgressFn | None = None, cancel: threading.Event | None = None,
        models: Models | None = None) -> PoseResult:
    """Video (or image folder) -> PoseResult.

    progress(update) is called with {"frame", "total", "fps", "eta"} (frames done, frames to do,
    processing rate, seconds left) a few times a second; cancel: set it to stop (raises
    Cancelled). models: preloaded ``load_models(options)`` to reuse across runs.
    Raises InferenceError for every problem a user can fix.
    """
    opts = options or PipelineOptions()
    opts.check()
    t_start = time.perf_counter()
    if opts.threads > 0 and (opts.runtime == "torch" or "torch" in sys.modules):
        import torch  # lazy: torch loads only when a run starts (fast --help), and not for ONNX Runtime

        torch.set_num_threads(opts.threads)
    # Bad input fails before loading weights. Decoding in a background thread runs FFmpeg on one thread.
    reader = FrameReader(source, opts.start, opts.end, opts.fps,
                         decoder_threads=1 if _decodes_ahead(opts, models) else 0)
    info = reader.info
    warnings = list(info.warnings)
    try:
        K = camera.intrinsics(info.size, focal_px=opts.focal, fov_deg=opts.fov_deg)
    except camera.CameraError as e:
        raise InferenceError(str(e)) from e
    if models is None:
        models = load_models(opts)
    if opts.preset == "accurate" and models.pose.device == "cpu":
        warnings.append("the accurate preset runs on the CPU here: expect well under 1 frame per second "
                        "(use a CUDA GPU, or --preset balanced)")
    t_loaded = time.perf_counter()
    stage = _Stage1(models, opts, info.fps)
    total = info.num_frames
    last_index = opts.start - 1
    done = 0
    t_decode = 0.0
    t_report = 0.0
    t_loop = time.perf_counter()
    batches = None
    ahead = _prefetch_depth(models)
    try:
        chunks = reader.batches(opts.detect_every)
        # With a decoding thread, each chunk's detections are made there too (_Stage1.look_ahead).
        batches = background((stage.look_ahead(b) for b in chunks), ahead) if ahead else chunks
        while True:
            t0 = time.perf_counter()
            batch = next(batches, None)
            t_decode += time.perf_counter() - t0
            if batch is None:
                break
            if cancel is not None and cancel.is_set():
                raise Cancelled("cancelled; nothing was written")
            idxs = [i for i, _ in batch]
            stage.chunk(idxs, [f for _, f in batch])
            done += len(batch)
            last_index = idxs[-1]
            now = time.perf_counter()
            if progress is not None and (now - t_report > 0.25):
                t_report = now
                rate = done / max(now - t_loop, 1e-9)
                todo = max(total - (last_index + 1 - opts.start), 0)
                progress({"frame": last_index + 1 - opts.start, "total": max(total, last_index + 1 - opts.start),
                          "fps": round(rate, 2), "eta": round(todo / rate, 1) if rate > 0 else None})
    finally:
        if batches is not None:
            batches.close()          # stops the decoding thread before the decoder is released
        reader.close()
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled; nothing was written")
    if done == 0:
        raise InferenceError(f"{source}: no frame could be decoded in the range asked for")
    t_stage1 = time.perf_counter()
    F = last_index + 1 - opts.start
    if reader.skipped:
        warnings.append(f"{reader.skipped} corrupt or unreadable frames were skipped (marked not valid)")
    min_frames = max(1, int(round(opts.min_track_s * info.fps)))
    # Short pieces go first: joined together they would outlast the filter, and most of them
    # are ghosts or duplicates (eval_video: more poses matching nobody when they were kept).
    every = stage.tracker.all_tracks()
    tracks = stage.tracker.all_tracks(min_frames=min_frames)
    dropped = len(every) - len(tracks)
    unconfirmed = unconfirmed_frames = 0
    if opts.verify_people:   # before stitching, so a ghost is never glued onto a person
        gate = (getattr(models.pose, "manifest", None) or {}).get("gate")
        verdict = verify_tracks(tracks, VerifyConfig.from_gate(gate, info.fps),
                                next_id=1 + max((t.id for t in every), default=-1))
        tracks, unconfirmed, unconfirmed_frames = verdict.kept, verdict.dropped, verdict.dropped_frames
    tracks, joins = stitch_tracks(tracks, info.fps, StitchConfig(max_gap_s=opts.stitch_gap_s,
                                                                 edge_gap_s=opts.stitch_edge_gap_s),
                                  image_size=(info.width, info.height) if opts.stitch_edge_gap_s > 0 else None)
    stats = dict(stage.stats)
    stats.update(frames=F, frames_decoded=done, frames_skipped=reader.skipped, decode_chunks_ahead=ahead,
                 tracks=len(tracks), tracks_dropped_short=dropped, tracks_unconfirmed=unconfirmed,
                 person_frames_unconfirmed=unconfirmed_frames,
                 tracks_lost=stage.tracker.lost, tracks_stitched=joins)
    j3, j2, sc, valid, filled = _build_result(tracks, opts.start, F, info.fps, K, models, opts, warnings, stats)
    placed = place_on_floor(j3, j2, sc, valid, K, info.fps, enabled=opts.floor,
                            focal_known=opts.focal is not None)
    j3 = placed.joints3d
    warnings.extend(placed.warnings)
    stats["seconds_floor"] = round(placed.seconds, 4)
    if len(tracks) == 0:
        warnings.append("no person was found in the video")
    elif stats["frames_without_person"]:
        warnings.append(f"no person found in {stats['frames_without_person']} of {done} frames")
    t_end = time.perf_counter()
    stats.update(seconds_total=round(t_end - t_start, 3), seconds_load=round(t_loaded - t_start, 3),
                 seconds_decode_wait=round(t_decode, 3), seconds_detect=round(stage.t["detect"], 3),
                 seconds_pose=round(stage.t["pose"], 3), seconds_track=round(stage.t["track"], 3),
                 seconds_stage2=round(t_end - t_stage1, 3),
                 fps_processing=round(done / max(t_end - t_loaded, 1e-9), 2))
    if progress is not None:
        progress({"frame": F, "total": F, "fps": stats["fps_processing"], "eta": 0.0})
    meta = _meta(source, opts, models, info, stats, warnings)
    meta["floor"] = placed.meta
    return PoseResult(joints3d=j3, joints2d=j2, scores=sc, valid=valid,
                      person_ids=np.arange(len(tracks), dtype=np.int32), fps=float(info.fps),
                      image_size=(int(info.width), int(info.height)), camera_K=K.astype(np.float32),
                      meta=meta, warnings=warnings, stats=stats,
                      world_from_camera=placed.world_from_camera, contacts=placed.contacts, filled=filled,
                      tracks=tracks)


def _runtime_meta(models: Models) -> dict:
    """{"pose": "onnx" | "onnx-int8" | "torch", "detector": ..., "device": "cpu" | "cuda", "onnxruntime":
    version or None, "onnx_sha256": {...} of the ONNX files that ran}."""
    from inference.models.runtime import onnxruntime_module

    nets = {"pose": models.pose, "detector": models.detector, "lifter": models.lifter}
    out = {name: getattr(n, "runtime", None) or getattr(n.model, "runtime", "torch") for name, n in nets.items()}
    out["device"] = models.pose.device
    ran_onnx = [name for name in nets if out[name] in ("onnx", "onnx-int8")]
    ort = onnxruntime_module() if ran_onnx else None
    out["onnxruntime"] = getattr(ort, "__version__", None)
    out["onnx_sha256"] = {name: nets[name].manifest.get("onnx_sha256") for name in ran_onnx}
    return out


def _torch_version() -> str | None:
    """torch's version, without importing it (an ONNX Runtime run never loads torch)."""
    if "torch" in sys.modules:
        return sys.modules["torch"].__version__
    try:
        return importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        return None


def _meta(source, opts: PipelineOptions, models: Models, info, stats: dict, warnings: list[str]) -> dict:
    return _run_meta(os.path.basename(os.fspath(source)), int(opts.start), opts, models, stats, warnings,
                     runtime=_runtime_meta(models),        # which runtime ran the pose and detector networks
                     flip_test=run_flip(models, opts),     # what ran (the option may be None: preset default)
                     source_kind=info.kind,
                     source_rotation_deg=info.rotation)   # turned upright by this before anything ran


def _run_meta(source_name: str, frame_start: int, opts: PipelineOptions, models: Models, stats: dict,
              warnings: list[str], **specific) -> dict:
    """The pose file's meta that video and keypoint runs share, with each run's own keys."""
    return {
        "generator": "inference",
        "engine_version": ENGINE_VERSION,
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "torch": _torch_version(), "opencv": cv2.__version__},
        "weights_sha256": models.sha256,
        "options": json.loads(json.dumps(asdict(opts), default=str)),
        "source": source_name,
        "frame_start": frame_start,
        "camera_assumed": opts.focal is None,
        "fov_deg": None if opts.focal is not None else float(opts.fov_deg),
        "stats": stats,
        "warnings": list(warnings),
        **specific,
    }


# ---------------------------------------------------------------------------- keypoint files
@dataclass
class KeypointOptions:
    """Where a keypoint run's 2D comes from (stages/keypoint_readers.py, docs/keypoints.md)."""

    format: str = "auto"                 # auto | openpose | coco | table
    joint_set: str | None = None         # tables: ours (default) | body25 | coco18 | coco17
    images: str | None = None            # COCO: a JSON with an "images" list (id, file_name) -> frames
    frame_regex: str | None = None       # COCO: the frame number in file_name (default: the last number)
    video: str | None = None             # the clip the keypoints came from: size, rate, frame count
    image_size: tuple[int, int] | None = None   # (W, H) px when neither the video nor the file says
    calibrate_scores: bool = True        # the file's scores through the preset's pose-network score
                                         # calibration (the convention of the engine's own 2D); False:
                                         # to the lifter as they are


class _PoseTable:
    """Stands in for the pose network in a keypoint run: only its score calibration is used
    (lifter_scores), read from the preset's manifest without loading the network."""

    def __init__(self, manifest: dict):
        self.manifest = manifest
        self.score_calibration = manifest.get("score_calibration")


def load_lifter_only(opts: PipelineOptions) -> Models:
    """The lifter, and the preset's pose manifest for its score calibration: all a keypoint run
    needs (Models with detector None)."""
    from inference.models.runtime import choose_runtime
    from inference.stages.lifting import Lifter, LifterError

    folder = Path(opts.weights_dir) if opts.weights_dir else W.weights_dir()
    pose_m, lift_m = _manifest(folder, f"pose_{opts.preset}"), _manifest(folder, "lifter")
    try:
        with open(pose_m) as f:
            pose_manifest = json.load(f)
    except (OSError, json.JSONDecodeError):
        pose_manifest = {}          # no calibration: scores go to the lifter as they are
    if not lift_m.is_file():
        raise InferenceError(f"lifter weights not found: {lift_m}")
    runtime, _ = choose_runtime(opts.runtime, "cpu" if opts.device == "auto" else opts.device)
    try:
        lifter = Lifter.load(str(lift_m), runtime=runtime, threads=opts.threads)
    except (LifterError, W.WeightsError) as e:
        raise InferenceError(str(e)) from e
    return Models(_PoseTable(pose_manifest), None, lifter,
                  {"pose": None, "detector": None, "lifter": lifter.manifest.get("sha256")})


def _project(X: np.ndarray, K: np.ndarray) -> np.ndarray:
    z = np.maximum(X[..., 2:3], 1e-6)
    return (X[..., :2] / z) * np.array([K[0, 0], K[1, 1]]) + K[:2, 2]


def run_keypoints(path: str | os.PathLike, options: PipelineOptions | None = None,
                  keypoints: KeypointOptions | None = None, models: Models | None = None) -> PoseResult:
    """A keypoint file (OpenPose, COCO results, table) -> PoseResult: the video run's stage 2 on the
    file's 2D (tracking when it has no ids, stitching, gap filling, left/right flicker, lifting,
    smoothing, floor). Size and rate from the video, else the options (keypoints.image_size,
    options.fps), else the file. Raises InferenceError (KeypointError) for every problem a user
    can fix."""
    from inference.stages.keypoint_readers import check, KeypointError, read_keypoints
    from inference.stages.keypoints import frames_without_person, keypoint_tracks

    opts = options or PipelineOptions()
    kpo = keypoints or KeypointOptions()
    opts.check()
    if opts.start != 0 or opts.end is not None:
        raise InferenceError("--start / --end cut a video; a keypoint run takes the file's frames as they are")
    t_start = time.perf_counter()
    kf = read_keypoints(path, kpo.format, kpo.joint_set, kpo.images, kpo.frame_regex)
    warnings: list[str] = []
    video_frames, rotation = None, 0
    if kpo.video:
        reader = FrameReader(kpo.video, 0, None, opts.fps)
        info = reader.info
        reader.close()
        size, fps, rotation = (info.width, info.height), info.fps, info.rotation
        video_frames = info.num_frames if info.num_frames > 0 else None
        warnings.extend(info.warnings)
    else:
        size = kpo.image_size or kf.image_size
        fps = opts.fps or kf.fps
        if size is None or fps is None:
            what = " and ".join(n for n, v in (("--image-size WxH", size), ("--fps F", fps)) if v is None)
            raise InferenceError(f"{path}: the file does not say the picture's size and frame rate; give "
                                 f"{what}, or the video it came from")
    size = (int(size[0]), int(size[1]))
    try:
        check(kf, size, video_frames)
    except KeypointError as e:
        if rotation in (90, 270):   # a tool that read the stored frames without the turn
            raise KeypointError(f"{e} ({kpo.video} is stored turned by {rotation} degrees and is read "
                                f"upright, {size[0]} x {size[1]}: keypoints made on the stored "
                                f"{size[1]} x {size[0]} frames must be turned the same way first)") from e
        raise
    F = video_frames if video_frames is not None else (
        kf.num_frames if kf.num_frames is not None else kf.last_frame + 1 - kf.frame_start)
    try:
        K = camera.intrinsics(size, focal_px=opts.focal, fov_deg=opts.fov_deg)
    except camera.CameraError as e:
        raise InferenceError(str(e)) from e
    models = models or load_lifter_only(opts)
    if not kpo.calibrate_scores:
        models = Models(_PoseTable({}), models.detector, models.lifter, models.sha256)
    t_loaded = time.perf_counter()
    tracks, kstats = keypoint_tracks(kf, fps, opts.max_people)
    min_frames = max(1, int(round(opts.min_track_s * fps)))
    every = len(tracks)
    tracks = [t for t in tracks if len(t.frames) >= min_frames]
    joins = 0
    if kstats["tracked_by"] == "tracker":    # ids given by the file are kept as they are
        tracks, joins = stitch_tracks(tracks, fps, StitchConfig(max_gap_s=opts.stitch_gap_s,
                                                                edge_gap_s=opts.stitch_edge_gap_s),
                                      image_size=size if opts.stitch_edge_gap_s > 0 else None)
    from inference.stages.keypoints import ours as _ours   # frames with nobody, on our timeline
    empty = frames_without_person(_ours(kf), F)
    stats = dict(kstats, frames=F, tracks=len(tracks), tracks_dropped_short=every - len(tracks),
                 tracks_stitched=joins, frames_without_person=empty)
    j3, j2, sc, valid, filled = _build_result(tracks, 0, F, fps, K, models, opts, warnings, stats)
    placed = place_on_floor(j3, j2, sc, valid, K, fps, enabled=opts.floor, focal_known=opts.focal is not None)
    j3 = placed.joints3d
    warnings.extend(placed.warnings)
    # Joints the file did not have: the lifted joint's projection (the pose file's 2D is finite).
    unseen = valid[..., None] & (sc <= 0)
    j2 = np.where(unseen[..., None], _project(j3, K), j2).astype(np.float32)
    if not tracks:
        warnings.append("no person in the keypoint file could be followed")
    elif empty:
        warnings.append(f"no person in {empty} of {F} frames")
    stats.update(seconds_floor=round(placed.seconds, 4), seconds_total=round(time.perf_counter() - t_start, 3),
                 seconds_load=round(t_loaded - t_start, 3))
    meta = _run_meta(os.path.basename(os.path.normpath(os.fspath(path))), int(kf.frame_start), opts, models,
                     stats, warnings, runtime={"lifter": models.lifter.runtime}, source_kind="keypoints",
                     keypoints={"format": kf.format, "joint_set": kf.joint_set,
                                "tracked_by": kstats["tracked_by"],
                                "scores_calibrated": bool(kpo.calibrate_scores and models.pose.score_calibration),
                                "video": os.path.basename(kpo.video) if kpo.video else None, **kf.meta},
                     floor=placed.meta)
    return PoseResult(joints3d=j3, joints2d=j2, scores=sc, valid=valid,
                      person_ids=np.array([t.id if kf.has_ids else p for p, t in enumerate(tracks)], np.int32),
                      fps=float(fps), image_size=size,
                      camera_K=K.astype(np.float32), meta=meta, warnings=warnings, stats=stats,
                      world_from_camera=placed.world_from_camera, contacts=placed.contacts, filled=filled,
                      tracks=tracks)
