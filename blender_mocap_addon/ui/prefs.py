"""Add-on preferences: which Python runs inference, where the project is, dependency check."""
from __future__ import annotations

import os

import bpy

from ..runner import jobs

ADDON_ID = __package__   # "blender_mocap_addon" or "bl_ext.<repo>.blender_mocap_addon"


def get_prefs(context=None):
    context = context or bpy.context
    addon = context.preferences.addons.get(ADDON_ID)
    return addon.preferences if addon is not None else None


def resolve_paths(context=None) -> tuple:
    """(python, project_root): configured values, else auto-detected ones.

    project_root is None when it is neither configured nor found above the add-on.
    """
    python, root, _ = resolve_paths_how(context)
    return python, root


def resolve_paths_how(context=None) -> tuple:
    """(python, project_root, how the root was found) - see jobs.locate_engine."""
    p = get_prefs(context)
    root, python, how = jobs.locate_engine(
        bpy.path.abspath(p.project_root) if p and p.project_root else None,
        bpy.path.abspath(p.python_path) if p and p.python_path else None)
    return python, root, how


class MOCAP_AddonPreferences(bpy.types.AddonPreferences):
    bl_idname = ADDON_ID

    python_path: bpy.props.StringProperty(
        name="Inference Python", subtype='FILE_PATH',
        description="Python interpreter with torch and opencv that runs `python -m inference` "
                    "(empty: the project's .venv, else Blender's own Python)")
    project_root: bpy.props.StringProperty(
        name="Project root", subtype='DIR_PATH',
        description="Folder containing inference/ and install_deps.py (empty: auto-detect from "
                    "the add-on's location)")
    deps_report: bpy.props.StringProperty(name="Dependency report", default="")

    def draw(self, context):
        layout = self.layout
        python, root, how = resolve_paths_how(context)
        layout.prop(self, "python_path")
        layout.prop(self, "project_root")
        col = layout.column(align=True)
        col.label(text=f"Using Python: {python}")
        col.label(text=f"Project root: {root or 'not found - run install_deps.py, or set it above'}",
                  icon='NONE' if root else 'ERROR')
        if how:
            col.label(text=f"Found: {how}")
        row = layout.row(align=True)
        row.operator("mocap.check_dependencies", icon='CHECKMARK').install = False
        row.operator("mocap.check_dependencies", text="Install Missing", icon='IMPORT').install = True
        if self.deps_report:
            box = layout.box()
            for line in self.deps_report.splitlines()[-15:]:
                box.label(text=line)

