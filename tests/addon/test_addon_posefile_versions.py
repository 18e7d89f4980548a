"""The add-on reads both pose-file versions (bpy): a version-1 file written by the version-1
module, and a version-2 file with a world frame and contacts (the fields the add-on may use)."""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("BLENDER_USER_RESOURCES", tempfile.mkdtemp(prefix="mocap_bur_"))
bpy = pytest.importorskip("bpy")

from blender_mocap_addon.blender import import_posefile  # noqa: E402
from blender_mocap_addon.core import synthetic  # noqa: E402
from blender_mocap_addon.core.contract import posefile  # noqa: E402

pytestmark = pytest.mark.blender
V1_FILE = Path(__file__).parents[1] / "posefile" / "data" / "v1_sample.npz"


@pytest.fixture(autouse=True)
def empty_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    yield bpy.context.scene


def test_imports_a_version_1_file():
    res = import_posefile.load(str(V1_FILE), import_posefile.ImportOptions(), report=lambda m: None)
    assert res.person_ids == [3, 10] and len(res.armatures) == 2 and res.frame_end - res.frame_start == 4


def test_imports_a_version_2_file_with_world_frame_and_contacts(tmp_path):
    arr = synthetic.pose_arrays(2, 30)
    T = np.eye(4, dtype=np.float32)   # camera 1.5 m above the floor, looking level along +Y
    T[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]
    T[2, 3] = 1.5
    contacts = np.zeros(arr["valid"].shape + (2,), bool)
    contacts[..., 0] = arr["valid"]
    meta = {"floor": {"status": "estimated", "camera_height_m": 1.5, "pitch_deg": 0.0, "roll_deg": 0.0,
                      "inliers": 60}}
    arr["meta"] = meta
    posefile.write_posefile(str(tmp_path / "v2.npz"), **arr, world_from_camera=T, contacts=contacts)
    assert posefile.load(str(tmp_path / "v2.npz")).format_version == 2
    res = import_posefile.load(str(tmp_path / "v2.npz"), import_posefile.ImportOptions(), report=lambda m: None)
    assert len(res.armatures) == 2 and res.frame_end - res.frame_start == 29
