"""Real BVH clips read straight from the shared mocap archives, for tests."""
from __future__ import annotations

import os
import tarfile

import pytest

from data import mocap
from data.bvh import parse_bvh


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


def tiny_mocap_set() -> mocap.MocapSet:
    """Two 100-frame clips (one train, one test) of random poses walking away along z."""
    import numpy as np

    n = 200
    t = np.arange(n)
    root = np.stack([np.zeros(n), np.full(n, 0.9), t * 0.04], -1).astype(np.float32)
    rel = np.random.default_rng(1).normal(0, 0.3, (n, 16, 3)).astype(np.float16)
    rel[:, 6] = 0
    return mocap.MocapSet(root, rel, np.array([0, 100]), np.array([100, 100]), np.array(["a", "b"]),
                          np.array(["x", "x"]), np.array(["train", "test"]), np.array([30.0, 30.0]))
