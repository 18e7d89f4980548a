"""Pose file, format version 2: the contract between the engine (``inference``) and the add-on.

One ``.npz`` per video. Pure numpy; no bpy, no torch. Letters used in shapes:
P people, F frames, J joints (J = 16, order ``JOINT_NAMES``).

=================  ======================  ==============================================
key                dtype, shape            meaning
=================  ======================  ==============================================
format_version     int, ()                 2 (readers also accept 1)
joint_names        str, (J,)               ``JOINT_NAMES``
joints3d           float32, (P, F, J, 3)   metres, camera frame, OpenCV axes (x right,
                                           y down, z forward), absolute (root depth incl.)
joints2d           float32, (P, F, J, 2)   pixels in the source video
scores             float32, (P, F, J)      confidence in 0..1, NaN-free
valid              bool, (P, F)            person p present in frame f; joints of other
                                           rows are undefined (may be NaN)
person_ids         int32, (P,)             stable track ids, unique
fps                float, ()               source frame rate, > 0
image_size         int, (2,)               width, height in pixels
camera_K           float32, (3, 3)         pinhole intrinsics used
meta               str, ()                 JSON object: versions, weights sha256, options;
                                           ``meta["floor"]``: see below
world_from_camera  float32, (4, 4)         optional (v2): rigid transform, camera frame
                                           (OpenCV axes, m) -> world frame: Z up, floor
                                           z = 0, camera at (0, 0, h), +Y = viewing
                                           direction projected on the floor, +X = right
contacts           bool, (P, F, 2)         optional (v2), only with world_from_camera: foot
                                           on the floor; column 0 r_ankle, 1 l_ankle;
                                           False where valid is False
filled             bool, (P, F)            optional (v2, added later; readers that do not
                                           know it ignore it): person p's pose in frame f
                                           was interpolated across a short dropout, not
                                           seen; False where valid is False
=================  ======================  ==============================================

Version 2 adds only the optional keys and ``meta["floor"]``; every version-1 key keeps its
meaning (``joints3d`` stays in the camera frame). Optional keys are left out of the file when
absent (``None`` in ``PoseData``). Readers accept versions 1 and 2 (a version-1 file, or a
version-2 file written before ``filled`` existed, reads with the missing keys ``None``); writers
write version 2.

``meta["floor"]`` (written by the engine, optional for other writers): a JSON object with
``status`` one of ``FLOOR_STATUSES`` ("estimated": world_from_camera is set; every other status
says why there is no floor), ``camera_height_m``, ``pitch_deg`` (optical axis below the horizon,
positive looking down), ``roll_deg`` (positive when the image's +x axis points up),
``inliers`` and whatever else the engine reports (``message``, ...).

Every problem found while reading, writing or validating raises ``PoseFileError``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import zipfile
import zlib
from typing import Any

import numpy as np

from posefile.skeleton import JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, PARENTS

__all__ = [
    "FLOOR_STATUSES",
    "FORMAT_VERSION",
    "READABLE_VERSIONS",
    "JOINT_NAMES",
    "JOINT_INDEX",
    "NUM_JOINTS",
    "PARENTS",
    "PoseData",
    "PoseFileError",
    "empty",
    "load",
    "save",
    "to_arrays",
    "validate",
    "world_joints",
    "write_posefile",
]

FORMAT_VERSION = 2
#: Versions this module reads (and validates); it writes FORMAT_VERSION.
READABLE_VERSIONS = (1, 2)
#: Values of ``meta["floor"]["status"]``; only "estimated" comes with world_from_camera.
FLOOR_STATUSES = ("estimated", "no_feet", "moving_camera", "too_few_frames", "disabled")

_ARRAY_KEYS = ("joints3d", "joints2d", "scores", "valid", "person_ids", "image_size", "camera_K")
_REQUIRED_KEYS = ("format_version", "joint_names", *_ARRAY_KEYS, "fps", "meta")
# ``filled`` came after the first version-2 files: an optional key old readers skip (they read
# only the keys they know), so it needs no new format_version.
_OPTIONAL_KEYS_V2 = ("world_from_camera", "contacts", "filled")


class PoseFileError(Exception):
    """A pose file (or pose data about to be written) breaks the contract."""


@dataclasses.dataclass(eq=False)
class PoseData:
    """In-memory pose file. Arrays keep the dtypes and shapes of the contract.

    joints3d   float32 (P, F, J, 3)   metres, OpenCV camera frame
    joints2d   float32 (P, F, J, 2)   pixels
    scores     float32 (P, F, J)      0..1
    valid      bool    (P, F)
    person_ids int32   (P,)
    fps        float
    image_size tuple (width, height)
    camera_K   float32 (3, 3)
    meta       dict (stored as a JSON string)
    joint_names tuple of J str (always ``JOINT_NAMES``)
    world_from_camera float32 (4, 4) or None   camera frame -> world frame (v2)
    contacts   bool (P, F, 2) or None          feet on the floor, (r_ankle, l_ankle) (v2)
    filled     bool (P, F) or None             frames interpolated across a dropout (v2)
    """

    joints3d: np.ndarray
    joints2d: np.ndarray
    scores: np.ndarray
    valid: np.ndarray
    person_ids: np.ndarray
    fps: float
    image_size: tuple[int, int]
    camera_K: np.ndarray
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    joint_names: tuple[str, ...] = JOINT_NAMES
    format_version: int = FORMAT_VERSION
    world_from_camera: np.ndarray | None = None
    contacts: np.ndarray | None = None
    filled: np.ndarray | None = None

    @property
    def num_people(self) -> int:
        return int(self.valid.shape[0])

    @property
    def num_frames(self) -> int:
        return int(self.valid.shape[1])


def default_camera_K(width: int, height: int) -> np.ndarray:
    """Placeholder intrinsics (3, 3) float32: focal = image width, principal point at the centre.

    Only for ``empty``; inference decides the real intrinsics.
    """
    f = float(width)
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]], np.float32)


def empty(P: int, F: int, *, fps: float = 30.0, image_size: tuple[int, int] = (1920, 1080),
          camera_K: np.ndarray | None = None, meta: dict[str, Any] | None = None) -> PoseData:
    """PoseData for P people and F frames with nobody present yet.

    joints are NaN and ``valid`` is False everywhere, scores are 0, person_ids are 0..P-1.
    Fill rows and set ``valid[p, f] = True`` for the frames where person p is seen.
    """
    if P < 0 or F < 0:
        raise PoseFileError(f"P and F must be >= 0, got P={P}, F={F}")
    w, h = int(image_size[0]), int(image_size[1])
    return PoseData(
        joints3d=np.full((P, F, NUM_JOINTS, 3), np.nan, np.float32),
        joints2d=np.full((P, F, NUM_JOINTS, 2), np.nan, np.float32),
        scores=np.zeros((P, F, NUM_JOINTS), np.float32),
        valid=np.zeros((P, F), bool),
        person_ids=np.arange(P, dtype=np.int32),
        fps=float(fps),
        image_size=(w, h),
        camera_K=default_camera_K(w, h) if camera_K is None else np.asarray(camera_K, np.float32),
        meta=dict(meta or {}),
    )


# --------------------------------------------------------------------------- validation

def _check_dtype(name: str, arr: np.ndarray, want: str) -> None:
    ok = {
        "float32": arr.dtype == np.float32,
        "bool": arr.dtype == np.bool_,
        "int32": arr.dtype == np.int32,
        "int": arr.dtype.kind in "iu",
    }[want]
    if not ok:
        raise PoseFileError(f"'{name}' must have dtype {want}, got {arr.dtype}")


def _check_shape(name: str, arr: np.ndarray, want: tuple[int, ...]) -> None:
    if arr.shape != want:
        raise PoseFileError(f"'{name}' has shape {arr.shape}, expected {want} "
                            f"(P people, F frames, J={NUM_JOINTS} joints from 'valid' and the contract)")


def _versions_text() -> str:
    return ", ".join(str(v) for v in READABLE_VERSIONS)


def _check_world_from_camera(T: Any) -> None:
    """world_from_camera: float32 (4, 4), finite, rotation orthonormal with det +1, last row
    0 0 0 1, camera at (0, 0, h) with h > 0 and its optical axis in the world's YZ plane."""
    if not isinstance(T, np.ndarray):
        raise PoseFileError(f"'world_from_camera' must be an array, got {type(T).__name__}")
    _check_dtype("world_from_camera", T, "float32")
    if T.shape != (4, 4):
        raise PoseFileError(f"'world_from_camera' has shape {T.shape}, expected (4, 4)")
    if not np.isfinite(T).all():
        raise PoseFileError("'world_from_camera' contains NaN/inf")
    M = T.astype(np.float64)
    if not np.allclose(M[3], (0, 0, 0, 1), atol=1e-6):
        raise PoseFileError(f"'world_from_camera' last row must be 0 0 0 1, got {M[3].tolist()}")
    R, t = M[:3, :3], M[:3, 3]
    if not np.allclose(R.T @ R, np.eye(3), atol=1e-4) or abs(np.linalg.det(R) - 1.0) > 1e-4:
        raise PoseFileError("'world_from_camera' is not rigid: its rotation must be orthonormal "
                            f"with determinant +1 (det {np.linalg.det(R):.6g})")
    if abs(t[0]) > 1e-4 or abs(t[1]) > 1e-4 or not t[2] > 0:
        raise PoseFileError("'world_from_camera' must put the camera at (0, 0, h) with h > 0 "
                            f"(its height above the floor), got {t.tolist()}")
    if abs(R[0, 2]) > 1e-4 or R[1, 2] < -1e-4:
        raise PoseFileError("'world_from_camera': world +Y must be the camera's viewing direction "
                            f"projected onto the floor (camera z axis in the world {R[:, 2].tolist()})")


def _check_floor_meta(meta: dict, has_world: bool) -> None:
    floor = meta.get("floor")
    if floor is None:
        return
    if not isinstance(floor, dict):
        raise PoseFileError(f"meta['floor'] must be a JSON object, got {type(floor).__name__}")
    status = floor.get("status")
    if status not in FLOOR_STATUSES:
        raise PoseFileError(f"meta['floor']['status'] must be one of {list(FLOOR_STATUSES)}, got {status!r}")
    if has_world != (status == "estimated"):
        raise PoseFileError(f"meta['floor']['status'] is {status!r} but world_from_camera is "
                            f"{'set' if has_world else 'absent'} (set exactly when 'estimated')")


def validate(data: PoseData) -> None:
    """Check every field of ``data`` against the contract; raise PoseFileError on the first problem.

    Dtypes are checked exactly (float32 / bool / int32 where the contract says so); shapes must
    agree with ``valid`` (P, F); joints must be finite where ``valid`` is True; scores must be
    NaN-free and within 0..1. Version 2's optional keys: world_from_camera rigid (see the module
    docstring), contacts (P, F, 2) bool, False where not valid, only with world_from_camera;
    ``meta["floor"]["status"]`` one of FLOOR_STATUSES, "estimated" exactly when there is a world
    frame; filled (P, F) bool, False where not valid. Version-1 data must not carry version-2 keys.
    """
    if not isinstance(data, PoseData):
        raise PoseFileError(f"expected PoseData, got {type(data).__name__}")
    if isinstance(data.format_version, bool) or data.format_version not in READABLE_VERSIONS:
        raise PoseFileError(f"unsupported format_version {data.format_version!r}; "
                            f"this reader knows versions {_versions_text()}")
    if tuple(data.joint_names) != JOINT_NAMES:
        raise PoseFileError(f"joint_names {list(data.joint_names)} differ from the contract's order {list(JOINT_NAMES)}")
    for key in _ARRAY_KEYS:
        if not isinstance(getattr(data, key), (np.ndarray, tuple, list)):
            raise PoseFileError(f"'{key}' must be an array, got {type(getattr(data, key)).__name__}")

    valid = np.asarray(data.valid)
    _check_dtype("valid", valid, "bool")
    if valid.ndim != 2:
        raise PoseFileError(f"'valid' must have shape (P, F), got {valid.shape}")
    P, F = valid.shape
    J = NUM_JOINTS

    joints3d, joints2d, scores = data.joints3d, data.joints2d, data.scores
    for name, arr, shape in (("joints3d", joints3d, (P, F, J, 3)), ("joints2d", joints2d, (P, F, J, 2)),
                             ("scores", scores, (P, F, J))):
        arr = np.asarray(arr)
        _check_dtype(name, arr, "float32")
        _check_shape(name, arr, shape)

    scores = np.asarray(scores)
    if np.isnan(scores).any():
        raise PoseFileError(f"'scores' contains NaN at {np.argwhere(np.isnan(scores))[0].tolist()} "
                            "(scores must be NaN-free; use 0 for unseen joints)")
    if scores.size and (scores.min() < 0.0 or scores.max() > 1.0):
        raise PoseFileError(f"'scores' must lie in 0..1, found range {scores.min():g}..{scores.max():g}")
    for name, arr in (("joints3d", joints3d), ("joints2d", joints2d)):
        bad = ~np.isfinite(np.asarray(arr)[valid])  # (n_valid, J, C)
        if bad.any():
            p, f = np.argwhere(valid)[np.argwhere(bad.any(axis=(1, 2)))[0][0]]
            raise PoseFileError(f"'{name}' has NaN/inf where valid is True (person index {p}, frame {f})")

    person_ids = np.asarray(data.person_ids)
    _check_dtype("person_ids", person_ids, "int32")
    _check_shape("person_ids", person_ids, (P,))
    if len(np.unique(person_ids)) != P:
        raise PoseFileError(f"'person_ids' must be unique, got {person_ids.tolist()}")

    fps = data.fps
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.integer, np.floating)):
        raise PoseFileError(f"'fps' must be a number, got {type(fps).__name__}")
    if not (np.isfinite(fps) and fps > 0):
        raise PoseFileError(f"'fps' must be a finite number > 0, got {fps!r}")

    image_size = np.asarray(data.image_size)
    _check_dtype("image_size", image_size, "int")
    _check_shape("image_size", image_size, (2,))
    if (image_size <= 0).any():
        raise PoseFileError(f"'image_size' must be positive (width, height), got {image_size.tolist()}")

    K = np.asarray(data.camera_K)
    _check_dtype("camera_K", K, "float32")
    _check_shape("camera_K", K, (3, 3))
    if not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], (0, 0, 1)):
        raise PoseFileError(f"'camera_K' is not a pinhole intrinsic matrix "
                            f"(finite, fx, fy > 0, last row 0 0 1): {K.tolist()}")

    if not isinstance(data.meta, dict):
        raise PoseFileError(f"'meta' must be a dict (stored as JSON), got {type(data.meta).__name__}")
    try:
        json.dumps(data.meta)
    except (TypeError, ValueError) as ex:
        raise PoseFileError(f"'meta' is not JSON-serialisable: {ex}") from None

    T, contacts, filled = data.world_from_camera, data.contacts, data.filled
    if data.format_version < 2 and (T is not None or contacts is not None or filled is not None):
        raise PoseFileError("world_from_camera, contacts and filled are version-2 keys; "
                            f"format_version is {data.format_version}")
    if filled is not None:
        if not isinstance(filled, np.ndarray):
            raise PoseFileError(f"'filled' must be an array, got {type(filled).__name__}")
        _check_dtype("filled", filled, "bool")
        _check_shape("filled", filled, (P, F))
        if filled[~valid].any():
            p, f = np.argwhere(filled & ~valid)[0]
            raise PoseFileError(f"'filled' is True where valid is False (person index {p}, frame {f})")
    if T is not None:
        _check_world_from_camera(T)
    if contacts is not None:
        if T is None:
            raise PoseFileError("'contacts' is allowed only together with 'world_from_camera'")
        if not isinstance(contacts, np.ndarray):
            raise PoseFileError(f"'contacts' must be an array, got {type(contacts).__name__}")
        _check_dtype("contacts", contacts, "bool")
        _check_shape("contacts", contacts, (P, F, 2))
        if contacts[~valid].any():
            p, f = np.argwhere(contacts.any(-1) & ~valid)[0]
            raise PoseFileError(f"'contacts' is True where valid is False (person index {p}, frame {f})")
    _check_floor_meta(data.meta, T is not None)


def world_joints(data: PoseData) -> np.ndarray | None:
    """joints3d in the world frame (P, F, J, 3) float32 (Z up, floor z = 0), or None without a
    world frame (version-1 files, or no floor found)."""
    if data.world_from_camera is None:
        return None
    T = np.asarray(data.world_from_camera, np.float64)
    X = np.asarray(data.joints3d, np.float64)
    return (X @ T[:3, :3].T + T[:3, 3]).astype(np.float32)


# --------------------------------------------------------------------------- writing

def to_arrays(data: PoseData) -> dict[str, np.ndarray]:
    """The npz members for ``data`` (not validated): key -> array as stored in the file.
    Always the newest version (FORMAT_VERSION); optional keys only when set."""
    arrays = {
        "format_version": np.array(FORMAT_VERSION, np.int64),
        "joint_names": np.array(JOINT_NAMES),
        "joints3d": np.asarray(data.joints3d),
        "joints2d": np.asarray(data.joints2d),
        "scores": np.asarray(data.scores),
        "valid": np.asarray(data.valid),
        "person_ids": np.asarray(data.person_ids),
        "fps": np.array(float(data.fps), np.float64),
        "image_size": np.asarray(data.image_size, np.int64),
        "camera_K": np.asarray(data.camera_K),
        "meta": np.array(json.dumps(data.meta, sort_keys=True)),
    }
    for key in _OPTIONAL_KEYS_V2:
        if getattr(data, key) is not None:
            arrays[key] = np.asarray(getattr(data, key))
    return arrays


def save(path: str | os.PathLike, data: PoseData) -> None:
    """Validate ``data`` and write it to ``path`` atomically.

    The npz goes to a temporary file in the same folder which then replaces ``path`` in one
    step, so a crash never leaves half a file behind.
    """
    validate(data)
    if data.format_version != FORMAT_VERSION:   # e.g. a version-1 file read: written as the newest
        data = dataclasses.replace(data, format_version=FORMAT_VERSION)
        validate(data)
    path = os.fspath(path)
    arrays = to_arrays(data)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".posefile-", suffix=".tmp", dir=folder)
    except OSError as ex:
        raise PoseFileError(f"{path}: cannot write: {ex}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez_compressed(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as ex:
        raise PoseFileError(f"{path}: cannot write: {ex}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_posefile(path: str | os.PathLike, *, joints3d, joints2d, scores, valid, person_ids, fps,
                   image_size, camera_K, meta: dict[str, Any] | None = None,
                   world_from_camera=None, contacts=None, filled=None) -> PoseData:
    """Convert arrays to the contract's dtypes, validate, and ``save``. Returns the PoseData written.

    joints3d (P, F, J, 3), joints2d (P, F, J, 2), scores (P, F, J), valid (P, F), person_ids (P,),
    image_size (width, height), camera_K (3, 3); optional (version 2) world_from_camera (4, 4),
    contacts (P, F, 2) and filled (P, F). Only dtypes are converted; shapes are not fixed up.
    """
    data = PoseData(
        joints3d=np.asarray(joints3d, np.float32),
        joints2d=np.asarray(joints2d, np.float32),
        scores=np.asarray(scores, np.float32),
        valid=np.asarray(valid, bool),
        person_ids=np.asarray(person_ids, np.int32),
        fps=float(fps),
        image_size=tuple(int(v) for v in np.asarray(image_size).reshape(-1)),
        camera_K=np.asarray(camera_K, np.float32),
        meta=dict(meta or {}),
        world_from_camera=None if world_from_camera is None else np.asarray(world_from_camera, np.float32),
        contacts=None if contacts is None else np.asarray(contacts, bool),
        filled=None if filled is None else np.asarray(filled, bool),
    )
    save(path, data)
    return data


# --------------------------------------------------------------------------- reading

def _scalar(npz: Any, key: str, kind: str) -> Any:
    arr = npz[key]
    if arr.shape != ():
        raise PoseFileError(f"'{key}' must be a scalar, got shape {arr.shape}")
    if arr.dtype.kind not in kind:
        raise PoseFileError(f"'{key}' has dtype {arr.dtype}, expected kind {kind!r}")
    return arr.item()


#: Float members a lenient reader casts to float32 (``load(..., cast_floats=True)``).
_FLOAT32_KEYS = ("joints3d", "joints2d", "scores", "camera_K", "world_from_camera")


def _read(path: str, cast_floats: bool = False) -> PoseData:
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise PoseFileError(f"not an .npz archive (np.load gave {type(loaded).__name__})")
    with loaded as npz:
        keys = set(npz.files)
        if "format_version" not in keys:
            raise PoseFileError("missing key 'format_version' (not a pose file?)")
        version = _scalar(npz, "format_version", "iu")
        if version not in READABLE_VERSIONS:
            raise PoseFileError(f"unsupported format_version {version}; this reader knows versions "
                                f"{_versions_text()} (update the add-on or re-run inference)")
        missing = [k for k in _REQUIRED_KEYS if k not in keys]
        if missing:
            raise PoseFileError(f"missing keys {missing}")
        names = npz["joint_names"]
        if names.dtype.kind != "U" or names.ndim != 1:
            raise PoseFileError(f"'joint_names' must be a 1-D str array, got dtype {names.dtype}, shape {names.shape}")
        meta_text = _scalar(npz, "meta", "U")
        try:
            meta = json.loads(meta_text)
        except json.JSONDecodeError as ex:
            raise PoseFileError(f"'meta' is not valid JSON: {ex}") from None
        if not isinstance(meta, dict):
            raise PoseFileError(f"'meta' must be a JSON object, got {type(meta).__name__}")
        data = PoseData(
            joints3d=npz["joints3d"],
            joints2d=npz["joints2d"],
            scores=npz["scores"],
            valid=npz["valid"],
            person_ids=npz["person_ids"],
            fps=float(_scalar(npz, "fps", "iuf")),
            image_size=npz["image_size"],
            camera_K=npz["camera_K"],
            meta=meta,
            joint_names=tuple(str(n) for n in names),
            format_version=int(version),
        )
        if version >= 2:   # version 1 defined no optional keys: anything else in it is ignored
            for key in _OPTIONAL_KEYS_V2:
                if key in keys:
                    setattr(data, key, npz[key])
    if cast_floats:
        for key in _FLOAT32_KEYS:
            arr = getattr(data, key)
            if isinstance(arr, np.ndarray) and arr.dtype.kind == "f" and arr.dtype != np.float32:
                setattr(data, key, arr.astype(np.float32))
    validate(data)
    data.image_size = (int(data.image_size[0]), int(data.image_size[1]))
    return data


def load(path: str | os.PathLike, cast_floats: bool = False) -> PoseData:
    """Read and validate a pose file. Raises PoseFileError naming the path and the problem.

    cast_floats: accept other float dtypes (float64, float16) for the float32 members and cast
    them (a reader's leniency for files written by other tools; writers keep float32)."""
    path = os.fspath(path)
    try:
        return _read(path, cast_floats)
    except PoseFileError as ex:
        raise PoseFileError(f"{path}: {ex}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as ex:
        raise PoseFileError(f"{path}: truncated or corrupt npz ({type(ex).__name__}: {ex})") from None
    except FileNotFoundError:
        raise PoseFileError(f"{path}: no such file") from None
    except (ValueError, OSError, KeyError) as ex:
        raise PoseFileError(f"{path}: cannot read as a pose file ({type(ex).__name__}: {ex})") from None
