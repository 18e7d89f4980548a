"""Shipped weights: `weights/<name>.<ext>` beside a manifest `weights/<name>.json`
({"kind", "file", "sha256", "config", "data", "eval", ...}; see shared README).

Where weights are looked for: an explicit path, else $MOCAP_WEIGHTS (a folder), else the
repository's `weights/` folder.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

REPO_WEIGHTS = Path(__file__).resolve().parents[2] / "weights"


class WeightsError(Exception):
    """Weights are missing, corrupt, or do not match their manifest."""


def weights_dir() -> Path:
    env = os.environ.get("MOCAP_WEIGHTS")
    return Path(env) if env else REPO_WEIGHTS


def sha256_of(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def manifest_path(name_or_path: str | os.PathLike) -> Path:
    """A manifest path from a name ('pose_fast'), a manifest path, or a weights file path."""
    p = Path(name_or_path)
    if p.suffix == ".json":
        return p
    if p.suffix:  # a weights file: its manifest sits beside it
        return p.with_suffix(".json")
    return weights_dir() / f"{p.name}.json"


def load_manifest(name_or_path: str | os.PathLike, kind: str | None = None, verify: bool = True) -> dict:
    """Read and check a manifest; returns it with 'path' set to the weights file."""
    mpath = manifest_path(name_or_path)
    hint = ("Weights ship in the repository's weights/ folder; restore it with "
            "`git checkout -- weights`, point --weights at a manifest, or set MOCAP_WEIGHTS.")
    if not mpath.is_file():
        raise WeightsError(f"weights manifest not found: {mpath}. {hint}")
    try:
        manifest = json.loads(mpath.read_text())
    except (OSError, ValueError) as e:
        raise WeightsError(f"weights manifest {mpath} is unreadable ({e}). {hint}") from e
    for key in ("kind", "file", "sha256", "config"):
        if key not in manifest:
            raise WeightsError(f"weights manifest {mpath} lacks '{key}'. {hint}")
    if kind is not None and manifest["kind"] != kind:
        raise WeightsError(f"{mpath} holds '{manifest['kind']}' weights, expected '{kind}'")
    wpath = mpath.parent / manifest["file"]
    if not wpath.is_file():
        raise WeightsError(f"weights file missing: {wpath} (named by {mpath}). {hint}")
    if verify:
        digest = sha256_of(wpath)
        if digest != manifest["sha256"]:
            raise WeightsError(f"weights file {wpath} is corrupt or was replaced: sha256 {digest[:12]}... "
                               f"does not match the manifest's {manifest['sha256'][:12]}... {hint}")
    manifest["path"] = str(wpath)
    return manifest


def write_manifest(weights_file: str | os.PathLike, kind: str, config: dict, data: str,
                   eval_: dict | None = None, **extra) -> Path:
    """Write `<weights_file stem>.json` with the file's sha256; returns the manifest path."""
    wpath = Path(weights_file)
    manifest = {"kind": kind, "file": wpath.name, "sha256": sha256_of(wpath), "config": config,
                "data": data, "eval": eval_ or {}, **extra}
    return save_manifest(wpath.with_suffix(".json"), manifest)


def save_manifest(mpath: str | os.PathLike, manifest: dict) -> Path:
    """Write a manifest dict atomically (a temporary file, then a rename); returns its path."""
    mpath = Path(mpath)
    tmp = mpath.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, mpath)
    return mpath


def load_state_dict(manifest: dict):
    """The torch state dict of a checked manifest, as float32."""
    import torch  # lazy: the pipeline imports this module at its top, and the CLI's --help must not load torch

    try:
        state = torch.load(manifest["path"], map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many types for a bad file
        raise WeightsError(f"cannot read weights {manifest['path']}: {e}") from e
    return {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}


def save_state_dict(state: dict, path: str | os.PathLike, fp16: bool = True) -> Path:
    """Save a state dict (floating tensors as fp16 to halve the file) atomically."""
    import torch  # lazy: the pipeline imports this module at its top, and the CLI's --help must not load torch

    path = Path(path)
    out = {k: (v.detach().half() if fp16 and v.is_floating_point() else v.detach()).cpu()
           for k, v in state.items()}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(out, tmp)
    os.replace(tmp, path)
    return path
