"""Where the engine is: a small JSON settings file that ``install_deps.py`` writes and the
add-on reads, so an installed extension (which lives far from the checkout) finds the engine
and its Python without the user typing paths. Standard library only, old-Python syntax (install_deps
imports it before anything is installed; no bpy).

The file: ``$MOCAP_ENGINE_SETTINGS`` if set, else ``video_mocap/engine.json`` in the user's
configuration folder (``%APPDATA%`` on Windows, ``~/Library/Application Support`` on macOS,
``$XDG_CONFIG_HOME`` or ``~/.config`` elsewhere)::

    {"project_root": "/path/to/checkout", "python": "/path/to/checkout/.venv/bin/python"}
"""
import json
import os
import sys

ENV = "MOCAP_ENGINE_SETTINGS"


def settings_path():
    if os.environ.get(ENV):
        return os.environ[ENV]
    if sys.platform.startswith("win"):
        base = os.environ.get("APPDATA") or os.path.expanduser("~")
    elif sys.platform == "darwin":
        base = os.path.expanduser("~/Library/Application Support")
    else:
        base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return os.path.join(base, "video_mocap", "engine.json")


def read(path=None):
    """{"project_root": ..., "python": ...} with only entries that still exist ({} without a
    usable file: the add-on then falls back to its other ways of finding the engine)."""
    path = path or settings_path()
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, ValueError):
        return {}
    if not isinstance(doc, dict):
        return {}
    out = {}
    root = doc.get("project_root")
    if isinstance(root, str) and os.path.isfile(os.path.join(root, "inference", "__init__.py")):
        out["project_root"] = root
    py = doc.get("python")
    if isinstance(py, str) and os.path.isfile(py):
        out["python"] = py
    return out


def write(project_root, python, path=None):
    """Record the engine's folder and Python (atomically); returns the file written."""
    path = path or settings_path()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump({"project_root": os.path.abspath(project_root), "python": os.path.abspath(python)}, fh,
                  indent=1)
    os.replace(tmp, path)
    return path
