"""Readers of other detectors' 2D keypoint files (json + numpy; no networks).

    kf = read_keypoints("clip_openpose/")            # format from the path and contents
    kf.joint_set, kf.frames[12]                      # "body25", (joints (N, K, 2), scores (N, K), ids (N,))

Formats (docs/keypoints.md):

* ``openpose``: a folder of OpenPose's per-frame ``*_keypoints.json`` (or one such file), BODY_25 or
  COCO-18 by the number of joints. The frame is the number before ``_keypoints.json`` (OpenPose's
  12-digit counter), else the file's place in natural order; a ``person_id`` >= 0 is an id.
* ``coco``: COCO keypoint results, a JSON list of ``{"image_id", "keypoints": [x, y, s] x 17,
  "score"}`` as MMPose/RTMPose, Detectron2 and YOLO-pose write (COCO-WholeBody's 133 joints: the
  first 17 are taken); an optional ``track_id`` is an id. The frame is ``image_id`` unless an
  ``images`` list (``{"id", "file_name"}``, from a COCO file or the results file itself) is given:
  then it is the number that ``frame_regex`` finds in the file name (default: the last number).
* ``table``: ``.npz`` or ``.csv`` rows (frame, person, joint, x, y, score); person -1 = unknown, joint
  an index or a name of ``joint_set`` (default ours). An ``.npz`` may also hold ``fps``,
  ``image_size`` (W, H), ``num_frames``, ``frame_start`` and ``joint_set`` (the engine's
  ``--dump-keypoints`` writes them all).

Every reader returns a KeypointFile; ``check`` then judges the values against the picture.
Problems raise KeypointError (an InferenceError: one line for the user).
"""
from __future__ import annotations

import csv
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inference.core.keypoint_formats import JOINT_SETS, joint_set as _joint_set, KeypointFormatError
from inference.errors import InferenceError

FORMATS = ("auto", "openpose", "coco", "table")
TABLE_COLUMNS = ("frame", "person", "joint", "x", "y", "score")
OUTSIDE_MARGIN = 0.1    # a seen joint may lie this fraction of the picture outside it (detectors do)
_OPENPOSE_FRAME = re.compile(r"(\d+)_keypoints\.json$", re.IGNORECASE)


class KeypointError(InferenceError):
    """A keypoint file that cannot be used; the message says which and why."""


@dataclass
class KeypointFile:
    """What a keypoint file holds: per frame index (0-based, the video's), joints (N, K, 2) px,
    scores (N, K) (0 = missing) and ids (N,) int (-1 = unknown) of the set ``joint_set``."""

    path: str
    format: str
    joint_set: str
    frames: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]
    has_ids: bool
    num_frames: int | None = None       # frames the file covers when it says (one JSON a frame, npz)
    frame_start: int = 0
    fps: float | None = None
    image_size: tuple[int, int] | None = None
    meta: dict = field(default_factory=dict)

    @property
    def last_frame(self) -> int:
        return max(self.frames) if self.frames else -1

    def people(self) -> int:
        return sum(len(v[2]) for v in self.frames.values())


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _set_for_count(k: int, where: str, sets=("body25", "coco18")) -> str:
    for s in sets:
        if len(JOINT_SETS[s]) == k:
            return s
    raise KeypointError(f"{where}: {k} joints per person, expected one of "
                        + ", ".join(f"{len(JOINT_SETS[s])} ({s})" for s in sets))


def _triples(values, where: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(values, np.float64).ravel()
    if len(a) % 3:
        raise KeypointError(f"{where}: keypoints must be x, y, score triples; got {len(a)} numbers")
    a = a.reshape(-1, 3)
    return a[:, :2], a[:, 2]


def _load_json(path: Path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, UnicodeDecodeError) as e:
        raise KeypointError(f"cannot read {path}: {e}") from e
    except json.JSONDecodeError as e:
        raise KeypointError(f"{path} is not JSON ({e})") from e


# ---------------------------------------------------------------------------- OpenPose
def read_openpose(path: str | os.PathLike) -> KeypointFile:
    p = Path(path)
    if p.is_dir():
        files = [f for f in p.iterdir() if f.is_file() and f.name.lower().endswith("_keypoints.json")]
        if not files:
            raise KeypointError(f"{p}: no OpenPose *_keypoints.json files in this folder")
    elif p.is_file():
        files = [p]
    else:
        raise KeypointError(f"{p}: not found")
    numbered = [_OPENPOSE_FRAME.search(f.name) for f in files]
    if all(numbered) and len({int(m.group(1)) for m in numbered}) == len(files):
        indexed = sorted(zip((int(m.group(1)) for m in numbered), files))   # OpenPose's frame counter
    else:
        indexed = list(enumerate(sorted(files, key=lambda f: _natural_key(f.name))))
    frames, sets, any_unknown, any_id = {}, set(), False, False
    for idx, f in indexed:
        doc = _load_json(f)
        if not isinstance(doc, dict) or not isinstance(doc.get("people"), list):
            raise KeypointError(f"{f}: not an OpenPose keypoints file (no 'people' list)")
        J, S, I = [], [], []
        for k, person in enumerate(doc["people"]):
            # "pose_keypoints": OpenPose before 1.2 (same layout)
            kp = (person.get("pose_keypoints_2d") or person.get("pose_keypoints")) if isinstance(person, dict) else None
            if not kp:
                raise KeypointError(f"{f}: person {k} has no pose_keypoints_2d")
            j, s = _triples(kp, f"{f} person {k}")
            sets.add(_set_for_count(len(j), f"{f} person {k}"))
            pid = person.get("person_id", -1)
            pid = pid[0] if isinstance(pid, list) and pid else pid
            pid = int(pid) if isinstance(pid, (int, float)) and pid == pid else -1
            any_unknown |= pid < 0
            any_id |= pid >= 0
            J.append(j), S.append(s), I.append(pid)
        if len(sets) > 1:
            raise KeypointError(f"{p}: mixes joint sets ({', '.join(sorted(sets))}); one model per file")
        frames[idx] = (np.array(J).reshape(len(J), -1, 2), np.array(S).reshape(len(S), -1),
                       np.array(I, np.int64))
    js = sets.pop() if sets else "body25"
    n = max(frames) + 1
    for f_ in range(n):
        frames.setdefault(f_, (np.zeros((0, len(JOINT_SETS[js]), 2)), np.zeros((0, len(JOINT_SETS[js]))),
                               np.zeros(0, np.int64)))
    for i in frames:   # consistent empty shapes when the set was learnt after an empty frame
        if len(frames[i][2]) == 0:
            frames[i] = (np.zeros((0, len(JOINT_SETS[js]), 2)), np.zeros((0, len(JOINT_SETS[js]))),
                         np.zeros(0, np.int64))
    return KeypointFile(str(p), "openpose", js, frames, has_ids=any_id and not any_unknown,
                        num_frames=n, meta={"files": len(files)})


# ---------------------------------------------------------------------------- COCO results
def frame_of_images(images, frame_regex: str | None = None) -> dict[int, int]:
    """COCO ``images`` ({"id", "file_name"} list) -> {image id: frame}, the frame being the number
    the regex's first group (default: the last number in the name) finds in file_name."""
    rx = re.compile(frame_regex or r"(\d+)(?!.*\d)")
    out = {}
    for im in images:
        if not isinstance(im, dict) or "id" not in im or "file_name" not in im:
            raise KeypointError("an entry of 'images' has no id or file_name")
        m = rx.search(os.path.basename(str(im["file_name"])))
        if not m:
            raise KeypointError(f"no frame number in image file name {im['file_name']!r} "
                                f"(pattern {rx.pattern!r}; give --frame-regex)")
        out[int(im["id"])] = int(m.group(1) if m.groups() else m.group(0))
    return out


def read_coco(path: str | os.PathLike, images: str | os.PathLike | None = None,
              frame_regex: str | None = None) -> KeypointFile:
    p = Path(path)
    if not p.is_file():
        raise KeypointError(f"{p}: not found")
    doc = _load_json(p)
    image_list = None
    if isinstance(doc, dict) and isinstance(doc.get("annotations"), list):
        image_list = doc.get("images")
        doc = doc["annotations"]
    if not isinstance(doc, list):
        raise KeypointError(f"{p}: not COCO keypoint results (expected a list of "
                            "{{image_id, keypoints, score}} objects)")
    if images is not None:
        other = _load_json(Path(images))
        image_list = other.get("images") if isinstance(other, dict) else other
        if not isinstance(image_list, list):
            raise KeypointError(f"{images}: no 'images' list of {{id, file_name}}")
    to_frame = frame_of_images(image_list, frame_regex) if image_list else None
    rows: dict[int, list] = {}
    any_id = any_unknown = False
    flags_only = True
    for k, d in enumerate(doc):
        if not isinstance(d, dict) or "image_id" not in d or "keypoints" not in d:
            raise KeypointError(f"{p}: entry {k} is not a COCO keypoint result (needs image_id and keypoints)")
        if d.get("category_id", 1) != 1:
            continue
        j, s = _triples(d["keypoints"], f"{p} entry {k}")
        if len(j) == 133:       # COCO-WholeBody: body joints first
            j, s = j[:17], s[:17]
        if len(j) != 17:
            raise KeypointError(f"{p} entry {k}: {len(j)} keypoints, expected 17 (COCO) or 133 (WholeBody)")
        flags_only &= bool(np.isin(s, (0.0, 1.0, 2.0)).all())
        iid = int(d["image_id"])
        if to_frame is not None:
            if iid not in to_frame:
                raise KeypointError(f"{p} entry {k}: image_id {iid} is not in the images list")
            frame = to_frame[iid]
        else:
            frame = iid
        tid = d.get("track_id", -1)
        tid = int(tid) if isinstance(tid, (int, float)) and tid == tid else -1
        any_id |= tid >= 0
        any_unknown |= tid < 0
        rows.setdefault(frame, []).append((j, s, tid, float(d.get("score", s.mean()))))
    if not rows:
        raise KeypointError(f"{p}: no person keypoints in the file")
    frames = {}
    for f, people in rows.items():
        people.sort(key=lambda r: -r[3])          # best first, as the engine keeps them
        J = np.stack([r[0] for r in people])
        S = np.stack([r[1] for r in people])
        if flags_only:   # ground-truth style visibility flags 0/1/2, not scores
            S = (S > 0).astype(np.float64)
        frames[f] = (J, S, np.array([r[2] for r in people], np.int64))
    if min(frames) < 0:
        raise KeypointError(f"{p}: negative frame {min(frames)} (image_id or file-name number)")
    return KeypointFile(str(p), "coco", "coco17", frames, has_ids=any_id and not any_unknown,
                        meta={"visibility_flags": flags_only, "mapped_by_file_name": to_frame is not None})


# ---------------------------------------------------------------------------- plain table
def _table_columns(p: Path) -> tuple[dict, dict]:
    """(columns: name -> 1-D array, extras) of a .npz or .csv table."""
    if p.suffix.lower() == ".npz":
        try:
            with np.load(p, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except (OSError, ValueError) as e:
            raise KeypointError(f"cannot read {p}: {e}") from e
        missing = [c for c in TABLE_COLUMNS if c not in data]
        if missing:
            raise KeypointError(f"{p}: not a keypoint table (missing arrays {', '.join(missing)}; "
                                f"expected {', '.join(TABLE_COLUMNS)})")
        return {c: np.asarray(data[c]).ravel() for c in TABLE_COLUMNS}, data
    try:
        with open(p, newline="", encoding="utf-8") as f:
            reader = csv.reader(line for line in f if line.strip() and not line.lstrip().startswith("#"))
            header = [h.strip().lower() for h in next(reader, [])]
            missing = [c for c in TABLE_COLUMNS if c not in header]
            if missing:
                raise KeypointError(f"{p}: not a keypoint table (the header lacks {', '.join(missing)}; "
                                    f"expected columns {', '.join(TABLE_COLUMNS)})")
            rows = [r for r in reader]
    except (OSError, UnicodeDecodeError) as e:
        raise KeypointError(f"cannot read {p}: {e}") from e
    cols = {}
    for c in TABLE_COLUMNS:
        i = header.index(c)
        try:
            cols[c] = np.array([r[i].strip() for r in rows])
        except IndexError:
            raise KeypointError(f"{p}: a row has fewer columns than the header") from None
    return cols, {}


def read_table(path: str | os.PathLike, joint_set: str | None = None) -> KeypointFile:
    p = Path(path)
    if not p.is_file():
        raise KeypointError(f"{p}: not found")
    cols, extra = _table_columns(p)
    js = joint_set or (str(extra["joint_set"]) if "joint_set" in extra else "ours")
    try:
        names = _joint_set(js)
    except KeypointFormatError as e:
        raise KeypointError(str(e)) from e
    joint = cols["joint"]
    if joint.dtype.kind in "iuf":
        jidx = joint.astype(np.float64)
    else:
        lookup = {n: i for i, n in enumerate(names)}
        try:
            jidx = np.array([float(t) if re.fullmatch(r"-?\d+", t) else lookup[t] for t in joint.astype(str)])
        except KeyError as e:
            raise KeypointError(f"{p}: joint {e.args[0]!r} is not in joint set {js!r} "
                                f"({', '.join(names)})") from None
    try:
        frame = cols["frame"].astype(np.float64)
        person = cols["person"].astype(np.float64)
        xy = np.stack([cols["x"].astype(np.float64), cols["y"].astype(np.float64)], -1)
        score = cols["score"].astype(np.float64)
    except ValueError as e:
        raise KeypointError(f"{p}: a frame, person, x, y or score value is not a number ({e})") from None
    for name, v in (("frame", frame), ("person", person), ("joint", jidx)):
        if len(v) and (~np.isfinite(v) | (v != np.round(v))).any():
            raise KeypointError(f"{p}: column {name} must hold whole numbers")
    if len(frame) and frame.min() < 0:
        raise KeypointError(f"{p}: negative frame {int(frame.min())}")
    if len(jidx) and (jidx.min() < 0 or jidx.max() >= len(names)):
        raise KeypointError(f"{p}: joint index out of range 0..{len(names) - 1} for joint set {js!r}")
    K = len(names)
    frames = {}
    has_ids = bool(len(person)) and bool((person >= 0).all())
    frame, person, jidx = frame.astype(np.int64), person.astype(np.int64), jidx.astype(np.int64)
    for f in np.unique(frame):
        sel = frame == f
        pids = np.unique(person[sel])
        if not has_ids and (person[sel] < 0).sum() and len(pids) > 1 and (pids >= 0).any():
            raise KeypointError(f"{p}: frame {f} mixes known and unknown (-1) persons")
        J = np.full((len(pids), K, 2), np.nan)
        S = np.zeros((len(pids), K))
        for n, pid in enumerate(pids):
            rows = np.nonzero(sel & (person == pid))[0]
            if len(np.unique(jidx[rows])) != len(rows):
                raise KeypointError(f"{p}: frame {f} person {pid} has a joint twice"
                                    + (" (person -1 holds one unknown person a frame)" if pid < 0 else ""))
            J[n, jidx[rows]] = xy[rows]
            S[n, jidx[rows]] = score[rows]
        frames[int(f)] = (J, S, pids if has_ids else np.full(len(pids), -1, np.int64))
    def scalar(key, kind):
        if key not in extra:
            return None
        v = np.asarray(extra[key])
        return kind(v.ravel()[0]) if v.size == 1 else v
    size = extra.get("image_size")
    image_size = tuple(int(v) for v in np.asarray(size).ravel()[:2]) if size is not None else None
    return KeypointFile(str(p), "table", js, frames, has_ids=has_ids, num_frames=scalar("num_frames", int),
                        frame_start=scalar("frame_start", int) or 0, fps=scalar("fps", float),
                        image_size=image_size)


# ---------------------------------------------------------------------------- dispatch and checks
def detect_format(path: str | os.PathLike) -> str:
    p = Path(path)
    if p.is_dir():
        return "openpose"
    if not p.exists():
        raise KeypointError(f"{p}: not found")
    suffix = p.suffix.lower()
    if suffix in (".npz", ".csv"):
        return "table"
    if suffix == ".json":
        head = p.open("rb").read(4096).decode("utf-8", "replace").lstrip()
        if head.startswith("[") or '"annotations"' in head:
            return "coco"
        if '"people"' in head:
            return "openpose"
        raise KeypointError(f"{p}: neither OpenPose keypoints ('people') nor COCO results (a list)")
    raise KeypointError(f"{p}: unknown keypoint file type {suffix or '(no extension)'}; expected a folder "
                        "of OpenPose JSON, a COCO results .json, or a .npz / .csv table")


def read_keypoints(path: str | os.PathLike, fmt: str = "auto", joint_set: str | None = None,
                   images: str | os.PathLike | None = None, frame_regex: str | None = None) -> KeypointFile:
    """Any supported keypoint file (``fmt`` one of FORMATS; auto: from the path and contents)."""
    if fmt not in FORMATS:
        raise KeypointError(f"unknown keypoint format {fmt!r} (one of {', '.join(FORMATS)})")
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "openpose":
        kf = read_openpose(path)
    elif fmt == "coco":
        kf = read_coco(path, images, frame_regex)
    else:
        kf = read_table(path, joint_set)
    if joint_set and kf.joint_set != joint_set:
        raise KeypointError(f"{path}: holds joint set {kf.joint_set!r}, not {joint_set!r}")
    return kf


def check(kf: KeypointFile, image_size: tuple[int, int], num_frames: int | None = None) -> None:
    """Values a run cannot use: a seen joint (score > 0) with NaN/inf coordinates or well outside
    the picture (more than OUTSIDE_MARGIN of its size: negative coordinates, the wrong
    --image-size, normalised coordinates), negative scores, a person with no seen joint, or frames
    beyond the video's / a frame count that differs from it."""
    W, H = image_size
    lo = -OUTSIDE_MARGIN * np.array([W, H])
    hi = (1 + OUTSIDE_MARGIN) * np.array([W, H])
    where = kf.path
    if not kf.frames:
        raise KeypointError(f"{where}: no frames")
    for f in sorted(kf.frames):
        J, S, _ = kf.frames[f]
        if np.isnan(S).any():
            raise KeypointError(f"{where}: frame {f} has a NaN score")
        if (S < 0).any():
            raise KeypointError(f"{where}: frame {f} has a negative score")
        seen = S > 0
        if len(S) and not seen.any(-1).all():
            n = int(np.nonzero(~seen.any(-1))[0][0])
            raise KeypointError(f"{where}: frame {f} person {n} has no valid joint (every score is 0)")
        bad = seen & ~np.isfinite(J).all(-1)
        if bad.any():
            n, j = np.argwhere(bad)[0]
            raise KeypointError(f"{where}: frame {f} person {n} joint {j} has a NaN/inf coordinate "
                                "with a score > 0 (give a missing joint score 0)")
        off = seen & ((J < lo) | (J > hi)).any(-1)
        if off.any():
            n, j = np.argwhere(off)[0]
            x, y = J[n, j]
            kind = "negative coordinates" if (J[n, j] < lo).any() else "coordinates beyond the picture"
            raise KeypointError(f"{where}: frame {f} person {n} joint {j} has {kind} ({x:g}, {y:g}) for a "
                                f"{W}x{H} picture (pixels expected; check --image-size)")
    if num_frames is not None:
        if kf.last_frame - kf.frame_start >= num_frames:
            raise KeypointError(f"{where}: has frame {kf.last_frame} but the video has {num_frames} frames "
                                f"from frame {kf.frame_start}")
        if kf.num_frames is not None and kf.num_frames != num_frames:
            raise KeypointError(f"{where}: covers {kf.num_frames} frames but the video has {num_frames}")
