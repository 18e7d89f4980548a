"""Pure-numpy core of the add-on: no bpy, no torch. Importable outside Blender.

``posefile`` holds the pose-file contract (format version 1) shared with ``inference``.
"""
