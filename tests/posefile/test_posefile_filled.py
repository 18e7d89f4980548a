"""The optional ``filled`` key (version 2, added after the first version-2 files): which valid
frames the engine interpolated. Older files (version 1, and version 2 written before the key
existed) still read, with ``filled`` None."""
from pathlib import Path

import numpy as np
import pytest

import posefile as pf
from posefile import PoseFileError
from test_posefile import raw, sample, write_raw
from test_posefile_v2 import sample_v2

DATA = Path(__file__).parent / "data"
V1_FILE = DATA / "v1_sample.npz"                  # written by posefile/format.py, version 1
V2_OLD_FILE = DATA / "v2_before_filled.npz"       # written by the version-2 module before 'filled'


def with_filled(d):
    d.filled = np.zeros(d.valid.shape, bool)
    d.filled[0, 2:4] = True                       # person 0 interpolated on frames 2..3
    return d


def test_round_trip(tmp_path):
    d = with_filled(sample())
    pf.save(tmp_path / "f.npz", d)
    back = pf.load(tmp_path / "f.npz")
    assert back.format_version == 2 and back.filled.dtype == bool and back.filled.shape == d.valid.shape
    np.testing.assert_array_equal(back.filled, d.filled)
    with np.load(tmp_path / "f.npz") as z:
        assert "filled" in z.files


def test_left_out_when_absent(tmp_path):
    pf.save(tmp_path / "n.npz", sample())
    with np.load(tmp_path / "n.npz") as z:
        assert "filled" not in z.files
    assert pf.load(tmp_path / "n.npz").filled is None


def test_older_files_read_without_it(tmp_path):
    old = pf.load(V2_OLD_FILE)
    assert old.format_version == 2 and old.filled is None
    assert old.world_from_camera is not None and old.contacts is not None
    v1 = pf.load(V1_FILE)
    assert v1.format_version == 1 and v1.filled is None
    # a version-1 file carrying a 'filled' member: version 1 had no such key, it is ignored
    arrays = dict(np.load(V1_FILE))
    arrays["filled"] = np.ones(arrays["valid"].shape, bool)
    assert pf.load(write_raw(tmp_path / "v1x.npz", arrays)).filled is None
    # written again, the old version-2 file stays without it
    pf.save(tmp_path / "again.npz", old)
    assert pf.load(tmp_path / "again.npz").filled is None


def test_this_reader_skips_keys_it_does_not_know(tmp_path):
    """What lets a later optional key stay within version 2: readers read only known keys."""
    arrays = raw(with_filled(sample()))
    arrays["some_later_key"] = np.arange(3)
    d = pf.load(write_raw(tmp_path / "later.npz", arrays))
    assert d.filled is not None and d.filled.sum() == 2


def test_with_world_frame_and_write_posefile(tmp_path):
    d = with_filled(sample_v2())
    written = pf.write_posefile(
        tmp_path / "w.npz", joints3d=d.joints3d, joints2d=d.joints2d, scores=d.scores, valid=d.valid,
        person_ids=d.person_ids, fps=d.fps, image_size=d.image_size, camera_K=d.camera_K, meta=d.meta,
        world_from_camera=d.world_from_camera, contacts=d.contacts, filled=d.filled.astype(np.uint8))
    assert written.filled.dtype == bool
    back = pf.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(back.filled, d.filled)
    np.testing.assert_array_equal(back.contacts, d.contacts)


@pytest.mark.parametrize("change, match", [
    (lambda d: setattr(d, "filled", d.filled.astype(np.uint8)), "'filled' must have dtype bool"),
    (lambda d: setattr(d, "filled", d.filled[:, :-1]), r"'filled' has shape \(2, 4\)"),
    (lambda d: setattr(d, "filled", d.filled.tolist()), "'filled' must be an array"),
    (lambda d: d.filled.__setitem__((1, 0), True),
     r"'filled' is True where valid is False \(person index 1, frame 0\)"),
    (lambda d: setattr(d, "format_version", 1), "version-2 keys"),
])
def test_bad_filled(change, match, tmp_path):
    d = with_filled(sample())
    change(d)
    with pytest.raises(PoseFileError, match=match):
        pf.validate(d)
    with pytest.raises(PoseFileError):
        pf.save(tmp_path / "bad.npz", d)
    assert not (tmp_path / "bad.npz").exists()
