"""Bone maps: which bone of a target rig follows which bone of the mocap skeleton.

Pure Python.  A :class:`BoneMap` maps mocap bone names (skeleton.BONE_NAMES) to
target bone names, plus the target bone that carries the root location.  Built-in
presets cover the Rigify human metarig, a generated Rigify rig (its FK controls,
its DEF- deform bones or its ORG- bones) and Mixamo; :func:`generic_match`
guesses a map from bone names for other rigs.  User presets are JSON files.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

from . import skeleton as sk


class BoneMapError(Exception):
    """A bone map cannot be read, written or used with a given rig."""


@dataclass
class BoneMap:
    """name: label; bones: mocap bone -> target bone (only mapped entries);
    root: target bone that receives the root (pelvis) location, or None."""
    name: str
    bones: dict = field(default_factory=dict)
    root: str | None = None

    def missing(self, target_bones) -> list:
        """Target bone names this map uses that the rig does not have (sorted)."""
        have = set(target_bones)
        used = set(self.bones.values()) | ({self.root} if self.root else set())
        return sorted(used - have)

    def to_dict(self) -> dict:
        return {"format": "video-mocap-bonemap", "version": 1, "name": self.name,
                "root": self.root, "bones": dict(self.bones)}

    @classmethod
    def from_dict(cls, d) -> "BoneMap":
        if not isinstance(d, dict) or d.get("format") != "video-mocap-bonemap":
            raise BoneMapError("not a bone-map preset (missing format 'video-mocap-bonemap')")
        if d.get("version") != 1:
            raise BoneMapError(f"unsupported bone-map version {d.get('version')!r}")
        bones = d.get("bones")
        if not isinstance(bones, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                  for k, v in bones.items()):
            raise BoneMapError("'bones' must map mocap bone names to target bone names")
        unknown = sorted(set(bones) - set(sk.BONE_NAMES))
        if unknown:
            raise BoneMapError(f"unknown mocap bones {unknown}; known: {list(sk.BONE_NAMES)}")
        root = d.get("root")
        if root is not None and not isinstance(root, str):
            raise BoneMapError("'root' must be a bone name or null")
        return cls(name=str(d.get("name", "preset")), bones=dict(bones), root=root)


def _sided(fmt_l: str, fmt_r: str, parts: dict) -> dict:
    out = {}
    for ours, theirs in parts.items():
        out[f"{ours}.L"] = theirs.format(s=fmt_l)
        out[f"{ours}.R"] = theirs.format(s=fmt_r)
    return out


_LIMBS = {"shoulder": "shoulder{s}", "upper_arm": "upper_arm{s}", "forearm": "forearm{s}",
          "thigh": "thigh{s}", "shin": "shin{s}"}


def _rigify_metarig():
    b = {"spine": "spine", "neck": "spine.004", "head": "spine.006"}
    b.update(_sided(".L", ".R", _LIMBS))
    return BoneMap("Rigify metarig", b, root="spine")


def _rigify_controls():
    b = {"spine": "torso", "neck": "neck", "head": "head"}
    b.update(_sided(".L", ".R", {"shoulder": "shoulder{s}", "upper_arm": "upper_arm_fk{s}",
                                  "forearm": "forearm_fk{s}", "thigh": "thigh_fk{s}",
                                  "shin": "shin_fk{s}"}))
    return BoneMap("Rigify rig (FK controls)", b, root="torso")


def _rigify_prefixed(prefix: str, label: str):
    b = {"spine": prefix + "spine", "neck": prefix + "spine.004", "head": prefix + "spine.006"}
    b.update({k: prefix + v for k, v in _sided(".L", ".R", _LIMBS).items()})
    return BoneMap(label, b, root=prefix + "spine")


def _mixamo(prefix: str = "mixamorig:"):
    p = prefix
    b = {"spine": p + "Hips", "neck": p + "Neck", "head": p + "Head"}
    b.update(_sided("Left", "Right", {"shoulder": p + "{s}Shoulder", "upper_arm": p + "{s}Arm",
                                      "forearm": p + "{s}ForeArm", "thigh": p + "{s}UpLeg",
                                      "shin": p + "{s}Leg"}))
    return BoneMap("Mixamo" if p == "mixamorig:" else f"Mixamo (prefix {p!r})", b, root=p + "Hips")


def mixamo_prefix(target_bones) -> str | None:
    """The prefix of a Mixamo rig's bone names ("mixamorig:", "mixamorig1:", "Armature_", ""...)
    when some prefix + "Hips" and the same prefix + "LeftUpLeg" are there, else None."""
    names = set(target_bones)
    for n in sorted(names, key=len):
        if n.endswith("Hips") and n[:-4] + "LeftUpLeg" in names and n[:-4] + "RightArm" in names:
            return n[:-4]
    return None


def _ue_mannequin():
    """Unreal Engine mannequin (UE4 / UE5 skeleton names)."""
    b = {"spine": "pelvis", "neck": "neck_01", "head": "head"}
    b.update(_sided("l", "r", {"shoulder": "clavicle_{s}", "upper_arm": "upperarm_{s}",
                               "forearm": "lowerarm_{s}", "thigh": "thigh_{s}", "shin": "calf_{s}"}))
    return BoneMap("Unreal Engine mannequin", b, root="pelvis")


def _vrm():
    """VRM humanoid bone names used as the bones' names (VRM 0.x / 1.0)."""
    b = {"spine": "hips", "neck": "neck", "head": "head"}
    b.update(_sided("left", "right", {"shoulder": "{s}Shoulder", "upper_arm": "{s}UpperArm",
                                      "forearm": "{s}LowerArm", "thigh": "{s}UpperLeg",
                                      "shin": "{s}LowerLeg"}))
    return BoneMap("VRM humanoid", b, root="hips")


def _vroid():
    """VRoid Studio models (VRM files with J_Bip_* bones)."""
    b = {"spine": "J_Bip_C_Hips", "neck": "J_Bip_C_Neck", "head": "J_Bip_C_Head"}
    b.update(_sided("L", "R", {"shoulder": "J_Bip_{s}_Shoulder", "upper_arm": "J_Bip_{s}_UpperArm",
                               "forearm": "J_Bip_{s}_LowerArm", "thigh": "J_Bip_{s}_UpperLeg",
                               "shin": "J_Bip_{s}_LowerLeg"}))
    return BoneMap("VRoid (VRM)", b, root="J_Bip_C_Hips")


#: id -> BoneMap factory; ids are stable (used in UI enums and batch options).
PRESETS = {
    "RIGIFY_METARIG": _rigify_metarig,
    "RIGIFY_CONTROLS": _rigify_controls,
    "RIGIFY_DEF": lambda: _rigify_prefixed("DEF-", "Rigify rig (DEF- bones)"),
    "RIGIFY_ORG": lambda: _rigify_prefixed("ORG-", "Rigify rig (ORG- bones)"),
    "MIXAMO": _mixamo,
    "UE_MANNEQUIN": _ue_mannequin,
    "VRM": _vrm,
    "VROID": _vroid,
}


def preset(preset_id: str) -> BoneMap:
    try:
        return PRESETS[preset_id]()
    except KeyError:
        raise BoneMapError(f"unknown preset {preset_id!r}; known: {sorted(PRESETS)}") from None


def identity_map() -> BoneMap:
    """Map onto a rig that uses our own bone names (e.g. another mocap armature)."""
    return BoneMap("Video mocap skeleton", {n: n for n in sk.BONE_NAMES}, root=sk.ROOT_BONE)


# --------------------------------------------------------------------------- name matching
_SYNONYMS = {
    # mocap bone kind -> target name cores, best first
    "spine": ("hips", "pelvis", "hip", "root", "spine"),
    "neck": ("neck",),
    "head": ("head",),
    "shoulder": ("shoulder", "clavicle", "collar", "collarbone"),
    "upper_arm": ("upperarm", "arm", "uparm", "humerus"),
    "forearm": ("forearm", "lowerarm", "loarm", "elbow", "radius"),
    "thigh": ("thigh", "upleg", "upperleg", "femur"),
    "shin": ("shin", "calf", "leg", "lowerleg", "loleg", "knee", "tibia"),
}
_PREFIX = re.compile(r"^(?:.*:|def-|org-|mch-|bip0*1[ _]|b_|bn_|jnt_|j_)", re.IGNORECASE)
_SIDE_PATTERNS = (
    (re.compile(r"^left"), "L"), (re.compile(r"^right"), "R"),
    (re.compile(r"left$"), "L"), (re.compile(r"right$"), "R"),
    (re.compile(r"^l[._ -]"), "L"), (re.compile(r"^r[._ -]"), "R"),
    (re.compile(r"[._ -]l$"), "L"), (re.compile(r"[._ -]r$"), "R"),
)


def split_name(name: str):
    """Target bone name -> (core, side, rank).

    core: lowercase letters only without prefix/side/numbering ("mixamorig:LeftUpLeg" ->
    "upleg"); side: "L", "R" or None; rank: 0 for an unnumbered bone, else the trailing
    number (so "DEF-thigh.L" beats "DEF-thigh.L.001", "spine" beats "spine.001").
    """
    n = name.strip()
    while True:
        m = _PREFIX.match(n)
        if not m or not m.group(0):
            break
        n = n[m.end():]
    n = n.lower()
    rank = 0
    m = re.search(r"[._ -]?(\d+)$", n)
    if m:
        rank = int(m.group(1)) + 1
        n = n[:m.start()]
    side = None
    for pat, s in _SIDE_PATTERNS:
        m = pat.search(n)
        if m:
            side = s
            n = n[:m.start()] + n[m.end():]
            break
    if rank == 0:   # numbering after the side, as in "thigh.L.001"
        pass
    core = re.sub(r"[^a-z]", "", n)
    return core, side, rank


def _split_full(name: str):
    # "thigh.L.001": numbering after the side; strip it first, then re-split
    m = re.search(r"\.(\d{3})$", name)
    if m:
        core, side, _ = split_name(name[:m.start()])
        return core, side, int(m.group(1)) + 1
    return split_name(name)


def generic_match(target_bones) -> BoneMap:
    """Guess a map from target bone names (synonyms + side tokens).

    Unmatched mocap bones are left out; check ``BoneMap.bones`` for coverage.
    """
    info = [(t, *_split_full(t)) for t in target_bones]
    bones = {}
    taken = set()
    for ours in sk.BONE_NAMES:
        kind, _, side = ours.partition(".")
        side = side or None
        if kind not in _SYNONYMS:
            continue
        best = None
        for pri, syn in enumerate(_SYNONYMS[kind]):
            for t, core, tside, rank in info:
                if core != syn or tside != side or t in taken:
                    continue
                key = (pri, rank, len(t))
                if best is None or key < best[0]:
                    best = (key, t)
            if best is not None:
                break
        if best is not None:
            bones[ours] = best[1]
            taken.add(best[1])
    return BoneMap("Matched by name", bones, root=bones.get(sk.ROOT_BONE))


def best_map(target_bones) -> BoneMap:
    """The preset that covers the rig completely (Mixamo with whatever prefix its names
    have), else the name-matched map."""
    names = set(target_bones)
    if set(sk.BONE_NAMES) <= names:
        return identity_map()
    for pid in PRESETS:
        m = preset(pid)
        if not m.missing(names):
            return m
    prefix = mixamo_prefix(names)
    if prefix is not None and not _mixamo(prefix).missing(names):
        return _mixamo(prefix)
    return generic_match(target_bones)


def describe(bone_map: BoneMap) -> str:
    """One line for the user: which map, how many mocap bones it matched, which are left out."""
    # the mocap hip bones (pelvis -> hip joint) have no counterpart in rigs: not counted
    wanted = [n for n in sk.BONE_NAMES if n.partition(".")[0] in _SYNONYMS]
    left = [n for n in wanted if n not in bone_map.bones]
    got = sum(n in bone_map.bones for n in wanted)
    line = f"bone map '{bone_map.name}': {got} of {len(wanted)} mocap bones matched"
    return line + (f" (not matched: {', '.join(left)})" if left else "")


# --------------------------------------------------------------------------- JSON presets
def save_json(path: str, bone_map: BoneMap) -> None:
    try:
        with open(path, "w", encoding="utf-8") as fh:
            json.dump(bone_map.to_dict(), fh, indent=2, sort_keys=True)
    except OSError as ex:
        raise BoneMapError(f"{path}: cannot write: {ex}") from None


def load_json(path: str) -> BoneMap:
    try:
        with open(path, encoding="utf-8") as fh:
            d = json.load(fh)
    except FileNotFoundError:
        raise BoneMapError(f"{path}: no such file") from None
    except (OSError, ValueError) as ex:
        raise BoneMapError(f"{path}: not a JSON bone map ({ex})") from None
    try:
        return BoneMap.from_dict(d)
    except BoneMapError as ex:
        raise BoneMapError(f"{path}: {ex}") from None


def list_user_presets(folder: str) -> list:
    """Sorted (name, path) of *.json presets in ``folder`` (missing folder: empty list)."""
    if not folder or not os.path.isdir(folder):
        return []
    out = []
    for fn in sorted(os.listdir(folder)):
        if fn.lower().endswith(".json"):
            out.append((os.path.splitext(fn)[0], os.path.join(folder, fn)))
    return out
