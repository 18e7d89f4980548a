"""Floor and foot locking in the add-on, measured under real bpy on synthetic walkers.

    .venv/bin/python benchmarks/bench_floor.py [--frames 300] [--no-write]
    .venv/bin/python benchmarks/bench_floor.py --pose-file OUT.npz   # an engine's pose file (format 2)

Pose files: walkers (``blender_mocap_addon.core.synthetic.walkers_arrays``) on the floor
z = 0 with known foot contacts, seen by a camera 1.7 m high, 14 degrees down, rolled 3
degrees. The joints are spoiled the way the engine's errors spoil them: each person's world
height off by up to 6 cm, 1 cm jitter per joint and a random-walk drift of the whole body
(4 mm per frame). Figures are read back from the evaluated armatures in the scene:

1. Import (format 2, world frame, the engine's 9 cm ankle height in meta): contact ankles'
   height above the ground plane against 9 cm, and foot sliding (mean ankle travel between
   consecutive contact frames), foot locking off and on.
2. Retarget onto the Rigify-like and Mixamo-like rigs of tests/addon/test_addon_blender.py:
   a contact ankle's height against its rest height above the rig's floor, and the rig's
   foot sliding during contacts, for a format-2 import (locked) and a format-1 import (camera
   coordinates, level camera, no drift), with the retarget maths before issue 27 (read from git at the
   commit BEFORE: root scaled about the camera) and now, feet planted on the rig off and on.
3. CPU time of foot locking for one person over 10,000 frames (solve with and without).

With ``--pose-file`` it measures a real pose file instead (no truth: the contacts the
engine wrote): per person with contacts, foot sliding during contacts and the contact
ankles' height against the file's ankle height, foot locking off and on
(docs/results/bench/floor_sample.json).
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [REPO, os.path.join(REPO, "tests", "addon"), os.path.dirname(os.path.abspath(__file__))]
os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="mocap_bench_bur_"))

import bpy  # noqa: E402
import mathutils  # noqa: E402

from blender_mocap_addon.blender import import_posefile, retarget as retarget_bpy  # noqa: E402
from blender_mocap_addon.core import bonemap as bm, foot_lock as fk, motion, synthetic  # noqa: E402
from blender_mocap_addon.core.contract import posefile  # noqa: E402

#: The last commit before the add-on half of issue 27 (retarget scaled about the camera).
BEFORE = "d49c110"
CAMERA = dict(height=1.7, pitch_deg=14.0, roll_deg=-3.0)
LEVEL = dict(height=1.7, pitch_deg=0.0, roll_deg=0.0)
ANKLE = 0.09    # the engine's ankle height above the floor (inference/core/floor.py)


def write_walkers(path, P, F, world_frame, camera, seed=0, lift=(0.0, 0.06), jitter=0.01, drift=0.004):
    T = synthetic.look_at_floor(**camera)
    arr, world, contacts = synthetic.walkers_arrays(P, F, T, seed=seed, world_frame=world_frame)
    if world_frame:   # the engine's floor lies ANKLE below the resting ankles
        world = world + [0.0, 0.0, ANKLE]
        arr["meta"]["floor"]["ankle_height_m"] = ANKLE
    rng = np.random.default_rng(seed)
    seen = world.copy()
    for p in range(P):
        seen[p] += [0.0, 0.0, lift[p % len(lift)]]
        seen[p] += np.cumsum(rng.normal(0, drift, (F, 3)), 0)[:, None, :]
        seen[p] += rng.normal(0, jitter, seen[p].shape)
    Ti = np.linalg.inv(T)
    arr["joints3d"] = (seen @ Ti[:3, :3].T + Ti[:3, 3]).astype(np.float32)
    posefile.write_posefile(str(path), **arr)
    return contacts


def ankles(ob, F):
    out = np.empty((F, 2, 3))
    for f in range(F):
        bpy.context.scene.frame_set(f + 1)
        mw = ob.matrix_world
        out[f] = [(mw @ ob.pose.bones[b].tail)[:] for b in ("shin.R", "shin.L")]
    return out


def import_figures(path, contacts, F, lock):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = import_posefile.load(str(path), import_posefile.ImportOptions(foot_lock=lock), report=lambda m: None)
    z, slide = [], []
    for p, name in enumerate(res.armatures):
        a = ankles(bpy.data.objects[name], F)
        z.append(np.abs(a[..., 2][contacts[p]] - ANKLE))
        slide.append(fk.foot_slide(a, contacts[p]))
    z = np.concatenate(z)
    return [1000 * z.mean(), 1000 * z.max(), 1000 * float(np.mean(slide))]


def _old_retarget_module():
    """core/retarget.py as it was at BEFORE (root scaled about the camera), or None without git."""
    try:
        src = subprocess.run(["git", "show", f"{BEFORE}:blender_mocap_addon/core/retarget.py"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    spec = importlib.util.spec_from_loader("blender_mocap_addon.core._retarget_before", loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "blender_mocap_addon.core"
    sys.modules[spec.name] = mod              # dataclasses look their module up
    exec(compile(src, "retarget_before.py", "exec"), mod.__dict__)
    old_source, old_retarget = mod.source_from_local, mod.retarget   # today's glue passes more
    mod.source_from_local = lambda *a, floor_z=None, rest_tails=None, **k: old_source(*a, **k)
    mod.retarget = lambda *a, plant_feet=None, **k: old_retarget(*a, **k)
    return mod


def retarget_figure(path, contacts, F, kind, rt_module=None, plant_feet=True):
    from test_addon_blender import RIGIFY_LIKE, _mixamo_like, build_rig
    bpy.ops.wm.read_factory_settings(use_empty=True)
    res = import_posefile.load(str(path), report=lambda m: None)
    src = bpy.data.objects[res.armatures[0]]
    meas = {}
    if kind.startswith("Rigify metarig") or kind.startswith("generated Rigify"):
        import addon_utils
        addon_utils.enable("rigify", default_set=True)
        bpy.ops.object.select_all(action='DESELECT')
        bpy.ops.object.armature_human_metarig_add()
        tgt, bone_map = bpy.context.active_object, bm.preset("RIGIFY_METARIG")
        if kind.startswith("generated"):
            bpy.ops.pose.rigify_generate()
            tgt, bone_map = bpy.data.objects["rig"], bm.preset("RIGIFY_CONTROLS")
            meas = {s: f"ORG-shin.{s}" for s in ("R", "L")}    # the rig's own leg, through its constraints
    elif kind == "Rigify-like":
        tgt, bone_map = build_rig("RigifyLike", RIGIFY_LIKE), bm.preset("RIGIFY_METARIG")
    else:
        m = mathutils.Matrix.LocRotScale(None, mathutils.Euler((math.pi / 2, 0, 0)), (0.01, 0.01, 0.01))
        tgt, bone_map = build_rig("MixamoLike", _mixamo_like(), m), bm.preset("MIXAMO")
    mw = tgt.matrix_world
    meas = meas or {s: bone_map.bones[f"shin.{s}"] for s in ("R", "L")}
    rest = {s: (mw @ tgt.data.bones[meas[s]].tail_local).z for s in ("R", "L")}
    saved = retarget_bpy.rt
    try:
        if rt_module is not None:
            retarget_bpy.rt = rt_module
        if rt_module is not None:
            retarget_bpy.retarget(src, tgt, bone_map, report=lambda m: None)
        else:
            retarget_bpy.retarget(src, tgt, bone_map, report=lambda m: None, plant_feet=plant_feet)
    finally:
        retarget_bpy.rt = saved
    a = np.empty((F, 2, 3))
    for f in range(F):
        bpy.context.scene.frame_set(f + 1)
        for k, s in enumerate(("R", "L")):
            a[f, k] = (mw @ tgt.pose.bones[meas[s]].tail)[:]
    err = (a[..., 2] - [rest["R"], rest["L"]])[contacts[0]]
    return [1000 * float(np.abs(err).mean()), 1000 * float(np.abs(err).max()),
            1000 * fk.foot_slide(a, contacts[0])]


def lock_cost(F=10000, repeat=3):
    j, c = synthetic.walker_world(F, seed=9)
    T = synthetic.look_at_floor(**CAMERA)
    cam = (j - T[:3, 3]) @ T[:3, :3]
    valid = np.ones(F, bool)
    best = {}
    for lock in (False, True):
        times = []
        for _ in range(repeat):
            t = time.process_time()
            motion.solve_person(cam, valid, posefile.JOINT_NAMES, world_from_camera=T, contacts=c,
                                feet_on_floor=True, lock_feet=lock)
            times.append(time.process_time() - t)
        best[lock] = min(times)
    return best


def pose_file_figures(path):
    """Rows [person id, locking, contact frames, sliding mm/frame, ankle height error mean, max]."""
    from blender_mocap_addon.core import floor as floor_core
    d = posefile.load(path)
    if d.contacts is None:
        raise SystemExit(f"{path}: no contacts (format {d.format_version}, floor "
                         f"{(d.meta.get('floor') or {}).get('status')})")
    ankle = floor_core.ankle_height(d.meta)
    rows = []
    for lock in (False, True):
        bpy.ops.wm.read_factory_settings(use_empty=True)
        res = import_posefile.load(path, import_posefile.ImportOptions(foot_lock=lock), report=lambda m: None)
        for name in res.armatures:
            ob = bpy.data.objects[name]
            p = list(d.person_ids).index(ob["mocap_person_id"])
            v = np.flatnonzero(d.valid[p])
            c = d.contacts[p][v]
            if not c.any():
                continue
            a = np.empty((len(v), 2, 3))
            for i, f in enumerate(v):
                bpy.context.scene.frame_set(int(f) + 1)
                a[i] = [(ob.matrix_world @ ob.pose.bones[b].tail)[:] for b in ("shin.R", "shin.L")]
            err = np.abs(a[..., 2][c] - ankle)
            rows.append([int(d.person_ids[p]), "on" if lock else "off", int(c.sum()),
                         1000 * fk.foot_slide(a, c, v), 1000 * float(err.mean()), 1000 * float(err.max())])
    return rows


def show(tables):
    for t in tables:
        print(f"\n{t['title']}\n")
        print("| " + " | ".join(t["columns"]) + " |")
        print("|" + "---|" * len(t["columns"]))
        for r in t["rows"]:
            print("| " + " | ".join((f"{v:.1f}" if abs(v) >= 1 else f"{v:.3f}") if isinstance(v, float) else str(v)
                                    for v in r) + " |")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--pose-file", default=None, help="measure this pose file (format 2 with contacts) instead")
    ap.add_argument("--no-write", action="store_true", help="print only; do not write docs/results/bench/floor*.json")
    args = ap.parse_args(argv)
    if args.pose_file:
        tables = [{"title": f"{os.path.basename(args.pose_file)}: contact frames, the engine's contacts",
                   "columns": ["person", "foot locking", "contact foot-frames", "foot sliding (mm/frame)",
                               "ankle height error mean (mm)", "max (mm)"],
                   "rows": pose_file_figures(args.pose_file)}]
        show(tables)
        if not args.no_write:
            from results_io import write_result
            write_result("floor_sample", tables, notes=f"pose file {args.pose_file}")
        return 0
    F = args.frames
    tmp = tempfile.mkdtemp(prefix="bench_floor_")
    v2 = os.path.join(tmp, "v2.npz")
    c2 = write_walkers(v2, 2, F, True, CAMERA)
    rows1 = [["off"] + import_figures(v2, c2, F, False), ["on"] + import_figures(v2, c2, F, True)]
    v2one = os.path.join(tmp, "v2_one.npz")
    c2one = write_walkers(v2one, 1, F, True, CAMERA, lift=(0.0,))
    v1one = os.path.join(tmp, "v1_one.npz")
    c1one = write_walkers(v1one, 1, F, False, LEVEL, lift=(0.0,), drift=0.0)   # a drifting floor is another story
    old = _old_retarget_module()
    rows2 = []
    for kind in ("Rigify-like", "Mixamo-like"):
        for label, path, c in (("format 2 (world frame, feet locked)", v2one, c2one),
                               ("format 1 (camera coordinates, level camera)", v1one, c1one)):
            before = retarget_figure(path, c, F, kind, old) if old is not None else [float("nan")] * 3
            for plant in (False, True):
                rows2.append([kind, label, "now, planted" if plant else "now, not planted"]
                             + retarget_figure(path, c, F, kind, plant_feet=plant))
            rows2.insert(len(rows2) - 2, [kind, label, "before"] + before)
    for kind in ("Rigify metarig (Blender's)", "generated Rigify rig (FK controls)"):
        for plant in (False, True):
            rows2.append([kind, "format 2 (world frame, feet locked)", "now, planted" if plant else "now, not planted"]
                         + retarget_figure(v2one, c2one, F, kind, plant_feet=plant))
    cost = lock_cost()
    rows3 = [[10000, cost[False], cost[True], 100 * (cost[True] - cost[False]) / cost[False]]]
    tables = [
        {"title": f"Import onto the floor: 2 walkers x {F} frames, contact frames", "columns":
         ["foot locking", "ankle height error mean (mm)", "max (mm)", "foot sliding (mm/frame)"],
         "rows": rows1},
        {"title": f"Retarget: contact ankle height against its rest height above the rig's floor, 1 walker x {F} frames",
         "columns": ["rig", "source", "retarget", "ankle height error mean (mm)", "max (mm)",
                     "rig's foot sliding (mm/frame)"],
         "rows": rows2},
        {"title": "CPU time of one person's solve (process time, best of 3)",
         "columns": ["frames", "without locking (s)", "with locking (s)", "extra (%)"], "rows": rows3},
    ]
    show(tables)
    if not args.no_write:
        from results_io import write_result
        write_result("floor", tables, notes=f"before = retarget maths at commit {BEFORE} (root scaled about "
                     "the camera); synthetic walkers with 6 cm height error, 1 cm jitter, 4 mm/frame drift")
    return 0


if __name__ == "__main__":
    sys.exit(main())
