"""Pose-file contract version 2: the optional world frame (world_from_camera), foot contacts and
meta["floor"]; version-1 files (one written by the version-1 module) still read."""

import json
from pathlib import Path

import numpy as np
import pytest

import posefile as pf
from posefile import PoseFileError
from test_posefile import sample

V1_FILE = Path(__file__).parent / "data" / "v1_sample.npz"   # written by posefile/format.py v1


def world_from_camera(height=1.6, pitch_deg=15.0, roll_deg=-4.0):
    """The contract's world frame for a camera at ``height`` m, looking ``pitch_deg`` below the
    horizon, rolled by ``roll_deg`` (image +x up when positive)."""
    p, r = np.radians(pitch_deg), np.radians(roll_deg)
    # Camera axes in the world: start level (x right = +X, y down = -Z, z forward = +Y),
    # roll about the optical axis, then pitch down about world X.
    level = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], float)   # columns: camera x, y, z in world
    roll = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    rx = np.array([[1, 0, 0], [0, np.cos(p), np.sin(p)], [0, -np.sin(p), np.cos(p)]])
    R = rx @ level @ roll.T
    T = np.eye(4)
    T[:3, :3], T[2, 3] = R, height
    return T.astype(np.float32)


def sample_v2(P=2, F=6, seed=0):
    """test_posefile's sample with a floor: world frame, contacts and meta["floor"]."""
    d = sample(P, F, seed, fps=30.0, image_size=(640, 480), meta={"floor": {
        "status": "estimated", "camera_height_m": 1.6, "pitch_deg": 15.0, "roll_deg": -4.0, "inliers": 40}})
    rng = np.random.default_rng(seed + 1)
    d.world_from_camera = world_from_camera()
    d.contacts = rng.uniform(size=(P, F, 2)) > 0.5
    d.contacts[~d.valid] = False
    return d


def test_helper_builds_the_contract_frame():
    T = world_from_camera(2.0, 20.0, 0.0).astype(np.float64)
    z_cam = T[:3, 2]
    assert z_cam[0] == pytest.approx(0, abs=1e-7) and z_cam[1] > 0          # looks along +Y ...
    assert np.degrees(np.arcsin(-z_cam[2])) == pytest.approx(20.0, abs=1e-4)  # ... 20 degrees down
    assert T[:3, 0] == pytest.approx([1, 0, 0], abs=1e-7)                  # image right = world +X
    pf.validate(pf.PoseData(**{**sample_v2().__dict__, "world_from_camera": T.astype(np.float32)}))


# --------------------------------------------------------------------------- version 1 files

def test_a_version_1_file_still_reads():
    d = pf.load(V1_FILE)
    assert d.format_version == 1
    assert d.world_from_camera is None and d.contacts is None
    assert d.joints3d.shape == (2, 5, 16, 3) and d.valid.sum() == 8 and d.person_ids.tolist() == [3, 10]
    assert d.fps == 25.0 and d.image_size == (640, 480) and "floor" not in d.meta
    assert pf.world_joints(d) is None


def test_a_version_1_file_is_written_back_as_version_2(tmp_path):
    d = pf.load(V1_FILE)
    pf.save(tmp_path / "again.npz", d)
    back = pf.load(tmp_path / "again.npz")
    assert back.format_version == 2 and d.format_version == 1   # save does not change its argument
    np.testing.assert_array_equal(back.joints3d, d.joints3d)
    np.testing.assert_array_equal(back.valid, d.valid)
    assert back.meta == d.meta


def test_version_1_files_ignore_version_2_keys(tmp_path):
    """Version 1 defined no optional keys; a reader of a version-1 file never returns them."""
    with np.load(V1_FILE) as z:
        arrays = dict(z)
    arrays["world_from_camera"] = np.eye(4, dtype=np.float32)   # not even rigid in the contract's sense
    path = tmp_path / "v1_extra.npz"
    np.savez(path, **arrays)
    d = pf.load(path)
    assert d.format_version == 1 and d.world_from_camera is None


def test_version_1_data_cannot_carry_version_2_keys():
    d = sample_v2()
    d.format_version = 1
    with pytest.raises(PoseFileError, match="version-2 keys"):
        pf.validate(d)


# --------------------------------------------------------------------------- round trips

def test_round_trip_with_world_frame_and_contacts(tmp_path):
    d = sample_v2()
    pf.save(tmp_path / "w.npz", d)
    back = pf.load(tmp_path / "w.npz")
    assert back.format_version == 2
    assert back.world_from_camera.dtype == np.float32 and back.world_from_camera.shape == (4, 4)
    np.testing.assert_array_equal(back.world_from_camera, d.world_from_camera)
    assert back.contacts.dtype == bool and back.contacts.shape == (2, 6, 2)
    np.testing.assert_array_equal(back.contacts, d.contacts)
    assert back.meta["floor"]["status"] == "estimated" and back.meta["floor"]["camera_height_m"] == 1.6
    with np.load(tmp_path / "w.npz") as z:
        assert int(z["format_version"]) == 2 and {"world_from_camera", "contacts"} <= set(z.files)


def test_absent_optional_keys_are_left_out_of_the_file(tmp_path):
    d = sample_v2()
    d.world_from_camera = d.contacts = None
    d.meta = {"floor": {"status": "no_feet", "camera_height_m": None, "pitch_deg": None,
                        "roll_deg": None, "inliers": 0, "message": "no feet seen"}}
    pf.save(tmp_path / "n.npz", d)
    with np.load(tmp_path / "n.npz") as z:
        assert "world_from_camera" not in z.files and "contacts" not in z.files
    back = pf.load(tmp_path / "n.npz")
    assert back.world_from_camera is None and back.contacts is None
    assert back.meta["floor"]["status"] == "no_feet"


def test_world_frame_without_contacts_is_allowed(tmp_path):
    d = sample_v2()
    d.contacts = None
    pf.save(tmp_path / "w.npz", d)
    assert pf.load(tmp_path / "w.npz").contacts is None


def test_write_posefile_takes_the_new_keys(tmp_path):
    d = sample_v2()
    written = pf.write_posefile(
        tmp_path / "w.npz", joints3d=d.joints3d, joints2d=d.joints2d, scores=d.scores, valid=d.valid,
        person_ids=d.person_ids, fps=d.fps, image_size=d.image_size, camera_K=d.camera_K, meta=d.meta,
        world_from_camera=d.world_from_camera.astype(np.float64), contacts=d.contacts.astype(np.uint8))
    assert written.world_from_camera.dtype == np.float32 and written.contacts.dtype == bool
    back = pf.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(back.contacts, d.contacts)


def test_world_joints_puts_the_floor_at_z_0():
    d = sample_v2(P=1, F=1)
    T = d.world_from_camera.astype(np.float64)
    # A camera-frame point on the floor: on the ray through the image centre, at its floor hit.
    z_cam = T[:3, 2]
    depth = T[2, 3] / -z_cam[2]
    d.joints3d[0, 0, 0] = [0, 0, depth]
    W = pf.world_joints(d)
    assert W.shape == d.joints3d.shape and W.dtype == np.float32
    assert W[0, 0, 0, 2] == pytest.approx(0.0, abs=1e-5) and W[0, 0, 0, 0] == pytest.approx(0.0, abs=1e-5)
    assert W[0, 0, 0, 1] == pytest.approx(T[2, 3] / np.tan(np.radians(15.0)), rel=1e-5)


# --------------------------------------------------------------------------- bad version-2 data

YAW_30 = np.array([[np.cos(0.5), -np.sin(0.5), 0], [np.sin(0.5), np.cos(0.5), 0], [0, 0, 1]])  # about world Z


def _bad_T(edit):
    T = world_from_camera().astype(np.float64)
    edit(T)
    return T.astype(np.float32)


@pytest.mark.parametrize("T, match", [
    (_bad_T(lambda T: T[:3, :3].__imul__(1.1)), "not rigid"),                     # scaled
    (_bad_T(lambda T: T[:3, 0].__imul__(-1)), "not rigid"),                       # mirrored (det -1)
    (_bad_T(lambda T: T[3].__setitem__(0, 0.5)), "last row"),
    (_bad_T(lambda T: T[:3, 3].__setitem__(0, 0.3)), r"\(0, 0, h\)"),             # camera not above the origin
    (_bad_T(lambda T: T[2].__setitem__(3, -1.0)), r"h > 0"),                      # camera under the floor
    (_bad_T(lambda T: T[:3, :3].__setitem__(slice(None), YAW_30 @ T[:3, :3])), "viewing direction"),
    (_bad_T(lambda T: T[1].__setitem__(1, np.nan)), "NaN"),
    (world_from_camera().astype(np.float64), "dtype float32"),
    (world_from_camera()[:3], "shape"),
])
def test_bad_world_from_camera(tmp_path, T, match):
    d = sample_v2()
    d.world_from_camera = T
    with pytest.raises(PoseFileError, match=match):
        pf.validate(d)
    arrays = pf.to_arrays(sample_v2())
    arrays["world_from_camera"] = T
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(PoseFileError, match=match) as info:
        pf.load(path)
    assert str(path) in str(info.value)


def test_bad_contacts():
    d = sample_v2()
    d.contacts = d.contacts[:, :, :1]
    with pytest.raises(PoseFileError, match="shape"):
        pf.validate(d)
    d = sample_v2()
    d.contacts = d.contacts.astype(np.uint8)
    with pytest.raises(PoseFileError, match="dtype bool"):
        pf.validate(d)
    d = sample_v2()
    d.contacts[1, 0, 1] = True          # person 1 is absent in frame 0
    with pytest.raises(PoseFileError, match="valid is False .person index 1, frame 0"):
        pf.validate(d)
    d = sample_v2()
    d.world_from_camera = None
    d.meta = {}
    with pytest.raises(PoseFileError, match="only together with 'world_from_camera'"):
        pf.validate(d)


@pytest.mark.parametrize("floor, with_world, match", [
    ({"status": "flat"}, True, "status"),
    ("estimated", True, "JSON object"),
    ({"status": "no_feet"}, True, "world_from_camera is set"),
    ({"status": "estimated"}, False, "world_from_camera is absent"),
])
def test_bad_floor_meta(floor, with_world, match):
    d = sample_v2()
    d.meta = {"floor": floor}
    if not with_world:
        d.world_from_camera = d.contacts = None
    with pytest.raises(PoseFileError, match=match):
        pf.validate(d)


@pytest.mark.parametrize("status", pf.FLOOR_STATUSES)
def test_every_floor_status_is_accepted(status):
    d = sample_v2()
    d.meta = {"floor": {"status": status}}
    if status != "estimated":
        d.world_from_camera = d.contacts = None
    pf.validate(d)
    json.dumps(d.meta)
