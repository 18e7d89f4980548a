"""Video Mocap: markerless motion capture from video into Blender.

Blender 4.2+ installs this package as an extension (``blender_manifest.toml``); older Blender
reads ``bl_info`` and loads it as a legacy add-on. Nothing here imports bpy at module import
time, so ``blender_mocap_addon.core`` (pure numpy) can be used without Blender. Only
relative imports inside the package: as an extension it is loaded as ``bl_ext.<repo>.video_mocap``.
"""

bl_info = {
    "name": "Video Mocap",
    "author": "Video Mocap contributors",
    "version": (0, 1, 0),
    # Oldest Blender this aims to load in as a legacy add-on; tests run Blender 5.0 (bpy 5.0.1).
    "blender": (3, 6, 0),
    "location": "View3D > Sidebar > Mocap",
    "description": "Markerless multi-person motion capture from video into Blender",
    "category": "Animation",
}


def register():
    """Register the add-on's classes (``addon.CLASSES``); bpy is imported only here."""
    from . import addon
    addon.register()


def unregister():
    from . import addon
    addon.unregister()
