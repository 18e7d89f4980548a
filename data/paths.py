"""Where the training and evaluation data live.

Every reader's default comes from here: ``$VIDEO_MOCAP_DATA`` when set, else ``shared/data``
beside the checkout (``../shared/data`` seen from the repository root). Command-line options
(``--data``, ``--mocap``, ...) override both.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "VIDEO_MOCAP_DATA"
_CHECKOUT = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    """The data folder: ``$VIDEO_MOCAP_DATA``, else ``<checkout>/../shared/data``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else _CHECKOUT.parent / "shared" / "data"


def data_path(name: str) -> str:
    """A data set's folder under the data root, e.g. ``data_path("lsp")``."""
    return str(data_root() / name)
