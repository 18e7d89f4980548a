"""Real BVH clips read straight from the shared mocap archives, for tests."""
from __future__ import annotations

import os
import tarfile

import pytest

from inference.training import mocap
from inference.training.bvh import parse_bvh


def archive_bvh(archive: str, suffix: str):
    """-> (member name, parsed BVH) of the first file in `archive` whose name ends with
    `suffix`; skips the test when the shared data or the file is not there."""
    path = os.path.join(mocap.default_data_dir(), archive)
    if not os.path.exists(path):
        pytest.skip("shared mocap data not available")
    with tarfile.open(path) as tf:
        for m in tf:
            if m.name.endswith(suffix):
                return m.name, parse_bvh(tf.extractfile(m).read().decode("ascii"))
    pytest.skip(f"{suffix} not in {archive}")
