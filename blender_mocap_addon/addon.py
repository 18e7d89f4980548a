"""Blender registration: the one list of classes the add-on registers.

Imported only from ``register()`` / ``unregister()`` in ``__init__.py`` (needs bpy).
Classes are in dependency order (a class used in a PointerProperty comes before
its user); unregister runs in reverse.  Besides the classes: the scene settings
pointer and the File > Import menu entry.
"""

import bpy

from .ui import cleanup, keypoints, operators, panel, people, prefs, properties

CLASSES: tuple = (
    prefs.MOCAP_AddonPreferences,
    properties.MocapBoneMapItem,
    properties.MocapSettings,
    panel.MOCAP_UL_bonemap,
    operators.MOCAP_OT_convert,
    operators.MOCAP_OT_cancel_convert,
    *keypoints.CLASSES,          # keypoint files: File > Import and the panel's Convert Keypoints
    operators.MOCAP_OT_import_posefile,
    operators.MOCAP_OT_import_from_panel,
    operators.MOCAP_OT_bonemap_fill,
    operators.MOCAP_OT_bonemap_save,
    operators.MOCAP_OT_bonemap_load,
    operators.MOCAP_OT_retarget,
    operators.MOCAP_OT_export,
    operators.MOCAP_OT_check_dependencies,
    panel.MOCAP_PT_convert,
    panel.MOCAP_PT_retarget,
    panel.MOCAP_PT_export,
    *people.CLASSES,             # the People sub-panel (after its parent panel) and track edits
    *cleanup.CLASSES,            # Clean Up: key reduction onto a new action over the raw capture
)


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.mocap = bpy.props.PointerProperty(type=properties.MocapSettings)
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)
    bpy.types.TOPBAR_MT_file_import.append(keypoints.menu_import)


def unregister():
    bpy.types.TOPBAR_MT_file_import.remove(keypoints.menu_import)
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    if hasattr(bpy.types.Scene, "mocap"):
        del bpy.types.Scene.mocap
    for cls in reversed(CLASSES):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
