"""Track edits on pose data (pure numpy): delete a person, merge two people, split a person at
a frame, swap left and right over a frame range.

An edit is a dict (the JSON edit-list format, ``docs/addon.md``); frames are pose-file frame
indices (0 = the file's first frame)::

    {"op": "delete", "person": 7}
    {"op": "merge", "person": 1, "with": 4}        # 4's frames join 1 (1 wins where both are seen)
    {"op": "split", "person": 1, "frame": 120}     # frames >= 120 become a new person (max id + 1)
    {"op": "swap_sides", "person": 1, "start": 30, "end": 45}   # inclusive

An edit list is a JSON list of edits, or an object with the list under "edits". Each edit
returns a new PoseData (the input is not changed) and a one-line description.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from .contract import posefile

OPS = ("delete", "merge", "split", "swap_sides")


class EditError(ValueError):
    """An edit that cannot apply to this pose data (unknown person, empty result, ...)."""


def _index(data, pid) -> int:
    try:
        pid = int(pid)
    except (TypeError, ValueError):
        raise EditError(f"person must be an id, got {pid!r}") from None
    hits = np.flatnonzero(np.asarray(data.person_ids) == pid)
    if hits.size == 0:
        raise EditError(f"no person {pid} (ids {np.asarray(data.person_ids).tolist()})")
    return int(hits[0])


def _frame(data, value, what: str) -> int:
    try:
        f = int(value)
    except (TypeError, ValueError):
        raise EditError(f"{what} must be a frame number, got {value!r}") from None
    if not 0 <= f < data.num_frames:
        raise EditError(f"{what} {f} outside the pose file's frames 0..{data.num_frames - 1}")
    return f


def _rows(data, keep) -> dict:
    """Per-person arrays restricted to rows ``keep`` (index list)."""
    out = {k: np.asarray(getattr(data, k))[keep] for k in ("joints3d", "joints2d", "scores", "valid",
                                                          "person_ids")}
    for k in ("contacts", "filled"):     # optional keys: None stays None
        v = getattr(data, k, None)
        out[k] = None if v is None else np.asarray(v)[keep]
    return out


def _invalidate(rows: dict, p: int, mask) -> None:
    """Person row p absent where mask: the contract's "undefined" joints, zero scores."""
    rows["valid"][p, mask] = False
    rows["joints3d"][p, mask] = np.nan
    rows["joints2d"][p, mask] = np.nan
    rows["scores"][p, mask] = 0.0
    for k in ("contacts", "filled"):
        if rows[k] is not None:
            rows[k][p, mask] = False


def _replace(data, rows: dict):
    out = dataclasses.replace(data, **rows, meta=dict(data.meta))
    posefile.validate(out)
    return out


def delete(data, person):
    p = _index(data, person)
    keep = [i for i in range(data.num_people) if i != p]
    return _replace(data, _rows(data, keep)), f"deleted person {int(person)}"


def merge(data, person, other):
    """``other``'s frames join ``person`` where ``person`` is not seen; ``other`` is removed."""
    a, b = _index(data, person), _index(data, other)
    if a == b:
        raise EditError(f"cannot merge person {int(person)} with itself")
    rows = _rows(data, list(range(data.num_people)))
    take = rows["valid"][b] & ~rows["valid"][a]
    both = int((rows["valid"][b] & rows["valid"][a]).sum())
    for k in ("joints3d", "joints2d", "scores", "contacts", "filled"):
        if rows[k] is not None:
            rows[k][a, take] = rows[k][b, take]
    rows["valid"][a] |= take
    keep = [i for i in range(data.num_people) if i != b]
    rows = {k: (None if v is None else v[keep]) for k, v in rows.items()}
    note = f"merged person {int(other)} into {int(person)} ({int(take.sum())} frames)"
    if both:
        note += f"; {both} frames where both were seen keep person {int(person)}'s pose"
    return _replace(data, rows), note


def split(data, person, frame, new_id=None):
    """Frames >= ``frame`` of ``person`` become a new person (``new_id``, default max id + 1)."""
    p = _index(data, person)
    f = _frame(data, frame, "split frame")
    valid = np.asarray(data.valid[p])
    if not valid[:f].any() or not valid[f:].any():
        raise EditError(f"person {int(person)} is not seen on both sides of frame {f}")
    ids = np.asarray(data.person_ids)
    nid = int(ids.max()) + 1 if new_id is None else int(new_id)
    if nid in ids.tolist():
        raise EditError(f"person id {nid} is taken")
    rows = _rows(data, list(range(data.num_people)) + [p])
    rows["person_ids"][-1] = nid
    late = np.zeros(data.num_frames, bool)
    late[f:] = True
    _invalidate(rows, p, late)
    _invalidate(rows, data.num_people, ~late)
    return _replace(data, rows), f"split person {int(person)} at frame {f}: frames {f}.. are person {nid}"


def swap_sides(data, person, start, end):
    """Left and right joints of ``person`` exchanged on frames start..end (inclusive)."""
    p = _index(data, person)
    a, b = _frame(data, start, "start"), _frame(data, end, "end")
    if b < a:
        raise EditError(f"end {b} before start {a}")
    rows = _rows(data, list(range(data.num_people)))
    perm = posefile.FLIP_PERM
    sl = (p, slice(a, b + 1))
    rows["joints3d"][sl] = rows["joints3d"][sl][:, perm]
    rows["joints2d"][sl] = rows["joints2d"][sl][:, perm]
    rows["scores"][sl] = rows["scores"][sl][:, perm]
    if rows["contacts"] is not None:
        rows["contacts"][sl] = rows["contacts"][sl][:, ::-1]
    return _replace(data, rows), f"swapped left and right of person {int(person)} on frames {a}..{b}"


def apply(data, edit: dict):
    """One edit dict -> (new PoseData, description). Raises EditError."""
    if not isinstance(edit, dict) or edit.get("op") not in OPS:
        raise EditError(f"an edit must be an object with 'op' one of {list(OPS)}, got {edit!r}")
    op = edit["op"]
    need = {"delete": ("person",), "merge": ("person", "with"), "split": ("person", "frame"),
            "swap_sides": ("person", "start", "end")}[op]
    missing = [k for k in need if k not in edit]
    if missing:
        raise EditError(f"{op}: missing {missing}")
    if op == "delete":
        return delete(data, edit["person"])
    if op == "merge":
        return merge(data, edit["person"], edit["with"])
    if op == "split":
        return split(data, edit["person"], edit["frame"], edit.get("new_id"))
    return swap_sides(data, edit["person"], edit["start"], edit["end"])


def apply_all(data, edits: list):
    """Apply edits in order -> (PoseData, [descriptions]). The error names the failing edit."""
    notes = []
    for i, e in enumerate(edits):
        try:
            data, note = apply(data, e)
        except EditError as ex:
            raise EditError(f"edit {i + 1} ({e.get('op') if isinstance(e, dict) else e!r}): {ex}") from None
        notes.append(note)
    return data, notes


def parse_edits(text: str) -> list:
    """An edit list from JSON text (a list, or an object with "edits"). Raises EditError."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as ex:
        raise EditError(f"edit list is not valid JSON: {ex}") from None
    if isinstance(doc, dict):
        doc = doc.get("edits")
    if not isinstance(doc, list):
        raise EditError("an edit list is a JSON list of edits, or an object with the list under 'edits'")
    for i, e in enumerate(doc):
        if not isinstance(e, dict) or e.get("op") not in OPS:
            raise EditError(f"edit {i + 1}: must be an object with 'op' one of {list(OPS)}")
    return doc


def load_edits(path: str) -> list:
    try:
        with open(path, encoding="utf-8") as fh:
            return parse_edits(fh.read())
    except OSError as ex:
        raise EditError(f"cannot read edit list {path}: {ex}") from None


def people_summary(data) -> list:
    """[(id, first frame, last frame, mean confidence)] of people seen at least once."""
    out = []
    for p in range(data.num_people):
        v = np.asarray(data.valid[p], bool)
        if not v.any():
            continue
        idx = np.flatnonzero(v)
        out.append((int(data.person_ids[p]), int(idx[0]), int(idx[-1]),
                    float(np.asarray(data.scores[p])[v].mean())))
    return out
