"""Where the heatmap networks (pose and detector) run: PyTorch or ONNX Runtime, behind one interface.

    net, manifest = load_network("pose_fast", "2d", device="auto", runtime="auto")
    maps = net(batch_bgr)            # (N, S, S, 3) uint8 BGR -> (N, C, S/4, S/4) float32
    net.runtime, net.device          # what runs: "torch" | "onnx", "cpu" | "cuda"

Both runtimes compute the same network: the shipped PyTorch weights (sha256-checked against their
manifest) with every BatchNorm that follows a convolution folded into it, last stack's maps only.

* ``torch``: the folded module in eager mode (channels-last on the CPU); the only choice on CUDA.
* ``onnx``: ONNX Runtime's CPU provider on an ONNX file exported from those same checked weights.
  The ONNX files are not shipped: each is built once (at install, ``python -m
  inference.models.runtime --build``, or on first use; about a second each) into a cache folder
  (``$MOCAP_ONNX_CACHE``, else ``$XDG_CACHE_HOME/video-mocap/onnx``, else
  ``~/.cache/video-mocap/onnx``) as ``<weights stem>-<weights sha256[:16]>.onnx`` beside a record
  ``....onnx.json`` holding the ONNX file's own sha256, the weights' sha256, the exporter and the
  largest difference to PyTorch measured when it was built. Every load checks the ONNX file
  against its record and the record against the manifest: a mismatch is a ``WeightsError`` that
  says which file to delete, never a silent fallback. (Why a cache and not files in git: docs/runtime.md.)
* ``onnx-int8``: as ``onnx``, except that a pose network with a shipped int8 file
  (``weights/<stem>_int8.onnx`` and its manifest ``<stem>_int8.json``, kind '2d-int8'; only the
  balanced network has one, built by ``python -m training.quantize_pose``) runs that file. The
  manifest holds the file's sha256 and the sha256 of the fp32 weights it was built from: both are
  checked on every load (``WeightsError`` on a mismatch). Other networks run their fp32 ONNX file.
  An int8 manifest with its own ``gate`` (``quantize_pose --own-gate``; the shipped one has none)
  replaces the pose manifest's gate while the int8 file runs.
* ``auto``: ``onnx`` on the CPU when onnxruntime is installed, else ``torch`` (and ``torch`` on
  CUDA). ``onnx`` asked for without onnxruntime is an ``InferenceError`` with one clear message.

``python -m inference.models.runtime --build [--weights DIR]`` builds (or checks) the ONNX files of
every pose and detector manifest in the weights folder; ``install_deps.py`` runs it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

from inference.errors import InferenceError
from inference.models.hourglass_config import HourglassConfig
from inference.models.lifter_features import N_FEAT, receptive_field
from inference.models.preprocess import to_array
from inference.models.weights import load_manifest, sha256_of, weights_dir, WeightsError

RUNTIMES = ("auto", "torch", "onnx", "onnx-int8")
INT8_KIND = "2d-int8"                 # the manifest kind of a shipped int8 pose network (check_int8)
ONNX_KINDS = ("2d", "detector", "3d")  # manifests whose networks ONNX Runtime can run (3d: the lifter)
ONNX_OPSET = 17
# What the export writes; a cached file of an older export is rebuilt (2: constant upsampling
# scales, docs/runtime.md).
EXPORT_VERSION = 2
BUILD_TOLERANCE = 1e-3                # most a built ONNX file's maps may differ from PyTorch's


class Network(Protocol):
    """The one model interface: a heatmap network of either runtime."""

    cfg: HourglassConfig
    runtime: str        # "torch" | "onnx" | "onnx-int8"
    device: str         # "cpu" | "cuda"

    def __call__(self, batch_bgr: np.ndarray) -> np.ndarray:
        """(N, S, S, 3) uint8 BGR -> the last stack's maps (N, C, S/4, S/4) float32."""


# ---------------------------------------------------------------------------- choosing
def onnxruntime_module():
    """The onnxruntime module, or None when it is not installed (or cannot load)."""
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime


def resolve_device(device: str = "auto"):
    """'auto' -> cuda when torch sees a GPU, else cpu; 'cuda' without a GPU is an InferenceError.
    Returns a torch.device."""
    import torch  # lazy: the CLI's --help must not load torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise InferenceError("--device cuda was asked for, but torch sees no CUDA GPU "
                             "(use --device cpu or auto)")
    if device not in ("cpu", "cuda"):
        raise InferenceError(f"unknown device {device!r} (auto, cpu or cuda)")
    return torch.device(device)


def cuda_possible() -> bool:
    """Whether torch may see a CUDA GPU, without importing torch when its installed build is the
    CPU one ('+cpu' in its version): importing torch costs 1.4 s of a run's start-up on 2 cores."""
    if "torch" not in sys.modules:
        try:
            from importlib.metadata import PackageNotFoundError, version
            if "+cpu" in version("torch"):
                return False
        except PackageNotFoundError:
            return False
    import torch

    return bool(torch.cuda.is_available())


def check_runtime_name(runtime: str) -> None:
    """InferenceError unless runtime is one of RUNTIMES."""
    if runtime not in RUNTIMES:
        raise InferenceError(f"unknown runtime {runtime!r} ({', '.join(RUNTIMES[:-1])} or {RUNTIMES[-1]})")


def choose_runtime(runtime: str = "auto", device: str = "auto") -> tuple[str, str]:
    """(runtime, device) asked for -> (runtime, device type) that will run.

    auto: onnx on the CPU when onnxruntime is installed, torch otherwise and on CUDA. onnx runs on
    the CPU only (this build's provider): with device 'cuda' it is an InferenceError, with 'auto'
    it means the CPU. onnx-int8 is onnx here (what runs the networks); load_network picks the int8
    pose file."""
    check_runtime_name(runtime)
    if runtime in ("onnx", "onnx-int8"):
        if device == "cuda":
            raise InferenceError(f"--runtime {runtime} runs the networks on the CPU; for --device cuda use "
                                 "--runtime torch (or auto)")
        if device not in ("auto", "cpu"):
            raise InferenceError(f"unknown device {device!r} (auto, cpu or cuda)")
        if onnxruntime_module() is None:
            raise InferenceError(
                f"--runtime {runtime} needs the onnxruntime package, which this Python ({sys.executable}) "
                "cannot import; install it with `python3 install_deps.py`, or use --runtime torch "
                "(or auto, which falls back to torch)")
        return "onnx", "cpu"
    if runtime == "auto" and device in ("auto", "cpu") and onnxruntime_module() is not None:
        if device == "cpu" or not cuda_possible():
            return "onnx", "cpu"
    return "torch", resolve_device(device).type


# ---------------------------------------------------------------------------- torch
def fold_batchnorm(model):
    """Fold every BatchNorm2d that directly follows a Conv2d inside an nn.Sequential into that
    convolution (eval-mode statistics), in place; returns the model. Exact up to rounding;
    pre-activation norms (BN before the conv) stay."""
    import torch

    for seq in [m for m in model.modules() if isinstance(m, torch.nn.Sequential)]:
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if not (isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d)):
                continue
            with torch.no_grad():
                k = bn.weight / torch.sqrt(bn.running_var + bn.eps)
                bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
                fused = torch.nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                                        conv.padding, conv.dilation, conv.groups, bias=True)
                fused.weight.copy_(conv.weight * k[:, None, None, None])
                fused.bias.copy_((bias - bn.running_mean) * k + bn.bias)
            seq[i] = fused.to(conv.weight.device)
            seq[i + 1] = torch.nn.Identity()
    return model


def build_folded(manifest: dict):
    """The eval-mode StackedHourglass of a checked manifest, BatchNorms folded, on the CPU."""
    from inference.models.hourglass import StackedHourglass
    from inference.models.weights import load_state_dict

    try:
        model = StackedHourglass(HourglassConfig.from_dict(manifest["config"]))
        model.load_state_dict(load_state_dict(manifest))
    except (TypeError, ValueError, RuntimeError, KeyError) as e:
        raise WeightsError(f"weights {manifest['path']} do not fit their manifest's config: {e}") from e
    return fold_batchnorm(model.eval())


def load_hourglass(name_or_path, kind: str, device):
    """(folded StackedHourglass in eval mode on the torch device, checked manifest); WeightsError."""
    import torch

    manifest = load_manifest(name_or_path, kind=kind)
    model = build_folded(manifest).to(device)
    if device.type == "cpu":
        model = model.to(memory_format=torch.channels_last)  # about 2x faster convolutions on CPU
    return model, manifest


def run_network(model, batch_bgr: np.ndarray, device=None) -> np.ndarray:
    """(N, S, S, 3) uint8 BGR -> last stack's maps (N, C, S/4, S/4) float32 numpy.

    model: a Network (either runtime; device unused) or a torch StackedHourglass on `device`."""
    if not hasattr(model, "runtime"):
        return _torch_forward(model, batch_bgr, device)
    return model(batch_bgr)


def _torch_forward(model, batch_bgr: np.ndarray, device) -> np.ndarray:
    import torch

    x = torch.from_numpy(to_array(batch_bgr)).to(device)
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        out = model(x)[-1]
    return out.float().cpu().numpy()


class TorchNetwork:
    """A folded StackedHourglass run by PyTorch (eager)."""

    runtime = "torch"

    def __init__(self, model, torch_device):
        self.model, self.torch_device = model, torch_device
        self.cfg: HourglassConfig = model.cfg
        self.device = torch_device.type

    def __call__(self, batch_bgr: np.ndarray) -> np.ndarray:
        return _torch_forward(self.model, batch_bgr, self.torch_device)


# ---------------------------------------------------------------------------- onnx
def onnx_session(path: str | os.PathLike, threads: int = 0, spin: bool = False):
    """An ONNX Runtime session on the CPU provider; threads 0: ONNX Runtime's default (the
    physical cores)."""
    ort = onnxruntime_module()
    if ort is None:
        raise InferenceError("onnxruntime is not installed (python3 install_deps.py)")
    so = ort.SessionOptions()
    so.intra_op_num_threads = max(0, int(threads))
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Spinning threads wait for work busily; off, they sleep. Off measured 1.5-2x faster on 2 cores
    # shared with other processes (docs/runtime.md), and it leaves the decoding thread its core.
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


class OnnxNetwork:
    """A heatmap network's ONNX file run by ONNX Runtime's CPU provider."""

    device = "cpu"

    def __init__(self, path: str | os.PathLike, cfg: HourglassConfig, threads: int = 0, spin: bool = False,
                 runtime: str = "onnx"):
        self.runtime = runtime      # "onnx", or "onnx-int8" for a shipped int8 file
        self.session = onnx_session(path, threads, spin)
        self.input = self.session.get_inputs()[0].name
        self.cfg, self.path = cfg, Path(path)
        self.threads = int(threads) or (os.cpu_count() or 1)

    def __call__(self, batch_bgr: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input: to_array(batch_bgr)})[0]


def onnx_cache_dir() -> Path:
    env = os.environ.get("MOCAP_ONNX_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "video-mocap" / "onnx"


def onnx_paths(manifest: dict, cache: Path | None = None) -> tuple[Path, Path]:
    """(ONNX file, its record) for a checked manifest's weights."""
    stem = Path(manifest["path"]).stem
    onnx = (cache or onnx_cache_dir()) / f"{stem}-{manifest['sha256'][:16]}.onnx"
    return onnx, onnx.with_name(onnx.name + ".json")


def check_onnx(manifest: dict, cache: Path | None = None) -> Path | None:
    """The checked ONNX file of a manifest's weights, None when it has not been built; WeightsError
    when the file or its record is corrupt or belongs to other weights."""
    onnx, record_path = onnx_paths(manifest, cache)
    if not (onnx.is_file() and record_path.is_file()):
        return None     # not built, or a build was interrupted: (re)built from the checked weights
    fix = f"delete {onnx} and {record_path.name}: they are rebuilt from the checked weights on the next run"
    try:
        record = json.loads(record_path.read_text())
        want = record["sha256"]
        source = record["source_sha256"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"the record of the ONNX file {onnx} is missing or unreadable ({e}); {fix}") from e
    if source != manifest["sha256"]:
        raise WeightsError(f"the ONNX file {onnx} was built from other weights (sha256 {str(source)[:12]}..., "
                           f"the manifest's are {manifest['sha256'][:12]}...); {fix}")
    if record.get("export", 1) != EXPORT_VERSION:
        return None     # built by an older export: rebuilt (the same numbers, a faster graph)
    got = sha256_of(onnx)
    if got != want:
        raise WeightsError(f"the ONNX file {onnx} is corrupt or was replaced: sha256 {got[:12]}... does not "
                           f"match its record's {str(want)[:12]}...; {fix}")
    return onnx


def export_module(manifest: dict):
    """(torch module as the ONNX graph computes it, a float32 test input for the build check,
    input name, output name, the input's dynamic axis) of a checked manifest.

    Heatmap networks: BatchNorms folded, the last stack's maps, (N, 3, S, S) -> (N, C, S/4, S/4),
    any N. The lifter (kind '3d'): the whole-sequence pass, (1, T, 50) -> (1, T - rf + 1, 49), any T."""
    import torch

    rng = np.random.default_rng(0)
    if manifest["kind"] == "3d":
        from inference.models.lifter import build_model
        from inference.models.weights import load_state_dict

        net = build_model(manifest["config"])
        try:
            net.load_state_dict(load_state_dict(manifest))
        except (RuntimeError, KeyError) as e:
            raise WeightsError(f"weights {manifest['path']} do not fit their manifest's config: {e}") from e
        net.eval()

        class Sequence(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                return self.net(x, strided=False)

        T = receptive_field(manifest["config"]) + 30
        return Sequence(), rng.normal(0, 0.5, (1, T, N_FEAT)).astype(np.float32), "features", "out", 1

    class LastStack(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[-1]

    model = build_folded(manifest)
    S = model.cfg.in_size
    batch = rng.integers(0, 256, (2, S, S, 3), dtype=np.uint8)
    return LastStack(model), to_array(batch), "image", "maps", 0


def export_onnx(manifest: dict, path: str | os.PathLike) -> None:
    """Export a checked manifest's network (export_module) to an ONNX file (PyTorch's
    TorchScript-based exporter; needs the onnx package). The exporter leaves the module it traced
    computing other numbers (measured: maps off by 0.9), so nothing may use that module after."""
    import torch

    module, test_input, name_in, name_out, axis = export_module(manifest)
    with warnings.catch_warnings():   # the exporter's deprecation notes are not for our users
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.from_numpy(test_input),), str(path), dynamo=False,
                          input_names=[name_in], output_names=[name_out], opset_version=ONNX_OPSET,
                          dynamic_axes={name_in: {axis: "n"}, name_out: {axis: "n"}})


def build_onnx(manifest: dict, cache: Path | None = None) -> Path:
    """Export the manifest's network to the cache, check that ONNX Runtime's maps match PyTorch's on
    a fixed batch (else WeightsError), write the record; returns the ONNX path. Writes are atomic
    (a temporary file, then a rename): two processes building at once write the same bytes."""
    import torch

    onnx, record_path = onnx_paths(manifest, cache)
    onnx.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".onnx", dir=onnx.parent)
    os.close(fd)
    try:
        module, test_input = export_module(manifest)[:2]     # a fresh module: the reference
        with torch.inference_mode():
            want = module(torch.from_numpy(test_input)).numpy()
        export_onnx(manifest, tmp)
        session = onnx_session(tmp, threads=1)
        got = session.run(None, {session.get_inputs()[0].name: test_input})[0]
        del session
        diff = float(np.abs(got - want).max()) if got.shape == want.shape else float("inf")
        if not diff <= BUILD_TOLERANCE:
            raise WeightsError(f"the ONNX export of {manifest['path']} differs from PyTorch by {diff:g} "
                               f"(> {BUILD_TOLERANCE:g}); it was not kept")
        record = {"file": onnx.name, "sha256": sha256_of(tmp), "source": Path(manifest["path"]).name,
                  "source_sha256": manifest["sha256"], "torch": torch.__version__, "opset": ONNX_OPSET,
                  "export": EXPORT_VERSION,
                  "max_abs_diff_vs_torch": diff}
        os.replace(tmp, onnx)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    tmp_record = record_path.with_name(record_path.name + f".{os.getpid()}.tmp")
    tmp_record.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    os.replace(tmp_record, record_path)
    return onnx


def ensure_onnx(manifest: dict, cache: Path | None = None) -> Path:
    """The checked ONNX file of a checked manifest, built first when it is not in the cache."""
    found = check_onnx(manifest, cache)
    if found is not None:
        return found
    if onnxruntime_module() is None:
        raise InferenceError("onnxruntime is not installed (python3 install_deps.py)")
    try:
        return build_onnx(manifest, cache)
    except OSError as e:
        raise WeightsError(f"cannot write the ONNX file of {manifest['path']} into {onnx_paths(manifest, cache)[0].parent} "
                           f"({e}); set MOCAP_ONNX_CACHE to a writable folder, or use --runtime torch") from e
    except ImportError as e:   # torch.onnx's exporter needs the onnx package
        raise InferenceError(f"building the ONNX file of {manifest['path']} needs the onnx package ({e}); "
                             "install it with `python3 install_deps.py`, or use --runtime torch") from e


def int8_manifest_path(manifest: dict) -> Path:
    """Where a pose manifest's int8 file would be described: <weights stem>_int8.json beside it."""
    weights = Path(manifest["path"])
    return weights.with_name(f"{weights.stem}_int8.json")


def check_int8(manifest: dict) -> tuple[Path, str, dict] | None:
    """(the checked int8 ONNX file, its sha256, its manifest) of a checked pose manifest, None when
    none ships; WeightsError when its manifest is unreadable, the file is missing or corrupt, or it
    was built from other weights."""
    mpath = int8_manifest_path(manifest)
    if not mpath.is_file():
        return None
    try:
        record = json.loads(mpath.read_text())
        kind, want, source = record["kind"], record["sha256"], record["source_sha256"]
        onnx = mpath.with_name(record["file"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"the int8 manifest {mpath} is unreadable ({e}); restore it from the "
                           "repository or rebuild it: python -m training.quantize_pose") from e
    fix = "restore it from the repository (git) or rebuild it: python -m training.quantize_pose"
    if kind != INT8_KIND:
        raise WeightsError(f"{mpath} holds '{kind}', expected '{INT8_KIND}'")
    if source != manifest["sha256"]:
        raise WeightsError(f"the int8 file {onnx} was built from other weights (sha256 {str(source)[:12]}..., "
                           f"{Path(manifest['path']).name} is {manifest['sha256'][:12]}...); {fix}")
    if not onnx.is_file():
        raise WeightsError(f"the int8 file {onnx} named by {mpath.name} is missing; {fix}")
    got = sha256_of(onnx)
    if got != want:
        raise WeightsError(f"the int8 file {onnx} is corrupt or was replaced: sha256 {got[:12]}... does not "
                           f"match its manifest's {str(want)[:12]}...; {fix}")
    return onnx, got, record


# ---------------------------------------------------------------------------- the entry point
def load_network(name_or_path, kind: str, device: str = "auto", runtime: str = "auto",
                 threads: int = 0, spin: bool = False) -> tuple[Network, dict]:
    """A sha256-checked heatmap network on the runtime that `runtime` and `device` choose
    (choose_runtime). Returns (network, manifest). Raises WeightsError (missing, corrupt or
    mismatched files) or InferenceError (runtime or device not available)."""
    which, dev = choose_runtime(runtime, device)
    if which == "onnx":
        manifest = load_manifest(name_or_path, kind=kind)
        cfg = HourglassConfig.from_dict(manifest["config"])
        int8 = check_int8(manifest) if runtime == "onnx-int8" and kind == "2d" else None
        if int8 is not None:
            manifest["onnx_sha256"] = int8[1]
            if "gate" in int8[2]:
                # an int8 gate measured as the fp32 one (quantize_pose --own-gate; the shipped file
                # has none): the start gate, track loss and person verification compare with it
                manifest["gate"] = int8[2]["gate"]
            return OnnxNetwork(int8[0], cfg, threads=threads, spin=spin, runtime="onnx-int8"), manifest
        path = ensure_onnx(manifest)
        manifest["onnx_sha256"] = sha256_of(path)
        return OnnxNetwork(path, cfg, threads=threads, spin=spin), manifest
    torch_device = resolve_device(dev)
    model, manifest = load_hourglass(name_or_path, kind, torch_device)
    return TorchNetwork(model, torch_device), manifest


def build_all(folder: Path, cache: Path | None = None, say=print) -> list[Path]:
    """Build (or check) the ONNX file of every pose, detector and lifter manifest in `folder`."""
    built = []
    for mpath in sorted(Path(folder).glob("*.json")):
        try:
            kind = json.loads(mpath.read_text()).get("kind")
        except (OSError, ValueError, AttributeError):
            continue
        if kind not in ONNX_KINDS:
            continue
        manifest = load_manifest(mpath, kind=kind)
        found = check_onnx(manifest, cache)
        path = found or build_onnx(manifest, cache)
        say(f"{'checked' if found else 'built'} {path}")
        built.append(path)
    return built


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m inference.models.runtime",
                                 description="Build (or check) the ONNX files of the shipped pose, "
                                             "detector and lifter networks in the cache.")
    ap.add_argument("--build", action="store_true", help="build the missing files and check the others")
    ap.add_argument("--weights", default=None, metavar="DIR", help="weights folder (default: weights/)")
    args = ap.parse_args(argv)
    if not args.build:
        ap.print_help()
        return 0
    if onnxruntime_module() is None:
        print("error: onnxruntime is not installed; nothing to build", file=sys.stderr)
        return 1
    try:
        build_all(Path(args.weights) if args.weights else weights_dir())
    except (WeightsError, InferenceError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
