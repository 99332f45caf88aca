"""Latency of several models measured in one run, interleaved, so they share the machine's state.

``backend="onnxruntime"`` on ONNX files (shipped or given) needs no torch: without torch (a featherface export)
or the onnx package (a peer's ONNX), parameters and GFLOPs are not counted (``None``); without onnx, no roofline.
"""

from __future__ import annotations

import functools
import math
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from featherface.detection.runners import OnnxRunner, open_onnx
from featherface.extras import has_torch, installed
from featherface.latency import time_round_robin
from featherface.weights import SHIPPED, shipped_path, verified_path

if TYPE_CHECKING:
    from featherface.models.detector_net import DetectorNet

BACKENDS = ("torch", "onnxruntime")


@dataclass
class _Candidate:
    label: str
    run: Callable[[np.ndarray], Any]
    bytes: int
    params: int | None  # None: not countable here (an ONNX export without torch installed)
    gflops: float | None  # None: not computable for this model (a peer's ONNX without static conv shapes, no torch)
    size_multiple: int = 1  # the input's height and width must be multiples of this


def _weights_bytes(net: DetectorNet) -> int:
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


def onnx_parameters(path: str | Path) -> int:
    """Learned numbers in an ONNX file: the elements of its floating-point initializers (integer ones are
    shapes and indices). Batch norms folded into convs at export count once, as in the exported graph."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    floats = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE, onnx.TensorProto.BFLOAT16}
    return sum(math.prod(t.dims) for t in model.graph.initializer if t.data_type in floats)


def onnx_conv_gflops(path: str | Path, size: int = 640) -> float | None:
    """GFLOPs (2 x MACs / 1e9) of the convolutions of an ONNX graph on one ``size x size`` image, counted as
    :func:`featherface.profiling.count_macs` counts a torch network (convs only); None when shape inference
    cannot give every conv's output shape."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    initializers = {t.name for t in model.graph.initializer}
    (image,) = [i for i in model.graph.input if i.name not in initializers]
    for dim, value in zip(image.type.tensor_type.shape.dim, (1, 3, size, size), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True).graph
    except Exception:  # onnx raises its own exception types
        return None
    shapes = {
        v.name: [d.dim_value if d.HasField("dim_value") else None for d in v.type.tensor_type.shape.dim]
        for v in [*inferred.value_info, *inferred.output, *inferred.input]
    }
    weights = {t.name: list(t.dims) for t in inferred.initializer}
    macs = 0
    for node in inferred.node:
        if node.op_type != "Conv":
            continue
        out, weight = shapes.get(node.output[0]), weights.get(node.input[1])
        if not out or None in out or weight is None:
            return None
        macs += math.prod(out) * math.prod(weight[1:])  # per output element: in_channels / groups x kh x kw
    return 2 * macs / 1e9


def onnx_file(spec: str, workdir: Path) -> Path:
    """The ONNX file a model runs as in onnxruntime: an ``.onnx`` spec itself, a shipped model's ONNX (the file
    ``Detector.load`` runs), else the torch model exported (and parity-checked) into ``workdir``."""
    if spec.endswith(".onnx"):
        return Path(spec)
    shipped = SHIPPED.get(spec)
    if shipped is not None and shipped.onnx:
        return verified_path(shipped.onnx, shipped.onnx_sha256)
    from featherface.export.onnx import export_onnx
    from featherface.models.loader import load_model

    return export_onnx(load_model(spec), workdir / f"{len(list(workdir.iterdir()))}.onnx")


def _prepare_onnx(label: str, path: Path, threads: int, size: int) -> _Candidate:
    """A featherface export (its architecture from the attached config) or a peer recognised by its outputs."""
    from featherface.detection.peers import YuNetRunner

    session = open_onnx(path, threads)
    file_bytes = path.stat().st_size
    if YuNetRunner.recognises(session):
        runner = YuNetRunner(path, session=session)
        if not installed("onnx"):  # the graph is read with the onnx package (the training extra)
            return _Candidate(label, runner, file_bytes, None, None, size_multiple=runner.size_multiple)
        return _Candidate(
            label, runner, file_bytes, onnx_parameters(path), onnx_conv_gflops(path, size), runner.size_multiple
        )
    runner = OnnxRunner(path, session=session)
    if not has_torch():  # counted on the torch network of the attached config
        return _Candidate(label, runner, file_bytes, None, None)
    from featherface.models.detector_net import DetectorNet, count_parameters
    from featherface.profiling import gflops

    net = DetectorNet(runner.config)
    return _Candidate(label, runner, file_bytes, count_parameters(net), gflops(net, size))


def _checkpoint_bytes(spec: str, net: DetectorNet) -> int:
    """The size of the model's weight file: a checkpoint (or run directory's), a shipped model's; else its
    tensors' bytes."""
    shipped = SHIPPED.get(spec)
    if shipped is not None:
        return shipped_path(shipped.checkpoint).stat().st_size
    if spec.endswith(".safetensors") or Path(spec).is_dir():
        from featherface.models.checkpoint import resolve_checkpoint

        return resolve_checkpoint(spec).stat().st_size
    return _weights_bytes(net)


def _prepare(spec: str, backend: str, threads: int, workdir: Path, size: int) -> _Candidate:
    if backend == "onnxruntime":
        return _prepare_onnx(spec, onnx_file(spec, workdir), threads, size)
    import torch

    from featherface.models.detector_net import count_parameters
    from featherface.models.loader import load_model
    from featherface.profiling import gflops

    net = load_model(spec).eval()

    def run(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            return net(torch.from_numpy(batch))

    return _Candidate(spec, run, _checkpoint_bytes(spec, net), count_parameters(net), gflops(net, size))


def _pad_to_multiple(batch: np.ndarray, multiple: int) -> np.ndarray:
    """``batch (N, C, H, W)`` zero-padded bottom/right to H and W multiples of ``multiple``."""
    pad_h, pad_w = (-batch.shape[2]) % multiple, (-batch.shape[3]) % multiple
    return np.pad(batch, ((0, 0), (0, 0), (0, pad_h), (0, pad_w))) if pad_h or pad_w else batch


def peak_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float | None:
    """This CPU's attainable fp32 GFLOP/s with ``threads`` threads: the best of a few large matrix products in
    onnxruntime (its MLAS kernels are the ones the models run on); None without the onnx package to build them."""
    import onnxruntime as ort

    try:
        from onnx import TensorProto, helper
    except ModuleNotFoundError:  # the inference install: no roofline
        return None

    spec = [helper.make_tensor_value_info(name, TensorProto.FLOAT, [size, size]) for name in ("a", "b", "c")]
    graph = helper.make_graph([helper.make_node("MatMul", ["a", "b"], ["c"])], "peak", spec[:2], spec[2:])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    a = np.random.default_rng(0).random((size, size), dtype=np.float32)
    session.run(None, {"a": a, "b": a})
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        session.run(None, {"a": a, "b": a})
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def benchmark(
    models: list[str],
    size: int = 640,
    backend: str = "torch",
    threads: int = 1,
    repeats: int = 30,
    warmup: int = 3,
) -> list[dict[str, Any]]:
    """Median/min/max milliseconds of one ``1 x 3 x size x size`` forward pass per model (no post-processing).

    Models are timed round-robin (repeat r of every model before repeat r + 1 of any) so drifts in clock
    speed or background load hit all of them alike. Results are in argument order. A peer's ``.onnx`` (YuNet)
    runs with ``backend="onnxruntime"``: its parameters are its ONNX initializers, its GFLOPs its convs' (None,
    and no roofline, when the graph's conv shapes cannot be inferred); its input is padded to multiples of 32.
    """
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if threads < 1 or repeats < 1 or size < 32:
        raise ValueError("--threads and --repeats must be >= 1 and --size >= 32")
    peak = peak_gflops(threads)
    if backend == "torch" or has_torch():  # (torch also exports models that ship no ONNX)
        import torch

        torch.set_num_threads(threads)
    batch = np.random.default_rng(0).uniform(-120, 150, size=(1, 3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        candidates = [_prepare(spec, backend, threads, Path(tmp), size) for spec in models]
        runs = {i: functools.partial(c.run, _pad_to_multiple(batch, c.size_multiple)) for i, c in enumerate(candidates)}
        timed = time_round_robin(runs, repeats, warmup)
        times = [timed[i] for i in range(len(candidates))]
    return [
        {
            "model": c.label,
            "params": c.params,
            "gflops": None if c.gflops is None else round(c.gflops, 4),
            "bytes": c.bytes,
            "median_ms": round(statistics.median(t), 3),
            "min_ms": round(min(t), 3),
            "max_ms": round(max(t), 3),
            # the time the model's FLOPs would take at this CPU's matrix-product rate: the compute floor
            "roofline_ms": None if c.gflops is None or peak is None else round(c.gflops / peak * 1000, 3),
            "backend": backend,
            "threads": threads,
            "size": size,
        }
        for c, t in zip(candidates, times, strict=True)
    ]


def _cell(value: float | None, width: int, digits: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width}.{digits}f}"


def _count_cell(value: int | None, width: int) -> str:
    return f"{'n/a':>{width}}" if value is None else f"{value:>{width},}"


def format_benchmark_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'model':<28}{'params':>10}{'GFLOPs':>9}{'bytes':>11}{'median ms':>11}{'min':>9}{'max':>9}{'roofline':>10}"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['model']:<28}{_count_cell(r['params'], 10)}{_cell(r['gflops'], 9, 3)}{r['bytes']:>11,}"
            f"{r['median_ms']:>11.2f}{r['min_ms']:>9.2f}{r['max_ms']:>9.2f}{_cell(r['roofline_ms'], 10, 2)}"
        )
    return "\n".join(lines)


def benchmark_threads(
    models: list[str],
    size: int = 640,
    backend: str = "torch",
    threads: Sequence[int] = (1,),
    repeats: int = 30,
    warmup: int = 3,
    say: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """:func:`benchmark` at each of ``threads`` in turn: the rows of all, each count's table to ``say`` once done."""
    rows: list[dict[str, Any]] = []
    for count in threads:
        timed = benchmark(models, size, backend, count, repeats, warmup)
        say(f"backend {backend}, {count} thread(s), 1x3x{size}x{size}, {repeats} repeats")
        say(format_benchmark_table(timed))
        rows += timed
    return rows
