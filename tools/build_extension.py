#!/usr/bin/env python3
"""Build the Blender extension zip.

The zip holds the contents of ``blender_mocap_addon/`` at its root, the top-level
``blender_manifest.toml``, and a copy of the neutral ``posefile/`` package as
``core/posefile/`` (the add-on's ``core/contract.py`` imports it from there, since an installed
extension cannot reach the checkout). That is the layout Blender 4.2+ expects
(Preferences > Get Extensions > Install from Disk, or ``blender --command extension install-file``).
Caches (``__pycache__``, ``*.pyc``) and editor droppings are left out. The archive is
reproducible: sorted entries, fixed timestamps.

Usage: python3 tools/build_extension.py [--output-dir dist]   -> dist/video_mocap-<version>.zip
Standard library only.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
import tomllib
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE_DIR = os.path.join(REPO, "blender_mocap_addon")
POSEFILE_DIR = os.path.join(REPO, "posefile")
POSEFILE_IN_ZIP = "core/posefile"
MANIFEST = os.path.join(REPO, "blender_manifest.toml")
MANIFEST_NAME = "blender_manifest.toml"

#: Names (files or folders, fnmatch patterns) never put in the zip.
EXCLUDE = ("__pycache__", "*.pyc", "*.pyo", ".*", "*~", "*.blend1", "*.orig", "*.rej")
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)


class BuildError(Exception):
    """The extension cannot be built (missing or unreadable manifest, missing package)."""


def _excluded(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pat) for pat in EXCLUDE)


def read_manifest(path: str = MANIFEST) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as ex:
        raise BuildError(f"cannot read {path}: {ex}") from None


def package_files(package_dir: str = PACKAGE_DIR) -> list[tuple[str, str]]:
    """(path on disk, name in the zip) for every file to ship, sorted by zip name."""
    if not os.path.isfile(os.path.join(package_dir, "__init__.py")):
        raise BuildError(f"{package_dir} has no __init__.py")
    out = []
    for root, dirs, files in os.walk(package_dir):
        dirs[:] = [d for d in dirs if not _excluded(d)]
        for name in files:
            if _excluded(name) or name == MANIFEST_NAME:
                continue
            full = os.path.join(root, name)
            out.append((full, os.path.relpath(full, package_dir).replace(os.sep, "/")))
    return sorted(out, key=lambda item: item[1])


def build(output_dir: str = os.path.join(REPO, "dist"), *, manifest_path: str = MANIFEST,
          package_dir: str = PACKAGE_DIR, posefile_dir: str = POSEFILE_DIR) -> str:
    """Write ``<output_dir>/<id>-<version>.zip`` and return its path."""
    manifest = read_manifest(manifest_path)
    for key in ("id", "version"):
        if not isinstance(manifest.get(key), str):
            raise BuildError(f"{manifest_path}: missing string field '{key}'")
    vendored = [(src, f"{POSEFILE_IN_ZIP}/{name}") for src, name in package_files(posefile_dir)]
    entries = [(manifest_path, MANIFEST_NAME)] + sorted(package_files(package_dir) + vendored,
                     key=lambda item: item[1])
    os.makedirs(output_dir, exist_ok=True)
    zip_path = os.path.join(output_dir, f"{manifest['id']}-{manifest['version']}.zip")
    tmp = zip_path + ".tmp"
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for src, arcname in entries:
            info = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            with open(src, "rb") as fh:
                zf.writestr(info, fh.read())
    os.replace(tmp, zip_path)
    return zip_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", default=os.path.join(REPO, "dist"),
                        help="folder for the zip (default: dist/ in the repo)")
    args = parser.parse_args(argv)
    try:
        path = build(args.output_dir)
    except (BuildError, OSError) as ex:
        print(f"build_extension: error: {ex}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(path) as zf:
        n = len(zf.namelist())
    print(f"built {path} ({n} files, {os.path.getsize(path) / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
