"""The pose data of each import ("take"), kept in the .blend so track edits survive save and
reload (thin bpy glue).

``scene["mocap_takes"][take]`` holds the pose file's arrays as imported, as an uncompressed
npz (bytes ID property: saving, undo and reload carry it like any other scene data), the
import options (JSON) and the edits applied since (JSON, the batch ``--edits`` format): the
current pose data is the original with the edits applied, so an edit can also be taken back
without Blender's undo. Armatures name their take in ``obj["mocap_take"]``.
"""
from __future__ import annotations

import dataclasses
import io
import json

import numpy as np

from ..core import track_edit
from ..core.contract import posefile
from ..errors import MocapError

KEY = "mocap_takes"


def to_bytes(data) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **posefile.to_arrays(data))     # uncompressed: fast; Blender can compress .blend files
    return buf.getvalue()


def from_bytes(blob: bytes):
    """PoseData from ``to_bytes`` output (validated). Raises MocapError."""
    try:
        with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as z:
            keys = set(z.files)
            data = posefile.PoseData(
                joints3d=z["joints3d"], joints2d=z["joints2d"], scores=z["scores"], valid=z["valid"],
                person_ids=z["person_ids"], fps=float(z["fps"]),
                image_size=tuple(int(v) for v in z["image_size"]), camera_K=z["camera_K"],
                meta=json.loads(str(z["meta"])), joint_names=tuple(str(n) for n in z["joint_names"]),
                world_from_camera=z["world_from_camera"] if "world_from_camera" in keys else None,
                contacts=z["contacts"] if "contacts" in keys else None,
                filled=z["filled"] if "filled" in keys else None)
        posefile.validate(data)
    except (OSError, ValueError, KeyError, posefile.PoseFileError) as ex:
        raise MocapError(f"the pose data stored in this .blend is unreadable: {ex}") from ex
    return data


def store(scene, take: str, data, options, edits: list | None = None, current=None) -> None:
    """Keep ``data`` (PoseData as read) and the import ``options`` (a dataclass) under ``take``;
    ``current``: ``data`` with ``edits`` applied (default ``data``)."""
    takes = scene.get(KEY)
    if takes is None:
        scene[KEY] = {}
        takes = scene[KEY]
    opts = dataclasses.asdict(options) if dataclasses.is_dataclass(options) else dict(options)
    takes[take] = {"npz": to_bytes(data), "options": json.dumps(opts),
                   "edits": json.dumps(list(edits or [])),
                   # what the people panel lists, without decoding the arrays on every redraw
                   "people": json.dumps(track_edit.people_summary(data if current is None else current))}


def names(scene) -> list:
    takes = scene.get(KEY)
    return list(takes.keys()) if takes is not None else []


def fetch(scene, take: str):
    """(PoseData as imported, options dict, edits list) of ``take``. Raises MocapError."""
    takes = scene.get(KEY)
    if takes is None or take not in takes:
        raise MocapError(f"no pose data stored for {take!r} in this scene (import the pose file again)")
    entry = takes[take]
    return from_bytes(entry["npz"]), json.loads(entry["options"]), json.loads(entry["edits"])


def set_markers(scene, take: str, names: list) -> None:
    """The timeline markers the take's import made (re-solving removes exactly these)."""
    scene[KEY][take]["markers"] = json.dumps(list(names))


def markers(scene, take: str):
    """Marker names recorded for ``take``, None when none were recorded."""
    takes = scene.get(KEY)
    if takes is None or take not in takes or "markers" not in takes[take]:
        return None
    return json.loads(takes[take]["markers"])


def update(scene, take: str, edits: list, data) -> None:
    """New edit list of ``take``; ``data`` is its pose data with them applied (for the list)."""
    entry = scene[KEY][take]
    entry["edits"] = json.dumps(list(edits))
    entry["people"] = json.dumps(track_edit.people_summary(data))


def people(scene, take: str) -> list:
    """[(id, first scene frame, last scene frame, mean confidence)] of ``take``."""
    takes = scene.get(KEY)
    if takes is None or take not in takes:
        return []
    off = int(json.loads(takes[take]["options"]).get("frame_offset", 1))
    return [(pid, a + off, b + off, c) for pid, a, b, c in json.loads(takes[take]["people"])]


def edits(scene, take: str) -> list:
    takes = scene.get(KEY)
    return json.loads(takes[take]["edits"]) if takes is not None and take in takes else []


def remove(scene, take: str) -> None:
    takes = scene.get(KEY)
    if takes is not None and take in takes:
        del takes[take]
