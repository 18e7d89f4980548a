"""Mocap clips -> the project's 16 joints, in metres, at ~30 fps, with a held-out split.

Reads the BVH archives in ``shared/data/mocap`` (see its README, section 2), runs forward
kinematics, maps each skeleton (cmu31, daz43, bandai22) onto the MPII-ordered 16 joints,
converts units to metres and subsamples to about 30 fps.  The result is cached as an npz
(float32 root trajectory + float16 root-relative joints) so training epochs are cheap.

World frame of the cache: the files' own frame, Y up, metres (the zero pose faces +Z with the
person's left at +X).  ``cameras.py`` turns it into OpenCV camera coordinates.
"""
from __future__ import annotations

import csv
import io
import os
import tarfile
from dataclasses import dataclass

import numpy as np

from data.paths import data_path
from data.bvh import BVH, forward_kinematics, parse_bvh
from posefile.skeleton import FLIP_PERM, JOINT_NAMES, PELVIS
from posefile.skeleton import NUM_JOINTS as J


# metres per file unit.  cmu31: 1 unit = 1/0.45 inch (CMU ASF convention).
UNITS = {"cmu31": 0.0254 / 0.45, "daz43": 0.01, "bandai22": 0.01}
HEAD_TOP_M = 0.18  # head_top approximation for skeletons without a head-top end site

# The pelvis is the midpoint of the two hip joints in every skeleton, as in the 2D data (LSP has
# no pelvis; the project derives it as mid-hips) and in the engine. The files' own root joints
# disagree: cmu31's Hips sits 9.6 cm above mid-hips, daz43's hip 2.7 cm below, bandai22's Hips
# 2.2 cm above (medians). Cache version 1 used them, so a lifter trained on it saw a pelvis the
# engine never gives it (docs/lifter.md, "Pelvis").
# Entry forms: "Name" (joint origin), ("mid", a, b), ("end", name) = End Site of name,
# ("up", name, axis) = name + R_name[:, axis] * HEAD_TOP_M.
MAPPING = {
    "cmu31": ["RightAnkle", "RightKnee", "RightHip", "LeftHip", "LeftKnee", "LeftAnkle",
              ("mid", "RightHip", "LeftHip"),
              ("mid", "LeftShoulder", "RightShoulder"), "Head", ("end", "Head"), "RightWrist",
              "RightElbow", "RightShoulder", "LeftShoulder", "LeftElbow", "LeftWrist"],
    "daz43": ["rFoot", "rShin", "rThigh", "lThigh", "lShin", "lFoot", ("mid", "rThigh", "lThigh"),
              ("mid", "lShldr", "rShldr"), "head", ("up", "head", 1), "rHand", "rForeArm",
              "rShldr", "lShldr", "lForeArm", "lHand"],
    "bandai22": ["Foot_R", "LowerLeg_R", "UpperLeg_R", "UpperLeg_L", "LowerLeg_L", "Foot_L",
                 ("mid", "UpperLeg_R", "UpperLeg_L"),
                 ("mid", "UpperArm_L", "UpperArm_R"), "Head", ("up", "Head", 0), "Hand_R",
                 "LowerArm_R", "UpperArm_R", "UpperArm_L", "LowerArm_L", "Hand_L"],
}

# Held-out clips (whole performances): see docs/lifter.md.
TEST_CMU_WALK_SUBJECTS = {"02", "16", "35", "113", "143"}
TEST_ACRNN = {"indian/15", "martial/04", "martial/10", "salsa/27", "salsa/29"}
TEST_BANDAI_STYLES = {("1", "proud"), ("1", "tired"), ("2", "exhausted")}

TARGET_FPS = 30.0
CACHE_VERSION = 2  # 2: pelvis = mid-hips (1: each file's root joint)


class MocapError(RuntimeError):
    """Raised when the mocap archives cannot be read or mapped."""


def default_data_dir() -> str:
    return data_path("mocap")


def map_to_project(bvh: BVH, skeleton: str) -> np.ndarray:
    """FK + mapping onto the 16 project joints. Returns (F, 16, 3) metres, world Y-up."""
    if skeleton not in MAPPING:
        raise MocapError(f"unknown skeleton {skeleton!r}")
    P, R = forward_kinematics(bvh)
    unit = UNITS[skeleton]
    out = np.empty((P.shape[0], J, 3))
    for k, entry in enumerate(MAPPING[skeleton]):
        if isinstance(entry, str):
            out[:, k] = P[:, bvh.index(entry)] * unit
        elif entry[0] == "mid":
            out[:, k] = 0.5 * (P[:, bvh.index(entry[1])] + P[:, bvh.index(entry[2])]) * unit
        elif entry[0] == "end":
            out[:, k] = P[:, bvh.index(entry[1] + "_End")] * unit
        elif entry[0] == "up":
            h = bvh.index(entry[1])
            out[:, k] = P[:, h] * unit + R[:, h, :, entry[2]] * HEAD_TOP_M
        else:
            raise MocapError(f"bad mapping entry {entry!r}")
    return out


def clip_split(archive: str, path: str) -> str:
    """'test' for held-out clips, else 'train'. archive without extension, path inside it."""
    base = os.path.basename(path)
    if archive == "cmu_walk_cs229":
        return "test" if base.split("_")[0] in TEST_CMU_WALK_SUBJECTS else "train"
    if archive == "cmu_dance_martial_acrnn":
        key = "/".join(path.split("/")[-2:])[:-4]
        return "test" if key in TEST_ACRNN else "train"
    if archive.startswith("bandai"):
        parts = base.split("_")  # dataset-1_walk_normal_001.bvh
        ds = parts[0].split("-")[1]
        return "test" if (ds, parts[2]) in TEST_BANDAI_STYLES else "train"
    raise MocapError(f"unknown archive {archive!r}")


def resample_step(fps: float) -> int:
    return max(1, int(round(fps / TARGET_FPS)))


def prepare_clip(bvh: BVH, skeleton: str) -> tuple[np.ndarray, float]:
    """Mapped joints at ~30 fps: (F', 16, 3) metres and the resulting fps."""
    pos = map_to_project(bvh, skeleton)
    if skeleton == "daz43":
        pos = pos[1:]  # frame 0 is a T-pose
    step = resample_step(bvh.fps)
    return pos[::step], bvh.fps / step


@dataclass
class MocapSet:
    """All clips concatenated.

    root: (N, 3) float32 pelvis world position, metres.
    rel: (N, 16, 3) float16 joints minus pelvis, metres.
    starts, lengths: (C,) int clip boundaries; names, skeletons, splits: (C,) str; fps: (C,) float.
    """

    root: np.ndarray
    rel: np.ndarray
    starts: np.ndarray
    lengths: np.ndarray
    names: np.ndarray
    skeletons: np.ndarray
    splits: np.ndarray
    fps: np.ndarray

    def clip(self, c: int) -> np.ndarray:
        """World joints (F, 16, 3) float32 of clip c."""
        s, n = self.starts[c], self.lengths[c]
        return self.rel[s:s + n].astype(np.float32) + self.root[s:s + n, None, :]

    def indices(self, split: str) -> np.ndarray:
        return np.where(self.splits == split)[0]


def build(data_dir: str | None = None, log=print) -> MocapSet:
    """Parse every BVH listed in manifest.csv (slow: about a minute per archive)."""
    data_dir = data_dir or default_data_dir()
    man = os.path.join(data_dir, "manifest.csv")
    if not os.path.exists(man):
        raise MocapError(f"no manifest.csv in {data_dir}")
    with open(man, newline="") as f:
        rows = list(csv.DictReader(f))
    by_arch: dict[str, dict[str, str]] = {}
    for r in rows:
        by_arch.setdefault(r["archive"], {})[r["path_in_archive"]] = r["skeleton"]
    roots, rels, names, skels, splits, fpss, lengths = [], [], [], [], [], [], []
    for arch, files in by_arch.items():
        arch_name = arch.replace(".tar.xz", "")
        with tarfile.open(os.path.join(data_dir, arch)) as tf:
            for m in tf:  # sequential pass: xz archives are slow to seek
                if m.name not in files:
                    continue
                text = tf.extractfile(m).read().decode("ascii", errors="replace")
                pos, fps = prepare_clip(parse_bvh(text), files[m.name])
                if not np.isfinite(pos).all():
                    raise MocapError(f"non-finite joints in {m.name}")
                roots.append(pos[:, PELVIS].astype(np.float32))
                rels.append((pos - pos[:, PELVIS:PELVIS + 1]).astype(np.float16))
                names.append(m.name)
                skels.append(files[m.name])
                splits.append(clip_split(arch_name, m.name))
                fpss.append(fps)
                lengths.append(len(pos))
        log(f"{arch}: {len(files)} files")
    lengths = np.asarray(lengths, np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    return MocapSet(np.concatenate(roots), np.concatenate(rels), starts, lengths, np.asarray(names),
                    np.asarray(skels), np.asarray(splits), np.asarray(fpss, np.float64))


def default_cache_path() -> str:
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(here, "..", ".cache", f"mocap16_v{CACHE_VERSION}.npz")


def load(cache: str | None = None, data_dir: str | None = None, log=print) -> MocapSet:
    """Load the cached set, building it first if the cache is missing."""
    cache = cache or default_cache_path()
    if not os.path.exists(cache):
        ms = build(data_dir, log=log)
        os.makedirs(os.path.dirname(cache), exist_ok=True)
        buf = io.BytesIO()
        np.savez_compressed(buf, **ms.__dict__)
        tmp = cache + ".tmp"
        with open(tmp, "wb") as f:
            f.write(buf.getvalue())
        os.replace(tmp, cache)
        return ms
    d = np.load(cache)
    return MocapSet(**{k: d[k] for k in MocapSet.__dataclass_fields__})
