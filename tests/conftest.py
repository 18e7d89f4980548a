"""Shared pytest setup for the whole suite.

- The repository root is importable (``inference``, ``blender_mocap_addon``, ``install_deps``), and
  so are the helper modules in ``tests/`` (``engine_media``, ``engine_weights``, ...) from the test
  folders that mirror the packages.
- ``BLENDER_USER_RESOURCES`` points to a temporary folder for the whole session, set before any
  test imports bpy, so tests never read or write the user's Blender config or extensions.
- Tests marked ``gpu`` are skipped without CUDA; tests marked ``blender`` are skipped without bpy.
- Fixture ``bpy_factory``: bpy with factory settings and an empty scene, fresh for each test.
"""

import importlib.util
import os
import shutil
import sys
import tempfile

import pytest

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
for _path in (TESTS, REPO):  # REPO ends up first
    if _path not in sys.path:
        sys.path.insert(0, _path)

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# ONNX files built from the weights (inference/models/runtime.py) go to a cache of this session,
# never into the user's cache; removed at the end.
_ONNX_CACHE = tempfile.mkdtemp(prefix="mocap-onnx-cache-")
os.environ["MOCAP_ONNX_CACHE"] = _ONNX_CACHE

# Set at import time of this conftest: earlier than any test module (which may import bpy).
_SAVED_USER_RESOURCES = os.environ.get("BLENDER_USER_RESOURCES")
BLENDER_USER_RESOURCES = tempfile.mkdtemp(prefix="mocap-blender-user-")
os.environ["BLENDER_USER_RESOURCES"] = BLENDER_USER_RESOURCES
# install_deps.py records the engine for the add-on (runner/engine_settings.py): never in the
# user's configuration folder from a test
os.environ["MOCAP_ENGINE_SETTINGS"] = os.path.join(BLENDER_USER_RESOURCES, "engine.json")


def pytest_unconfigure(config):
    shutil.rmtree(BLENDER_USER_RESOURCES, ignore_errors=True)
    shutil.rmtree(_ONNX_CACHE, ignore_errors=True)
    if _SAVED_USER_RESOURCES is None:
        os.environ.pop("BLENDER_USER_RESOURCES", None)
    else:
        os.environ["BLENDER_USER_RESOURCES"] = _SAVED_USER_RESOURCES


def has_bpy():
    return importlib.util.find_spec("bpy") is not None


def has_cuda():
    if importlib.util.find_spec("torch") is None:
        return False
    import torch
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config, items):
    needs_gpu = [item for item in items if item.get_closest_marker("gpu")]
    if needs_gpu and not has_cuda():
        skip = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
        for item in needs_gpu:
            item.add_marker(skip)
    needs_bpy = [item for item in items if item.get_closest_marker("blender")]
    if needs_bpy and not has_bpy():
        skip = pytest.mark.skip(reason="needs bpy (pip install bpy==5.0.1, or run inside Blender)")
        for item in needs_bpy:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def blender_user_resources():
    """The temporary BLENDER_USER_RESOURCES folder of this test session."""
    return BLENDER_USER_RESOURCES


@pytest.fixture
def bpy_factory(blender_user_resources):
    """bpy after ``read_factory_settings(use_empty=True)``: default preferences, empty scene."""
    bpy = pytest.importorskip("bpy")
    assert os.environ["BLENDER_USER_RESOURCES"] == blender_user_resources
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy
