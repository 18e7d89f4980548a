"""Import a pose file: one animated armature per person (thin bpy glue).

``load(pose_path, options, report=print)`` is the one entry point used by the
operator, the Convert job and batch.  All maths happen first (pure numpy, in
core); the scene is changed only once every person is solved, and anything
created is removed again if a later step fails, so a failed import leaves the
scene as it was.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass, field

import bpy
import mathutils
import numpy as np

from . import armature as armature_bpy, confidence as conf_bpy, keys as keys_bpy, take_store
from ..core import axes, confidence as conf_core, floor as floor_core, motion
from ..core.contract import posefile
from ..core import skeleton as sk
from ..errors import MocapError


@dataclass
class ImportOptions:
    """smoothing: Gaussian sigma in frames (0 = off); frame_offset: scene frame of
    pose-file frame 0; set_scene: set scene fps and frame range; add_camera: add a
    camera matching camera_K (with ``video_path`` as background when given);
    people: person ids to import (None = all); min_valid_frames: skip shorter
    tracks; collection: name of the collection the objects go to;
    use_floor: when the file has a floor (format 2, ``world_from_camera``), import into
    its world frame (floor z = 0) with a ground plane, the camera at its estimated height
    and tilt, and each person's feet on the floor; foot_lock: keep a foot still while the
    file says it is on the floor (only where the file has contacts);
    confidence: key per-joint confidence, bone colours and visibility, add span markers;
    max_gap_s: dropouts up to this long (s) are bridged by the keys ("interpolated"), longer
    ones hide the armature ("lost"); store: keep the pose data in the .blend (track edits);
    people_only: armatures only (no floor, camera or scene settings: re-solving a take)."""
    smoothing: float = 0.0
    frame_offset: int = 1
    set_scene: bool = True
    add_camera: bool = False
    video_path: str = ""
    people: list | None = None
    min_valid_frames: int = 1
    collection: str = "Mocap"
    use_floor: bool = True
    foot_lock: bool = True
    confidence: bool = True
    max_gap_s: float = 0.5
    store: bool = True
    people_only: bool = False


@dataclass
class ImportResult:
    armatures: list = field(default_factory=list)      # object names, one per person
    person_ids: list = field(default_factory=list)
    camera: str | None = None
    frame_start: int = 0
    frame_end: int = 0
    fps: float = 0.0
    keys: int = 0
    warnings: list = field(default_factory=list)
    cpu_seconds: dict = field(default_factory=dict)   # stage -> CPU time (read, solve, armatures, keys)
    world: bool = False               # imported into the file's world frame (floor z = 0)
    floor: str | None = None          # the ground-plane object, when there is a floor
    floor_note: str = ""              # one sentence: floor used, or why there is none
    feet_locked: int = 0              # people whose feet were locked during contacts
    take: str = ""                    # name the pose data is stored under (take_store)
    markers: list = field(default_factory=list)   # timeline marker names added


def read_pose_file(pose_path: str) -> posefile.PoseData:
    """posefile.load with the add-on's exception."""
    if not pose_path:
        raise MocapError("no pose file given")
    try:
        return posefile.load(pose_path, cast_floats=True)   # float64 files from other tools: cast
    except posefile.PoseFileError as ex:
        raise MocapError(f"cannot import pose file: {ex}") from ex


def world_frame(data: posefile.PoseData, options: ImportOptions, warnings: list):
    """(world_from_camera (4, 4) or None, a sentence for the user): the floor to import on,
    None for camera coordinates (version-1 files, no floor found, or ``use_floor`` off)."""
    T = getattr(data, "world_from_camera", None)
    use, note = floor_core.floor_info(data.meta, T is not None)
    if use and not options.use_floor:
        return None, "floor in the pose file not used (option off); imported in camera coordinates"
    if not use:
        return None, note
    try:
        return floor_core.check_world_from_camera(T), note
    except floor_core.FloorError as ex:
        warnings.append(f"{ex}; imported in camera coordinates")
        return None, "floor in the pose file unusable; imported in camera coordinates"


def solve_people(data: posefile.PoseData, options: ImportOptions, warnings: list,
                 world_from_camera=None) -> list:
    """PersonMotion for each person to import (pure numpy); raises MocapError if none.

    world_from_camera: (4, 4) to import into a world frame with the feet put on its floor
    (see world_frame), None for camera coordinates."""
    if data.num_people == 0:
        raise MocapError("the pose file contains no people (nobody was detected in the video)")
    wanted = None if options.people is None else {int(p) for p in options.people}
    out, skipped = [], []
    for p in range(data.num_people):
        pid = int(data.person_ids[p])
        if wanted is not None and pid not in wanted:
            continue
        n_valid = int(np.count_nonzero(data.valid[p]))
        if n_valid < max(1, options.min_valid_frames):
            warnings.append(f"person {pid}: only {n_valid} valid frames; skipped")
            continue
        contacts = getattr(data, "contacts", None)
        contacts = None if contacts is None else np.asarray(contacts[p], bool)
        # only a person the file says touches the floor is moved onto it (someone on a wall
        # or a stage has no contacts: left where the engine put them)
        on_floor = (world_from_camera is not None and contacts is not None and bool(contacts.any())
                    and p not in floor_core.off_the_floor(data.meta))
        try:
            m = motion.solve_person(data.joints3d[p], data.valid[p], data.joint_names,
                                    person_id=pid, smoothing=options.smoothing, local=False,
                                    world_from_camera=world_from_camera, contacts=contacts,
                                    feet_on_floor=on_floor,
                                    ankle_height=floor_core.ankle_height(data.meta),
                                    lock_feet=options.foot_lock)
        except (ValueError, KeyError) as ex:
            warnings.append(f"person {pid}: {ex}; skipped")
            skipped.append(str(ex))
            continue
        gaps = data.num_frames - n_valid
        if gaps:
            warnings.append(f"person {pid}: absent in {gaps} of {data.num_frames} frames "
                            "(keys interpolate across gaps)")
        warnings.extend(m.warnings)
        out.append(m)
    if not out:
        if wanted is not None:
            raise MocapError(f"none of the people {sorted(wanted)} can be imported "
                             f"(file has ids {data.person_ids.tolist()})")
        if skipped:   # the real reason (e.g. zero-length bones), not just "unusable"
            raise MocapError("no person in the pose file can be imported: " + "; ".join(skipped))
        raise MocapError("no person in the pose file has usable frames")
    return out


def person_channels(m: motion.PersonMotion, frame_offset: int) -> list:
    """keys_bpy.Channel list: root location (3) + one quaternion (4) per bone."""
    frames = m.frames.astype(np.float64) + frame_offset
    root = sk.ROOT_BONE
    chans = [keys_bpy.Channel(f'pose.bones["{root}"].location', i, frames, m.root_location[:, i], root)
             for i in range(3)]
    for b, name in enumerate(sk.BONE_NAMES):
        for i in range(4):
            chans.append(keys_bpy.Channel(f'pose.bones["{name}"].rotation_quaternion', i, frames,
                                          m.local_quat[:, b, i], name))
    return chans


class _Undo:
    """Remembers what an import created or changed, to put the scene back on failure."""

    def __init__(self, scene):
        self.scene = scene
        self.objects, self.data, self.actions, self.clips, self.collections = [], [], [], [], []
        self.linked, self.markers = [], []
        self.takes = take_store.names(scene)
        r = scene.render
        self.scene_state = (r.fps, r.fps_base, scene.frame_start, scene.frame_end, scene.frame_current)
        self.render_state = (r.resolution_x, r.resolution_y, r.resolution_percentage, scene.camera)

    def rollback(self):
        for m in self.markers:
            if m.name in self.scene.timeline_markers:
                self.scene.timeline_markers.remove(m)
        for t in take_store.names(self.scene):
            if t not in self.takes:
                take_store.remove(self.scene, t)
        for ob in self.objects:
            if ob.name in bpy.data.objects:
                bpy.data.objects.remove(ob, do_unlink=True)
        for d in self.data:
            coll = (bpy.data.armatures if isinstance(d, bpy.types.Armature) else
                    bpy.data.meshes if isinstance(d, bpy.types.Mesh) else bpy.data.cameras)
            if d.name in coll:
                coll.remove(d)
        for a in self.actions:
            if a.name in bpy.data.actions:
                bpy.data.actions.remove(a)
        for c in self.clips:
            if c.name in bpy.data.movieclips:
                bpy.data.movieclips.remove(c)
        for c in self.linked:
            if c.name in bpy.data.collections and c.name in self.scene.collection.children:
                self.scene.collection.children.unlink(c)
        for c in self.collections:
            if c.name in bpy.data.collections:
                bpy.data.collections.remove(c)
        s = self.scene
        s.render.fps, s.render.fps_base, s.frame_start, s.frame_end, cur = self.scene_state
        rx, ry, rp, cam = self.render_state
        s.render.resolution_x, s.render.resolution_y, s.render.resolution_percentage = rx, ry, rp
        if cam is None or cam.name in bpy.data.objects:
            s.camera = cam
        s.frame_set(cur)


def _collection(scene, name, undo):
    """Collection ``name`` linked under the scene (created if needed)."""
    coll = bpy.data.collections.get(name)
    if coll is None:
        coll = bpy.data.collections.new(name)
        undo.collections.append(coll)
    if coll.name not in {c.name for c in scene.collection.children_recursive}:
        scene.collection.children.link(coll)
        undo.linked.append(coll)
    return coll


def _set_fps(scene, fps: float):
    whole = max(1, int(round(fps)))
    scene.render.fps = whole
    scene.render.fps_base = whole / fps


def _add_camera(data, options, coll, undo, result, frame_offset, world_from_camera=None, video=""):
    """The source camera: at the origin (camera coordinates) or where world_from_camera puts
    it; the video (when found) as its background."""
    cam_data = bpy.data.cameras.new("Mocap_Camera")
    undo.data.append(cam_data)
    cam = bpy.data.objects.new("Mocap_Camera", cam_data)
    undo.objects.append(cam)
    coll.objects.link(cam)
    if world_from_camera is None:
        cam.rotation_euler = axes.BLENDER_CAMERA_EULER
    else:
        cam.matrix_world = mathutils.Matrix(floor_core.camera_matrix_world(world_from_camera).tolist())
    lens = axes.camera_lens_from_K(data.camera_K, data.image_size)
    cam_data.sensor_fit = lens["sensor_fit"]
    cam_data.sensor_width = lens["sensor_width"]
    cam_data.lens = lens["lens"]
    cam_data.shift_x = lens["shift_x"]
    cam_data.shift_y = lens["shift_y"]
    scene = undo.scene
    scene.render.resolution_x, scene.render.resolution_y = data.image_size
    scene.render.resolution_percentage = 100
    if scene.camera is None:
        scene.camera = cam
    result.camera = cam.name
    if video:
        if not os.path.isfile(video):
            result.warnings.append(f"video {video!r} not found; camera has no background")
            return
        try:
            clip = bpy.data.movieclips.load(video)
        except RuntimeError as ex:
            result.warnings.append(f"cannot load video {video!r} as background: {ex}")
            return
        undo.clips.append(clip)
        start = _video_start(data)
        clip.frame_start = frame_offset - start
        cam_data.show_background_images = True
        bg = cam_data.background_images.new()
        bg.source = 'MOVIE_CLIP'
        bg.clip = clip
        bg.alpha = 1.0


def _video_path(data, options, pose_path: str) -> str:
    """The background video: the option, else the source named in meta when that file lies
    beside the pose file ("" when unknown)."""
    if options.video_path:
        return options.video_path
    src = (data.meta or {}).get("source")
    if isinstance(src, str) and src and (data.meta or {}).get("source_kind", "video") == "video":
        near = os.path.join(os.path.dirname(os.path.abspath(pose_path)), os.path.basename(src))
        if os.path.isfile(near):
            return near
    return ""


#: Grid spacing (m) and margin around the people (m) of the ground plane.
FLOOR_CELL = 1.0
FLOOR_MARGIN = 2.0


def _add_floor(people, coll, undo, result):
    """A wire grid at z = 0 (1 m cells) under everyone and the camera: "Mocap_Floor"."""
    pts = [np.zeros((1, 2))] + [m.root_world[:, :2] for m in people]
    pts = np.concatenate(pts)
    lo = np.floor((pts.min(0) - FLOOR_MARGIN) / FLOOR_CELL) * FLOOR_CELL
    hi = np.ceil((pts.max(0) + FLOOR_MARGIN) / FLOOR_CELL) * FLOOR_CELL
    nx, ny = (np.round((hi - lo) / FLOOR_CELL).astype(int) + 1).tolist()
    xs, ys = np.linspace(lo[0], hi[0], nx), np.linspace(lo[1], hi[1], ny)
    gx, gy = np.meshgrid(xs, ys)                       # (ny, nx)
    verts = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], 1)
    i = np.arange(nx * ny).reshape(ny, nx)
    faces = np.stack([i[:-1, :-1].ravel(), i[:-1, 1:].ravel(), i[1:, 1:].ravel(), i[1:, :-1].ravel()], 1)
    mesh = bpy.data.meshes.new("Mocap_Floor")
    undo.data.append(mesh)
    mesh.from_pydata(verts.tolist(), [], faces.tolist())
    mesh.update()
    ob = bpy.data.objects.new("Mocap_Floor", mesh)
    undo.objects.append(ob)
    coll.objects.link(ob)
    ob.display_type = 'WIRE'      # the video stays visible through it in camera view
    ob.hide_render = True         # a guide, not scenery
    ob.hide_select = True         # clicks go to the armatures
    result.floor = ob.name


def _video_start(data) -> int:
    """Video frame index of pose-file frame 0 (from meta, when inference recorded it)."""
    meta = data.meta or {}
    for holder in (meta, meta.get("options", {}) if isinstance(meta.get("options"), dict) else {}):
        for key in ("start", "start_frame", "frame_start"):
            v = holder.get(key)
            if isinstance(v, int) and v >= 0:
                return v
    return 0


class _StageClock:
    """Adds the CPU time since the previous call to ``totals[stage]``."""

    def __init__(self, totals: dict):
        self.totals = totals
        self.t = time.process_time()

    def __call__(self, stage: str):
        now = time.process_time()
        self.totals[stage] = self.totals.get(stage, 0.0) + now - self.t
        self.t = now


def load(pose_path: str, options: ImportOptions | None = None, report=print,
         scene=None) -> ImportResult:
    """Import ``pose_path`` into ``scene`` (default: the context scene).

    Returns an ImportResult; raises MocapError with the scene unchanged.
    """
    clock_start = time.process_time()
    data = read_pose_file(pose_path)
    stem = os.path.splitext(os.path.basename(pose_path))[0]
    return load_data(data, stem, options, report, scene, pose_path=pose_path,
                     read_seconds=time.process_time() - clock_start)


def unique_take(scene, stem: str) -> str:
    """``stem``, or ``stem.001``... when the scene holds a take of that name already."""
    taken = set(take_store.names(scene))
    name, i = stem, 0
    while name in taken:
        i += 1
        name = f"{stem}.{i:03d}"
    return name


def load_data(data: posefile.PoseData, stem: str, options: ImportOptions | None = None, report=print,
              scene=None, pose_path: str = "", read_seconds: float = 0.0, take: str | None = None,
              edits: list | None = None, original=None) -> ImportResult:
    """Import pose data already in memory (``load`` after reading; track edits re-solving a
    take: ``take`` names it, ``edits`` are kept with it; ``original``: the data as read when
    ``data`` is it with ``edits`` applied, stored for a new take). Raises MocapError, scene
    unchanged."""
    options = options or ImportOptions()
    scene = scene or bpy.context.scene
    result = ImportResult()
    result.cpu_seconds["read"] = read_seconds
    clock = _StageClock(result.cpu_seconds)
    T, result.floor_note = world_frame(data, options, result.warnings)
    result.world = T is not None
    people = solve_people(data, options, result.warnings, world_from_camera=T)
    clock("solve")
    row = {int(pid): p for p, pid in enumerate(data.person_ids)}
    max_gap = max(0, int(round(options.max_gap_s * float(data.fps))))
    undo = _Undo(scene)
    try:
        armature_bpy.ensure_object_mode()
        coll = _collection(scene, options.collection, undo)
        objs = armature_bpy.build_armatures([(f"Mocap_P{m.person_id}", m.rest) for m in people], coll)
        for obj in objs:
            undo.objects.append(obj)
            undo.data.append(obj.data)
        clock("armatures")
        result.take = take or (unique_take(scene, stem) if options.store else stem)
        for m, obj in zip(people, objs):
            obj["mocap_person_id"] = m.person_id
            obj["mocap_source"] = os.path.basename(pose_path) if pose_path else stem
            obj["mocap_take"] = result.take
            obj["mocap_hip_height"] = float(m.rest.root_head[2])
            # height of the ankles of a foot on the floor, in the armature's z (it sits at the origin)
            obj["mocap_floor_z"] = float(m.floor_z) if np.isfinite(m.floor_z) else 0.0
            obj["mocap_world"] = result.world
            motion.localize(m, armature_bpy.bone_rest_rotations(obj, sk.BONE_NAMES))
            clock("solve")
            action = keys_bpy.new_action(f"{obj.name}_{stem}")
            undo.actions.append(action)
            chans = person_channels(m, options.frame_offset)
            p = row[m.person_id]
            if options.confidence:
                chans += conf_bpy.channels(obj, np.asarray(data.scores[p]), np.asarray(data.valid[p]),
                                           m.frames, options.frame_offset, data.joint_names, max_gap)
                if hasattr(obj.data, "show_bone_colors"):     # 4.0+
                    obj.data.show_bone_colors = True
            result.keys += keys_bpy.write_channels(obj, action, chans)
            if options.confidence:
                filled = None if getattr(data, "filled", None) is None else data.filled[p]
                spans = conf_core.spans(data.valid[p], data.scores[p], max_gap, filled=filled)
                made = conf_bpy.add_markers(scene, m.person_id, spans, options.frame_offset)
                undo.markers += made
                result.markers += [mk.name for mk in made]
            clock("keys")
            result.armatures.append(obj.name)
            result.person_ids.append(m.person_id)
            report(f"person {m.person_id}: {len(m.frames)} frames -> {obj.name}")
            _report_floor(m, result, report)
        first = min(int(m.frames[0]) for m in people) + options.frame_offset
        last = max(int(m.frames[-1]) for m in people) + options.frame_offset
        result.frame_start, result.frame_end, result.fps = first, last, float(data.fps)
        if options.set_scene and not options.people_only:
            # the scene matches the video: its frame rate, all its frames, its size in pixels
            _set_fps(scene, float(data.fps))
            scene.frame_start = options.frame_offset
            scene.frame_end = max(options.frame_offset + data.num_frames - 1, last)
            scene.render.resolution_x, scene.render.resolution_y = data.image_size
            scene.render.resolution_percentage = 100
        if result.world and not options.people_only:
            _add_floor(people, coll, undo, result)
        if (options.add_camera or result.world) and not options.people_only:
            _add_camera(data, options, coll, undo, result, options.frame_offset, world_from_camera=T,
                        video=_video_path(data, options, pose_path) if pose_path else options.video_path)
        if options.store and take is None:
            take_store.store(scene, result.take, data if original is None else original, options, edits,
                             current=data)
        elif options.store:            # a re-solved take keeps its original data
            take_store.update(scene, take, edits or [], data)
        if options.store:
            take_store.set_markers(scene, result.take, result.markers)
        if not options.people_only:
            scene.frame_set(first)
        clock("scene")
    except MocapError:
        undo.rollback()
        raise
    except Exception as ex:          # any bpy failure: undo, then one domain error
        undo.rollback()
        raise MocapError(f"import failed: {type(ex).__name__}: {ex}") from ex
    report(result.floor_note)
    for w in result.warnings:
        report(f"WARNING: {w}")
    return result


#: A person moved further than this (m) to stand on the floor gets a warning.
FLOOR_SHIFT_WARN = 0.25


def _report_floor(m, result, report):
    if result.world and (m.contacts is None or not m.contacts.any()):
        report(f"person {m.person_id}: no foot contact in the pose file; left where the engine put it "
               f"(ankles {m.floor_z:.2f} m above the floor)")
    elif result.world and abs(m.floor_shift) > 0.005:
        line = (f"person {m.person_id}: moved {m.floor_shift * 100:+.1f} cm vertically to put the feet "
                "on the floor")
        if abs(m.floor_shift) > FLOOR_SHIFT_WARN:
            result.warnings.append(line + " (large: the floor or this person's depth may be off)")
        else:
            report(line)
    if m.lock is not None:
        n = sum(len(r) for r in m.lock.intervals)
        result.feet_locked += 1
        report(f"person {m.person_id}: feet locked in {n} contacts (root moved up to "
               f"{np.abs(m.lock.root_offset).max() * 100:.1f} cm)")
