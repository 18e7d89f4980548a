"""Pose-file contract (v1 keys, written as version 2): round trips, atomic writes, and one test per way
a file can be bad. Version 2's optional keys and reading version-1 files: test_posefile_v2.py."""

import json
import os
import zipfile

import numpy as np
import pytest

import posefile as pf
from posefile import PoseFileError


def sample(P=2, F=5, seed=0, fps=29.97, image_size=(1768, 994), meta=None):
    """Two people over five frames; person 1 is missing in frames 0-1 (NaN joints there)."""
    rng = np.random.default_rng(seed)
    d = pf.empty(P, F, fps=fps, image_size=image_size,
                 meta={"source": "clip.mp4", "weights": {"2d": "ab12"}} if meta is None else meta)
    d.valid[:] = True
    if P > 1:
        d.valid[1, :2] = False
    d.joints3d[d.valid] = rng.normal(0, 0.3, (d.valid.sum(), pf.NUM_JOINTS, 3)).astype(np.float32) + [0, 0, 4]
    d.joints2d[d.valid] = rng.uniform(0, 900, (d.valid.sum(), pf.NUM_JOINTS, 2)).astype(np.float32)
    d.scores[d.valid] = rng.uniform(0, 1, (d.valid.sum(), pf.NUM_JOINTS)).astype(np.float32)
    d.person_ids[:] = np.arange(P, dtype=np.int32) * 7 + 3
    return d


def raw(data):
    """The npz members of ``data``, to be tampered with."""
    return pf.to_arrays(data)


def write_raw(path, arrays, compressed=True):
    with open(path, "wb") as fh:
        (np.savez_compressed if compressed else np.savez)(fh, **arrays)
    return path


def assert_same(a, b):
    for key in ("joints3d", "joints2d", "scores", "valid", "person_ids", "camera_K"):
        x, y = getattr(a, key), getattr(b, key)
        assert x.dtype == y.dtype and x.shape == y.shape, key
        np.testing.assert_array_equal(x, y, err_msg=key)  # NaN == NaN for assert_array_equal
    assert a.fps == b.fps and a.image_size == b.image_size and a.meta == b.meta
    assert a.joint_names == b.joint_names == pf.JOINT_NAMES


# --------------------------------------------------------------------------- constants

def test_joint_names_follow_the_contract():
    assert pf.JOINT_NAMES == (
        "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax", "neck",
        "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist")
    assert pf.NUM_JOINTS == 16 and pf.JOINT_INDEX["pelvis"] == 6


def test_parents_form_a_tree_rooted_at_pelvis():
    parents = pf.PARENTS
    assert len(parents) == pf.NUM_JOINTS
    assert [j for j, p in enumerate(parents) if p < 0] == [pf.JOINT_INDEX["pelvis"]]
    for j in range(pf.NUM_JOINTS):  # every joint reaches the root without a cycle
        seen, k = set(), j
        while parents[k] >= 0:
            assert k not in seen
            seen.add(k)
            k = parents[k]
        assert k == pf.JOINT_INDEX["pelvis"]
    name = pf.JOINT_NAMES
    edges = {(name[parents[j]], name[j]) for j in range(pf.NUM_JOINTS) if parents[j] >= 0}
    assert edges == {
        ("pelvis", "r_hip"), ("r_hip", "r_knee"), ("r_knee", "r_ankle"),
        ("pelvis", "l_hip"), ("l_hip", "l_knee"), ("l_knee", "l_ankle"),
        ("pelvis", "thorax"), ("thorax", "neck"), ("neck", "head_top"),
        ("thorax", "r_shoulder"), ("r_shoulder", "r_elbow"), ("r_elbow", "r_wrist"),
        ("thorax", "l_shoulder"), ("l_shoulder", "l_elbow"), ("l_elbow", "l_wrist"),
    }


def test_empty_has_contract_dtypes_and_shapes():
    d = pf.empty(3, 7)
    assert d.joints3d.shape == (3, 7, 16, 3) and d.joints3d.dtype == np.float32
    assert d.joints2d.shape == (3, 7, 16, 2) and d.joints2d.dtype == np.float32
    assert d.scores.shape == (3, 7, 16) and d.scores.dtype == np.float32
    assert d.valid.shape == (3, 7) and d.valid.dtype == bool and not d.valid.any()
    assert d.person_ids.dtype == np.int32 and d.person_ids.tolist() == [0, 1, 2]
    assert d.num_people == 3 and d.num_frames == 7
    pf.validate(d)  # nobody present: NaN joints are allowed


# --------------------------------------------------------------------------- round trips

def test_round_trip_keeps_everything(tmp_path):
    d = sample()
    pf.save(tmp_path / "a.npz", d)
    back = pf.load(tmp_path / "a.npz")
    assert_same(d, back)
    assert back.format_version == pf.FORMAT_VERSION == 2
    assert back.world_from_camera is None and back.contacts is None
    assert np.isnan(back.joints3d[1, 0]).all()  # undefined rows survive as they were


def test_round_trip_without_people_and_frames(tmp_path):
    for P, F in ((0, 10), (1, 0), (0, 0)):
        d = pf.empty(P, F)
        pf.save(tmp_path / "e.npz", d)
        assert_same(d, pf.load(tmp_path / "e.npz"))


def test_write_posefile_converts_dtypes(tmp_path):
    d = sample()
    written = pf.write_posefile(
        tmp_path / "w.npz", joints3d=d.joints3d.astype(np.float64), joints2d=d.joints2d.astype(np.float64),
        scores=d.scores.astype(np.float64), valid=d.valid.astype(np.int8), person_ids=d.person_ids.tolist(),
        fps=30, image_size=[1768, 994], camera_K=d.camera_K.astype(np.float64), meta={"a": 1})
    back = pf.load(tmp_path / "w.npz")
    assert_same(written, back)
    assert back.joints3d.dtype == np.float32 and back.valid.dtype == bool and back.fps == 30.0


def test_file_members_have_the_contract_dtypes(tmp_path):
    pf.save(tmp_path / "a.npz", sample())
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert z["format_version"].shape == () and z["format_version"].dtype.kind == "i"
        assert z["joint_names"].dtype.kind == "U" and z["joint_names"].shape == (16,)
        assert z["joints3d"].dtype == np.float32 and z["valid"].dtype == bool
        assert z["person_ids"].dtype == np.int32 and z["camera_K"].dtype == np.float32
        assert z["image_size"].tolist() == [1768, 994]
        assert json.loads(str(z["meta"])) == {"source": "clip.mp4", "weights": {"2d": "ab12"}}


# --------------------------------------------------------------------------- atomic writing

def test_save_replaces_an_existing_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "a.npz"
    pf.save(path, sample(seed=1))
    pf.save(path, sample(seed=2))
    assert_same(pf.load(path), sample(seed=2))
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]


def test_crash_during_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.npz"
    pf.save(path, sample(seed=1))
    before = path.read_bytes()

    def crash(fh, **arrays):
        fh.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(PoseFileError, match="disk full"):
        pf.save(path, sample(seed=2))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.npz"]


def test_save_refuses_invalid_data_and_writes_nothing(tmp_path):
    d = sample()
    d.joints3d = d.joints3d.astype(np.float64)
    with pytest.raises(PoseFileError, match="joints3d.*float32"):
        pf.save(tmp_path / "a.npz", d)
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------- bad files

def load_error(path):
    with pytest.raises(PoseFileError) as info:
        pf.load(path)
    message = str(info.value)
    assert str(path) in message  # the message names the file
    return message


@pytest.mark.parametrize("version", [0, 3, 7])
def test_unknown_format_version(tmp_path, version):
    arrays = raw(sample())
    arrays["format_version"] = np.array(version)
    message = load_error(write_raw(tmp_path / "v.npz", arrays))
    assert f"unsupported format_version {version}" in message and "versions 1, 2" in message


@pytest.mark.parametrize("key", ["format_version", "joints3d", "joints2d", "scores", "valid", "person_ids",
                                 "fps", "image_size", "camera_K", "meta", "joint_names"])
def test_missing_key(tmp_path, key):
    arrays = raw(sample())
    del arrays[key]
    message = load_error(write_raw(tmp_path / "m.npz", arrays))
    assert key in message and "missing" in message


@pytest.mark.parametrize("key,bad", [
    ("joints3d", lambda a: a[:, :-1]),            # one frame short
    ("joints2d", lambda a: a[..., :1]),           # one coordinate
    ("scores", lambda a: a[:, :, :14]),           # 14 joints
    ("valid", lambda a: a[:1]),                   # one person
    ("person_ids", lambda a: a[:1]),
    ("image_size", lambda a: np.array([1768, 994, 3])),
    ("camera_K", lambda a: a[:2]),
])
def test_shape_disagreement(tmp_path, key, bad):
    arrays = raw(sample())
    arrays[key] = bad(arrays[key])
    message = load_error(write_raw(tmp_path / "s.npz", arrays))
    assert "shape" in message


def test_nan_in_scores(tmp_path):
    arrays = raw(sample())
    arrays["scores"][1, 0, 3] = np.nan  # even in a frame where the person is absent
    assert "scores" in load_error(write_raw(tmp_path / "n.npz", arrays))


@pytest.mark.parametrize("key", ["joints3d", "joints2d"])
def test_nan_in_joints_where_valid(tmp_path, key):
    arrays = raw(sample())
    arrays[key][0, 4, 9, 1] = np.nan
    message = load_error(write_raw(tmp_path / "n.npz", arrays))
    assert key in message and "person index 0, frame 4" in message


def test_scores_out_of_range(tmp_path):
    arrays = raw(sample())
    arrays["scores"][0, 0, 0] = 1.5
    assert "0..1" in load_error(write_raw(tmp_path / "r.npz", arrays))


@pytest.mark.parametrize("key,value", [
    ("joints3d", lambda a: a.astype(np.float64)),
    ("joints2d", lambda a: a.astype(np.float16)),
    ("scores", lambda a: a.astype(np.float64)),
    ("valid", lambda a: a.astype(np.uint8)),
    ("person_ids", lambda a: a.astype(np.float32)),
    ("camera_K", lambda a: a.astype(np.float64)),
    ("image_size", lambda a: a.astype(np.float32)),
    ("format_version", lambda a: np.array(1.0)),
    ("fps", lambda a: np.array("30")),
])
def test_wrong_dtype(tmp_path, key, value):
    arrays = raw(sample())
    arrays[key] = value(arrays[key])
    message = load_error(write_raw(tmp_path / "d.npz", arrays))
    assert key in message and "dtype" in message


def test_duplicate_person_ids(tmp_path):
    arrays = raw(sample())
    arrays["person_ids"][:] = 5
    assert "unique" in load_error(write_raw(tmp_path / "u.npz", arrays))


def test_wrong_joint_order(tmp_path):
    arrays = raw(sample())
    arrays["joint_names"] = arrays["joint_names"][::-1]
    assert "joint_names" in load_error(write_raw(tmp_path / "j.npz", arrays))


@pytest.mark.parametrize("text", ["{not json", "[1, 2]"])
def test_bad_meta(tmp_path, text):
    arrays = raw(sample())
    arrays["meta"] = np.array(text)
    assert "meta" in load_error(write_raw(tmp_path / "meta.npz", arrays))


@pytest.mark.parametrize("fps", [0.0, -5.0, np.nan])
def test_bad_fps(tmp_path, fps):
    arrays = raw(sample())
    arrays["fps"] = np.array(fps)
    assert "fps" in load_error(write_raw(tmp_path / "f.npz", arrays))


def test_truncated_file(tmp_path):
    path = tmp_path / "a.npz"
    pf.save(path, sample())
    data = path.read_bytes()
    for cut in (len(data) // 2, len(data) - 10, 30):
        path.write_bytes(data[:cut])
        load_error(path)


def test_corrupt_member(tmp_path):
    path = write_raw(tmp_path / "c.npz", raw(sample()), compressed=False)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("joints3d.npy")
    data = bytearray(path.read_bytes())
    middle = info.header_offset + 100 + info.compress_size // 2  # inside the stored array bytes
    data[middle:middle + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))
    message = load_error(path)
    assert "corrupt" in message or "CRC" in message


def test_compressed_member_corrupted(tmp_path):
    path = tmp_path / "z.npz"
    pf.save(path, sample(P=3, F=40))
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("joints3d.npy")
    data = bytearray(path.read_bytes())
    middle = info.header_offset + 60 + info.compress_size // 2
    data[middle:middle + 16] = bytes(range(16))
    path.write_bytes(bytes(data))
    load_error(path)


def test_not_an_npz(tmp_path):
    text = tmp_path / "t.npz"
    text.write_text("hello, this is no zip")
    load_error(text)
    npy = tmp_path / "single.npy"
    np.save(npy, np.zeros(3))
    assert "not an .npz" in load_error(npy)


def test_pickled_object_array_is_refused(tmp_path):
    arrays = raw(sample())
    arrays["meta"] = np.array([{"a": 1}], dtype=object)
    path = tmp_path / "p.npz"
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # np.savez pickles object arrays
    load_error(path)


def test_missing_file(tmp_path):
    assert "no such file" in load_error(tmp_path / "nothing.npz")


def test_validate_rejects_non_posedata():
    with pytest.raises(PoseFileError, match="PoseData"):
        pf.validate({"joints3d": np.zeros((1, 1, 16, 3))})
