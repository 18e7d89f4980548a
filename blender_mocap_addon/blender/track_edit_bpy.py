"""Track edits in the scene (thin bpy glue over ``core/track_edit.py``): edit a take's stored
pose data, then re-solve its armatures from it. The people panel and batch ``--edits`` use
this; the edit and the new armatures are in the .blend, so they survive save and reload.
"""
from __future__ import annotations

import bpy

from . import confidence as conf_bpy, import_posefile, take_store
from ..core import track_edit
from ..errors import MocapError


def armatures_of(scene, take: str) -> list:
    return [ob for ob in scene.objects if ob.get("mocap_take") == take and ob.type == 'ARMATURE']


def take_of(context) -> str | None:
    """The take of the active object, else the scene's first take (None without any)."""
    ob = getattr(context, "active_object", None)
    names = take_store.names(context.scene)
    if ob is not None and ob.get("mocap_take") in names:
        return ob.get("mocap_take")
    return names[0] if names else None


def _remove(scene, take: str, person_ids) -> None:
    """The take's armatures, their actions (when nothing else uses them) and its markers."""
    for ob in armatures_of(scene, take):
        ad = ob.animation_data
        action = ad.action if ad is not None else None
        arm = ob.data
        bpy.data.objects.remove(ob, do_unlink=True)
        if action is not None and action.users == 0:
            bpy.data.actions.remove(action)
        if arm.users == 0:
            bpy.data.armatures.remove(arm)
    made = take_store.markers(scene, take)
    if made is not None:                       # exactly the markers this take's import made
        made = set(made)
        gone = [m for m in scene.timeline_markers if m.name in made]
    else:                                      # older files: by person id
        ids = {str(int(i)) for i in person_ids}
        gone = [m for m in scene.timeline_markers if conf_bpy.is_mocap_marker(m.name)
                and m.name.split(" ")[0][len(conf_bpy.MARKER_PREFIX):] in ids]
    for m in gone:
        scene.timeline_markers.remove(m)


def current(scene, take: str):
    """(pose data with the take's edits applied, options dict, edits)."""
    data, opts, done = take_store.fetch(scene, take)
    try:
        return track_edit.apply_all(data, done)[0], opts, done
    except track_edit.EditError as ex:
        raise MocapError(f"the stored edits of {take!r} no longer apply: {ex}") from ex


def resolve(scene, take: str, edits: list) -> import_posefile.ImportResult:
    """Re-solve ``take``'s armatures from its original data with ``edits`` (the full list).
    Raises MocapError with the scene unchanged."""
    original, opts, done = take_store.fetch(scene, take)
    try:
        new, _ = track_edit.apply_all(original, edits)
    except track_edit.EditError as ex:
        raise MocapError(str(ex)) from ex
    fields = set(import_posefile.ImportOptions.__dataclass_fields__)
    options = import_posefile.ImportOptions(**{k: v for k, v in opts.items() if k in fields})
    options.people_only, options.store = True, True
    if not new.valid.any():
        raise MocapError("this edit would leave nobody in the take (delete the armatures instead)")
    # solve first: an edit that leaves nobody importable fails before the scene is touched
    import_posefile.solve_people(new, options, [])
    before, _ = track_edit.apply_all(original, done)
    _remove(scene, take, [int(i) for i in before.person_ids] + [int(i) for i in new.person_ids])
    return import_posefile.load_data(new, take, options, report=lambda m: None, scene=scene, take=take,
                                     edits=list(edits))


def apply_edits(scene, take: str, edits: list, report=print) -> import_posefile.ImportResult:
    """Apply ``edits`` (dicts, core/track_edit format) after the take's own and re-solve its
    armatures. Raises MocapError with the scene unchanged."""
    data, _, done = current(scene, take)
    try:
        _, notes = track_edit.apply_all(data, edits)      # the error names the new edit
    except track_edit.EditError as ex:
        raise MocapError(str(ex)) from ex
    res = resolve(scene, take, done + list(edits))
    for n in notes:
        report(n)
    return res


def undo_last(scene, take: str, report=print) -> import_posefile.ImportResult:
    """Take back the take's last edit (re-solving from the original data)."""
    done = take_store.edits(scene, take)
    if not done:
        raise MocapError(f"{take!r} has no edit to take back")
    res = resolve(scene, take, done[:-1])
    report(f"took back: {done[-1]}")
    return res


def people(scene, take: str) -> list:
    """[(id, first scene frame, last scene frame, mean confidence)] of the take's people."""
    return take_store.people(scene, take)
