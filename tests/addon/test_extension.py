"""The add-on as Blender sees it: manifest, extension zip, register/unregister, install in bpy.

The manifest and the zip are checked with Blender's own extension tool (``blender_ext.py`` from
the bpy wheel, the code behind ``blender --command extension validate``).
"""

import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "tools"))
import build_extension  # noqa: E402

pytestmark = pytest.mark.blender


def bpy_scripts_file(*parts):
    """A file inside the bpy wheel's ``<version>/scripts`` folder (found without importing bpy)."""
    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("bpy is not installed")
    base = list(spec.submodule_search_locations)[0]
    found = glob.glob(os.path.join(base, "*", "scripts", *parts))
    if not found:
        pytest.skip("this bpy has no " + "/".join(parts))
    return found[0]


@pytest.fixture(scope="module")
def blender_ext():
    """Blender's extension command-line tool, loaded as a module (it is plain Python)."""
    path = bpy_scripts_file("addons_core", "bl_pkg", "cli", "blender_ext.py")
    spec = importlib.util.spec_from_file_location("_blender_ext_checker", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.PATH = path
    return module


@pytest.fixture(scope="module")
def valid_tags():
    return bpy_scripts_file("modules", "_bpy_internal", "extensions", "tags.py")


@pytest.fixture(scope="module")
def built_zip(tmp_path_factory):
    return build_extension.build(str(tmp_path_factory.mktemp("dist")))


def run_validate(blender_ext, path, valid_tags):
    return subprocess.run([sys.executable, blender_ext.PATH, "validate", str(path), "--valid-tags", valid_tags],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=120)


# --------------------------------------------------------------------------- manifest

def test_manifest_passes_blenders_strict_checks(blender_ext):
    result = blender_ext.pkg_manifest_from_toml_and_validate_all_errors(
        os.path.join(REPO, "blender_manifest.toml"), strict=True)
    assert not isinstance(result, list), result
    assert result.id == "video_mocap" and result.type == "add-on"
    assert result.blender_version_min == "4.2.0"
    assert result.license == ["SPDX:GPL-3.0-or-later"]
    assert set(result.permissions) == {"files"}
    assert len(result.tagline) < 64 and result.tagline[-1].isalnum()


def test_checker_rejects_a_broken_manifest(blender_ext, tmp_path):
    """The checker is live: the same manifest with a trailing full stop in the tagline fails."""
    text = open(os.path.join(REPO, "blender_manifest.toml")).read()
    bad = tmp_path / "blender_manifest.toml"
    bad.write_text(text.replace('tagline = "Markerless multi-person motion capture from video"',
                                'tagline = "Markerless multi-person motion capture from video."'))
    assert bad.read_text() != text
    errors = blender_ext.pkg_manifest_from_toml_and_validate_all_errors(str(bad), strict=True)
    assert isinstance(errors, list) and any("tagline" in e for e in errors)


def test_bl_info_matches_the_manifest():
    import tomllib
    import blender_mocap_addon
    with open(os.path.join(REPO, "blender_manifest.toml"), "rb") as fh:
        manifest = tomllib.load(fh)
    info = blender_mocap_addon.bl_info
    assert ".".join(map(str, info["version"])) == manifest["version"]
    assert info["name"] == manifest["name"]
    code = "import sys, blender_mocap_addon, posefile; assert 'bpy' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


# Command-line entry points, run by path (``blender --python batch.py``) or with ``-m``; the
# registered add-on never imports them (checked in test_install_zip_as_extension_in_bpy).
ENTRY_POINTS = {"runner/batch.py"}


def test_addon_uses_relative_imports_only():
    """As an extension the package is ``bl_ext.<repo>.video_mocap``: absolute self-imports break."""
    offenders = []
    for path in glob.glob(os.path.join(REPO, "blender_mocap_addon", "**", "*.py"), recursive=True):
        if os.path.relpath(path, os.path.join(REPO, "blender_mocap_addon")) in ENTRY_POINTS:
            continue
        for n, line in enumerate(open(path, encoding="utf-8"), 1):
            stripped = line.strip()
            if stripped.startswith(("import blender_mocap_addon", "from blender_mocap_addon")):
                offenders.append("{}:{}: {}".format(os.path.relpath(path, REPO), n, stripped))
    assert offenders == []


# --------------------------------------------------------------------------- zip

def test_zip_layout(built_zip):
    with zipfile.ZipFile(built_zip) as zf:
        names = zf.namelist()
    assert os.path.basename(built_zip) == "video_mocap-0.1.0.zip"
    assert "blender_manifest.toml" in names and "__init__.py" in names and "core/posefile/__init__.py" in names and "core/contract.py" in names
    assert not any("__pycache__" in n or n.endswith(".pyc") for n in names)
    assert not any(n.startswith("blender_mocap_addon/") for n in names)  # contents at the zip root


def test_zip_skips_caches_and_is_reproducible(tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(os.path.join(REPO, "blender_mocap_addon"), pkg,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (pkg / "__pycache__").mkdir()
    (pkg / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"junk")
    (pkg / "core" / "stale.pyc").write_bytes(b"junk")
    a = build_extension.build(str(tmp_path / "a"), package_dir=str(pkg))
    b = build_extension.build(str(tmp_path / "b"), package_dir=str(pkg))
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
    assert names[0] == "blender_manifest.toml" and names[1:] == sorted(names[1:])
    assert not any(n.endswith(".pyc") for n in names)
    assert open(a, "rb").read() == open(b, "rb").read()


def test_zip_passes_blenders_validate_command(blender_ext, built_zip, valid_tags):
    result = run_validate(blender_ext, built_zip, valid_tags)
    assert result.returncode == 0, result.stdout
    assert "Success" in result.stdout


def test_validate_command_fails_without_init(blender_ext, built_zip, valid_tags, tmp_path):
    """Control for the test above: a zip without __init__.py is refused by the same command."""
    broken = tmp_path / "broken.zip"
    with zipfile.ZipFile(built_zip) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            if name != "__init__.py":
                dst.writestr(name, src.read(name))
    result = run_validate(blender_ext, broken, valid_tags)
    assert result.returncode != 0 and "__init__.py" in result.stdout


def test_build_cli(tmp_path):
    result = subprocess.run([sys.executable, os.path.join(REPO, "tools", "build_extension.py"),
                             "--output-dir", str(tmp_path)], stdout=subprocess.PIPE, universal_newlines=True,
                            timeout=120, check=True)
    assert "video_mocap-0.1.0.zip" in result.stdout
    assert (tmp_path / "video_mocap-0.1.0.zip").is_file()


# --------------------------------------------------------------------------- in bpy

def test_register_unregister_in_bpy(bpy_factory):
    bpy = bpy_factory
    import blender_mocap_addon
    from blender_mocap_addon import addon
    for _ in range(2):  # register twice in a row works: unregister leaves nothing behind
        blender_mocap_addon.register()
        assert all(cls.is_registered for cls in addon.CLASSES)
        blender_mocap_addon.unregister()
        assert not any(cls.is_registered for cls in addon.CLASSES)
    assert bpy.context.scene is not None


def test_install_zip_as_extension_in_bpy(bpy_factory, built_zip, blender_user_resources):
    bpy = bpy_factory
    repos = {r.module: r for r in bpy.context.preferences.extensions.repos}
    assert "user_default" in repos
    assert repos["user_default"].directory.startswith(blender_user_resources)  # never the user's own Blender

    result = bpy.ops.extensions.package_install_files(filepath=built_zip, repo="user_default",
                                                      enable_on_install=True)
    assert result == {"FINISHED"}
    module_name = "bl_ext.user_default.video_mocap"
    try:
        assert module_name in bpy.context.preferences.addons
        installed = sys.modules[module_name]
        assert os.path.dirname(installed.__file__).startswith(blender_user_resources)
        assert callable(installed.register)  # (Blender drops bl_info from extensions)
        posefile = importlib.import_module(module_name + ".core.posefile")  # relative imports resolve
        assert posefile.JOINT_NAMES[6] == "pelvis"
        addon = importlib.import_module(module_name + ".addon")
        assert all(cls.is_registered for cls in addon.CLASSES)
        for entry in ENTRY_POINTS:
            assert "{}.{}".format(module_name, entry[:-3]) not in sys.modules
    finally:
        repo_index = list(bpy.context.preferences.extensions.repos).index(repos["user_default"])
        assert bpy.ops.extensions.package_uninstall(repo_index=repo_index, pkg_id="video_mocap") == {"FINISHED"}
    assert module_name not in bpy.context.preferences.addons
    assert not os.path.exists(os.path.join(repos["user_default"].directory, "video_mocap"))
