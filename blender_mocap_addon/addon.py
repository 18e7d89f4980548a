"""Blender registration: the one list of classes the add-on registers.

Imported only from ``register()`` / ``unregister()`` in ``__init__.py`` (needs bpy).
Add operators, panels and preferences to ``CLASSES`` in dependency order (a class that
uses another class in a PointerProperty comes after it); unregister runs in reverse.
"""

import bpy

CLASSES: tuple = ()


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)


def unregister():
    for cls in reversed(CLASSES):
        if getattr(cls, "is_registered", False):
            bpy.utils.unregister_class(cls)
