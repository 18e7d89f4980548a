"""Build the int8 ONNX file of a pose network (the balanced one ships as weights/pose_balanced_int8.onnx).

    python -m training.quantize_pose                      # balanced, ../shared/data/lsp
    python -m training.quantize_pose --weights pose_balanced --data DIR --out weights/

Steps, all fixed so that a rerun on the same versions writes the same network:

1. the fp32 ONNX file of the sha256-checked weights (inference.models.runtime.build_onnx, the file
   --runtime onnx runs) into a temporary folder, with every BatchNormalization left in it (the
   residual modules' pre-activation norms, BN -> ReLU -> conv, which cannot be folded into a
   convolution) rewritten as the same per-channel Mul and Add (norms_as_mul_add): ONNX Runtime has
   int8 kernels for those (QLinearMul, QLinearAdd) but not for BatchNormalization, which would stay
   in float between dequantize, quantize and layout transposes (1.25x against 1.51x the fp32
   network's images/s on 2 threads, docs/runtime.md);
2. calibration inputs: CALIB_CROPS crops of LSP *training* images (never the held-out
   im09001-im10000), every 35th training row from CALIB_OFFSET on, each cropped around its annotated
   person exactly as eval_2d crops (crops.box_from_joints, crop_matrix, warp);
3. ONNX Runtime static quantization: QDQ, per-channel int8 weights, uint8 activations, percentile
   calibration (the 99.999th percentile of each tensor's |values|; min-max lost 0.45 PCK points,
   docs/runtime.md);
4. the int8 file and its manifest ``<stem>_int8.json`` (kind '2d-int8': its own sha256, the fp32
   weights' sha256 it was built from, the calibration, the versions), which the runtime checks on
   every load (runtime.check_int8);
5. with --own-gate only: the int8 network's own start gate (int8_gate: measured as
   export_weights measures the fp32 one), recorded in that manifest; the engine then uses it
   instead of the fp32 gate when the int8 file runs. Off for the shipped file: the int8 gate
   (0.369 against 0.376) found people as often as fp32 end to end but started 4 false tracks on
   the person-free clips against fp32's 1 (docs/runtime.md).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

from data.lsp import DEFAULT_LSP, load_annotations
from inference.core import crops
from inference.errors import InferenceError
from inference.models.preprocess import to_array
from inference.models.runtime import INT8_KIND, build_onnx, int8_manifest_path, onnxruntime_module
from inference.models.weights import load_manifest, sha256_of, weights_dir, WeightsError

# Chosen by PCK on a slice of LSP *training* images (every 9th training row, not the held-out set)
# among: offsets 0, 7, 17 at 99.999; 512 crops; percentiles 99.99 and 99.9999 (docs/runtime.md).
# 99.99 keeps joint scores closer to fp32 per crop (evaluation.int8_compare --train: median
# |difference| 0.020 against 0.024) but lost 0.15 held-out PCK points and did no better end to end.
CALIB_CROPS = 256
CALIB_OFFSET = 17
PERCENTILE = 99.999
FLOAT_NODES: tuple[str, ...] = ()   # regexes of ONNX node names left in float (nodes_to_exclude)
CALIB_CROPS_LIKE = "ground-truth"
CALIB_SEED = 1                      # the jitter of 'engine' calibration crops (the held-out gate uses 0)


def calibration_rows(is_test: np.ndarray, n: int = CALIB_CROPS, offset: int = CALIB_OFFSET) -> np.ndarray:
    """n training rows, evenly spaced (every len/n-th, starting `offset` rows in)."""
    train = np.where(~np.asarray(is_test, bool))[0]
    if len(train) < n:
        raise InferenceError(f"the LSP data has {len(train)} training images, calibration needs {n}")
    step = len(train) // n
    return train[(np.arange(n) * step + offset % step)]


def calibration_batch(data_root: str | os.PathLike, size: int, n: int = CALIB_CROPS,
                      offset: int = CALIB_OFFSET, crops_like: str = CALIB_CROPS_LIKE) -> tuple[np.ndarray, list[str]]:
    """(N, 3, size, size) float32 network inputs of crops of n LSP training images, and the image
    names. crops_like 'ground-truth': one crop per image around its annotated person (N = n);
    'engine': as the start gate's crops (evaluation.eval_2d.gate_crops): the person's box jittered
    the way a detector misses, and a background crop of the same size elsewhere in the photograph
    where one fits (N <= 2n), so that calibration sees the score range the engine's gates use."""
    names, joints, visible, is_test = load_annotations(data_root)
    pick = calibration_rows(is_test, n, offset)
    if crops_like == "engine":
        from evaluation.eval_2d import gate_crops

        patches, _ = gate_crops(str(data_root), size, 0, seed=CALIB_SEED, rows=pick)
        return to_array(patches), [str(names[i]) for i in pick]
    if crops_like != "ground-truth":
        raise InferenceError(f"unknown calibration crops {crops_like!r} (ground-truth or engine)")
    out = []
    for i in pick:
        img = cv2.imread(str(Path(data_root) / "images" / names[i]), cv2.IMREAD_COLOR)
        if img is None:
            raise InferenceError(f"cannot read {Path(data_root) / 'images' / names[i]}")
        box = np.array(crops.box_from_joints(joints[i], visible[i]), np.float32)
        out.append(crops.warp(img, crops.crop_matrix(box, size), size))
    return to_array(np.stack(out)), [str(names[i]) for i in pick]


def norms_as_mul_add(model):
    """Rewrite every BatchNormalization node of an ONNX model (inference form: constant scale, bias,
    mean, variance) as Mul by scale / sqrt(var + eps) then Add of bias - mean * that, per channel
    (N, C, H, W); in place, returns the model. The same numbers up to float rounding."""
    from onnx import helper, numpy_helper

    graph = model.graph
    consts = {t.name: t for t in graph.initializer}
    nodes, dropped = [], set()
    for node in graph.node:
        if node.op_type != "BatchNormalization":
            nodes.append(node)
            continue
        x, scale, bias, mean, var = node.input
        eps = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-5)
        g, b, m, v = (numpy_helper.to_array(consts[n]).astype(np.float64) for n in (scale, bias, mean, var))
        k = g / np.sqrt(v + eps)
        names = (node.name + "_scale", node.name + "_shift")
        graph.initializer.extend([numpy_helper.from_array(k.astype(np.float32).reshape(-1, 1, 1), names[0]),
                                  numpy_helper.from_array((b - m * k).astype(np.float32).reshape(-1, 1, 1), names[1])])
        scaled = node.output[0] + "_scaled"
        nodes += [helper.make_node("Mul", [x, names[0]], [scaled], name=node.name + "_mul"),
                  helper.make_node("Add", [scaled, names[1]], [node.output[0]], name=node.name + "_add")]
        dropped.update((scale, bias, mean, var))
    del graph.node[:]
    graph.node.extend(nodes)
    still_used = {i for n in graph.node for i in n.input}
    keep = [t for t in graph.initializer if t.name not in dropped or t.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(keep)
    return model


def int8_gate(path: Path, manifest: dict, data_root: str | os.PathLike) -> dict:
    """The start gate of the int8 network at `path`, measured exactly as the fp32 network's
    (evaluation.eval_2d.person_score_gate: the same held-out person and background crops, the same
    90% person recall), so that the engine's score thresholds keep their meaning when it runs."""
    from evaluation.eval_2d import person_score_gate
    from inference.models.hourglass_config import HourglassConfig
    from inference.models.runtime import OnnxNetwork

    net = OnnxNetwork(path, HourglassConfig.from_dict(manifest["config"]), threads=1, runtime="onnx-int8")
    return {**person_score_gate(net, str(data_root)), "runtime": "onnx-int8",
            "command": "python -m training.quantize_pose (evaluation.eval_2d.person_score_gate)"}


def quantize(manifest: dict, data_root: str | os.PathLike, out_dir: Path, n: int = CALIB_CROPS,
             percentile: float = PERCENTILE, offset: int = CALIB_OFFSET, exclude: tuple[str, ...] = FLOAT_NODES,
             crops_like: str = CALIB_CROPS_LIKE, own_gate: bool = False, say=print) -> Path:
    """Write <stem>_int8.onnx and its manifest into out_dir; returns the manifest's path."""
    import onnxruntime
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                          QuantType, quantize_static)

    stem = Path(manifest["path"]).stem
    size = int(manifest["config"]["in_size"])
    inputs, names = calibration_batch(data_root, size, n, offset, crops_like)
    inputs = inputs[: len(inputs) // 8 * 8]     # whole batches: the calibrator stacks them
    say(f"calibration: {len(inputs)} crops ({crops_like}) of {len(names)} LSP training images, "
        f"{names[0]} ... {names[-1]}")

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.rows = iter(range(0, len(inputs), 8))

        def get_next(self):
            start = next(self.rows, None)
            return None if start is None else {"image": inputs[start:start + 8]}

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{stem}_int8.onnx"
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32_mul_add.onnx"
        onnx.save(norms_as_mul_add(onnx.load(str(build_onnx(manifest, Path(tmp))))), str(fp32))
        part = Path(tmp) / target.name
        graph = onnx.load(str(fp32)).graph
        keep_float = [nd.name for nd in graph.node if any(re.search(e, nd.name) for e in exclude)]
        quantize_static(str(fp32), str(part), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        nodes_to_exclude=keep_float,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8,
                        calibrate_method=CalibrationMethod.Percentile,
                        extra_options={"CalibPercentile": percentile})
        os.replace(part, target)
    record = {"kind": INT8_KIND, "file": target.name, "sha256": sha256_of(target),
              "source": Path(manifest["path"]).name, "source_sha256": manifest["sha256"],
              "config": manifest["config"],
              "calibration": {"method": "percentile", "percentile": percentile, "images": len(names),
                              "crops": len(inputs), "crops_like": crops_like,
                              "offset": offset, "float_nodes": list(exclude),
                              "rows": f"LSP training images, evenly spaced: {names[0]} ... {names[-1]}",
                              "format": "QDQ, per-channel int8 weights, uint8 activations; "
                                        "BatchNormalization as Mul + Add"},
              "onnxruntime": onnxruntime.__version__,
              "build": "python -m training.quantize_pose (docs/runtime.md)"}
    mpath = int8_manifest_path(manifest)
    mpath = out_dir / mpath.name
    old = json.loads(mpath.read_text()) if mpath.is_file() else {}
    if "eval" in old:       # measured numbers stay when the file is rebuilt identical
        if old.get("sha256") == record["sha256"]:
            record["eval"] = old["eval"]
    if own_gate:
        record["gate"] = int8_gate(target, manifest, data_root)
        say(f"start gate of the int8 network: {record['gate']['start_score']} "
            f"(fp32 {manifest.get('gate', {}).get('start_score')})")
    mpath.write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    say(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB, sha256 {record['sha256'][:16]}...) and {mpath}")
    return mpath


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights", default="pose_balanced", help="pose manifest name or path (default pose_balanced)")
    ap.add_argument("--data", default=DEFAULT_LSP, help="LSP folder (joints.npz, images/)")
    ap.add_argument("--out", default=None, metavar="DIR", help="where the int8 file goes (default weights/)")
    ap.add_argument("--percentile", type=float, default=PERCENTILE,
                    help=f"calibration percentile of each tensor's |values| (default {PERCENTILE})")
    ap.add_argument("--calib-crops", choices=["ground-truth", "engine"], default=CALIB_CROPS_LIKE,
                    help=f"calibration crops (default {CALIB_CROPS_LIKE}; calibration_batch)")
    ap.add_argument("--own-gate", action="store_true",
                    help="measure the int8 network's own start gate and record it in its manifest (int8_gate)")
    ap.add_argument("--float-nodes", default=None, metavar="REGEXES",
                    help="comma-separated regexes (re.search) of ONNX node names kept in float (default: FLOAT_NODES)")
    args = ap.parse_args(argv)
    if onnxruntime_module() is None:
        print("error: onnxruntime is not installed", file=sys.stderr)
        return 1
    if not (Path(args.data) / "joints.npz").is_file():
        print(f"error: no LSP data in {args.data} (joints.npz); give --data", file=sys.stderr)
        return 1
    try:
        manifest = load_manifest(args.weights, kind="2d")
        exclude = FLOAT_NODES if args.float_nodes is None else tuple(e for e in args.float_nodes.split(",") if e)
        quantize(manifest, args.data, Path(args.out) if args.out else weights_dir(), exclude=exclude,
                 crops_like=args.calib_crops, percentile=args.percentile,
                 own_gate=args.own_gate)
    except (WeightsError, InferenceError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
