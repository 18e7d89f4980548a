"""Label audit of LSP extended: which annotations have their left and right mirrored.

LSPET was labelled by crowd workers (Johnson and Everingham, CVPR 2011, "from inaccurate
annotation"), and some of them marked left and right from the observer's side. A network that
learned from mostly correct labels disagrees with such a label in a telling way: its joints fit
the label with left and right swapped far better than the label itself.

Rule (per image, per limb group: legs = hips, knees, ankles; arms = shoulders, elbows, wrists),
with at least 4 of the group's 6 joints labelled visible on both sides: the group is *mirrored*
when the swapped label puts at least 2 more of the network's joints within 0.2 torso than the
label does, and at least 2/3 of them.

What the rule finds was checked by eye on the held-out split (the 31 images with legs and arms
both mirrored, labels drawn on the photo; verdicts in the audit file's ``reviewed``): of the 11
whose labelled person is upright (head top above the pelvis), 6 labels were observer-centric, 2
were right and 3 could not be told; where the person is upside down or lying, mostly the network
is the one confused (facing cannot be told, or the label was right). So an upright
image whose legs and arms are both mirrored is fixed (all left/right labels swapped); any other
mirrored group (one group only, or a person not upright) is dropped from training (marked not
visible): the label or the network is wrong and the audit cannot say which. The audit file
lists both (``evaluation.label_audit`` writes it).

Pure numpy. Letters: N images, J joints.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from posefile.skeleton import FLIP_PERM, JOINT_INDEX

AUDIT_FILE = Path(__file__).resolve().parent / "lsp_label_audit.json"

GROUPS = {
    "legs": tuple(JOINT_INDEX[f"{s}_{p}"] for s in "rl" for p in ("hip", "knee", "ankle")),
    "arms": tuple(JOINT_INDEX[f"{s}_{p}"] for s in "rl" for p in ("shoulder", "elbow", "wrist")),
}
MIN_VISIBLE = 4      # of a group's 6 joints
MIN_GAIN = 2         # more network joints fitted by the swapped label than by the label
MIN_SHARE = 2 / 3    # of the group's visible joints fitted by the swapped label
ALPHA = 0.2          # torso fraction that counts as a fit


def mirrored_groups(pred: np.ndarray, joints: np.ndarray, visible: np.ndarray,
                    torso: np.ndarray) -> dict[str, np.ndarray]:
    """pred, joints (N, J, 2) px, visible (N, J), torso (N,) px (NaN: unusable) ->
    {group: (N,) bool mirrored}."""
    swapped, swapped_vis = joints[:, FLIP_PERM], visible[:, FLIP_PERM]
    t = np.where(np.isfinite(torso), torso, np.inf)[:, None]
    fit = (np.linalg.norm(pred - joints, axis=-1) <= ALPHA * t) & visible
    fit_sw = (np.linalg.norm(pred - swapped, axis=-1) <= ALPHA * t) & swapped_vis
    out = {}
    for name, js in GROUPS.items():
        js = list(js)
        n_vis = (visible[:, js] & swapped_vis[:, js]).sum(1)
        a, b = fit[:, js].sum(1), fit_sw[:, js].sum(1)
        out[name] = np.isfinite(torso) & (n_vis >= MIN_VISIBLE) & (b >= a + MIN_GAIN) & (b >= MIN_SHARE * n_vis)
    return out


def upright(joints: np.ndarray, visible: np.ndarray) -> np.ndarray:
    """(N, J, 2), (N, J) -> (N,) head top labelled above the pelvis (False when either is unseen)."""
    h, p = JOINT_INDEX["head_top"], JOINT_INDEX["pelvis"]
    return visible[:, h] & visible[:, p] & (joints[:, h, 1] < joints[:, p, 1])


def load_audit(path: str | os.PathLike = AUDIT_FILE) -> dict:
    """The audit file: {"mirrored": [image names], "legs": [...], "arms": [...], ...}."""
    return json.loads(Path(path).read_text())


def apply_audit(names: np.ndarray, joints: np.ndarray, visible: np.ndarray, audit: dict,
                drop_single: bool = True) -> tuple[np.ndarray, np.ndarray, dict]:
    """Audited labels: rows named in audit["mirrored"] get left and right swapped; with drop_single,
    the joints of a group named in audit["legs"] / audit["arms"] (and not fully mirrored) are
    marked not visible. names (N,), joints (N, J, 2), visible (N, J) -> new joints, visible and
    counts {"swapped": n, "dropped_groups": n}."""
    joints, visible = joints.copy(), visible.copy()
    where = {str(n): i for i, n in enumerate(names)}
    mirrored = [where[n] for n in audit.get("mirrored", []) if n in where]
    joints[mirrored] = joints[mirrored][:, FLIP_PERM]
    visible[mirrored] = visible[mirrored][:, FLIP_PERM]
    dropped = 0
    if drop_single:
        full = set(mirrored)
        for group, js in GROUPS.items():
            rows = [where[n] for n in audit.get(group, []) if n in where and where[n] not in full]
            visible[np.ix_(rows, list(js))] = False
            dropped += len(rows)
    return joints, visible, {"swapped": len(mirrored), "dropped_groups": dropped}
