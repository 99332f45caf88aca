"""Latency of several models measured in one run, interleaved, so they share the machine's state."""

from __future__ import annotations

import functools
import math
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from featherface.checkpoint import load_model, resolve_checkpoint
from featherface.detection.runners import ONNX_INPUT, OnnxRunner, onnx_session
from featherface.export.deploy import DeploymentGraph
from featherface.export.onnx import export_graph, export_onnx
from featherface.models.config import DetectorConfig
from featherface.models.detector_net import DetectorNet, count_parameters
from featherface.profiling import gflops

BACKENDS = ("torch", "onnxruntime")


@dataclass
class _Candidate:
    label: str
    net: DetectorNet
    run: Callable[[np.ndarray], Any]
    bytes: int


def _weights_bytes(net: DetectorNet) -> int:
    return sum(t.numel() * t.element_size() for t in net.state_dict().values())


def _prepare(spec: str, backend: str, threads: int, workdir: Path) -> _Candidate:
    if backend == "onnxruntime":
        if spec.endswith(".onnx"):
            runner = OnnxRunner(spec, threads)
            net = DetectorNet(runner.config)
            path = Path(spec)
        else:
            net = load_model(spec)
            path = export_onnx(net, workdir / f"{len(list(workdir.iterdir()))}.onnx")
            runner = OnnxRunner(path, threads)
        return _Candidate(spec, net, runner, path.stat().st_size)
    net = load_model(spec).eval()

    def run(batch: np.ndarray) -> Any:
        with torch.inference_mode():
            return net(torch.from_numpy(batch))

    size = resolve_checkpoint(spec).stat().st_size if spec.endswith(".safetensors") else _weights_bytes(net)
    return _Candidate(spec, net, run, size)


def peak_gflops(threads: int, size: int = 2048, repeats: int = 5) -> float:
    """This CPU's attainable fp32 GFLOP/s with ``threads`` threads: the best of a few large matrix products in
    onnxruntime (its MLAS kernels are the ones the models run on)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

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


def time_round_robin(runs: dict[Any, Callable[[], Any]], repeats: int, warmup: int = 3) -> dict[Any, list[float]]:
    """Milliseconds per call of each ``runs`` entry, called in turn (call r of all before call r + 1 of any), so
    drifts in clock speed or background load hit all of them alike."""
    times: dict[Any, list[float]] = {key: [] for key in runs}
    for run in runs.values():
        for _ in range(warmup):
            run()
    for _ in range(repeats):
        for key, run in runs.items():
            start = time.perf_counter()
            run()
            times[key].append((time.perf_counter() - start) * 1000)
    return times


def session_runs(sessions: dict[Any, Any], batch: np.ndarray) -> dict[Any, Callable[[], Any]]:
    """``time_round_robin`` calls for onnxruntime sessions on one input batch."""
    return {key: functools.partial(session.run, None, {ONNX_INPUT: batch}) for key, session in sessions.items()}


class RelativeLatency:
    """Latency of architectures relative to a reference one, in onnxruntime on this machine.

    ``probe(config)`` exports the deployment graph of ``config`` (random weights: the time does not depend on
    them), then times it and the reference alternately, ``repeats`` runs each, and returns the ratio of the
    medians. Alternating cancels slow drifts of the machine; worker threads do not spin between runs, which keeps
    figures stable on small shared machines. Used by the hardware-aware pruning search.
    """

    def __init__(self, reference: DetectorConfig, size: int = 640, threads: int = 1, repeats: int = 7) -> None:
        self.size, self.threads, self.repeats = size, threads, repeats
        self.batch = np.random.default_rng(0).uniform(-120, 150, size=(1, 3, size, size)).astype(np.float32)
        self.reference = self._session(reference)

    def _session(self, config: DetectorConfig) -> Any:
        import io

        with torch.random.fork_rng():
            torch.manual_seed(0)
            net = DetectorNet(config).eval()
        buffer = io.BytesIO()
        export_graph(DeploymentGraph(net), buffer, torch.zeros(1, 3, self.size, self.size))
        return onnx_session(buffer.getvalue(), self.threads, spin=False)

    def __call__(self, config: DetectorConfig) -> float:
        sessions = {"candidate": self._session(config), "reference": self.reference}
        times = time_round_robin(session_runs(sessions, self.batch), self.repeats, warmup=1)
        return statistics.median(times["candidate"]) / statistics.median(times["reference"])


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
    speed or background load hit all of them alike. Results are in argument order.
    """
    if backend not in BACKENDS:
        raise ValueError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if threads < 1 or repeats < 1 or size < 32:
        raise ValueError("--threads and --repeats must be >= 1 and --size >= 32")
    peak = peak_gflops(threads)
    torch.set_num_threads(threads)
    batch = np.random.default_rng(0).uniform(-120, 150, size=(1, 3, size, size)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        candidates = [_prepare(spec, backend, threads, Path(tmp)) for spec in models]
        runs = {i: functools.partial(c.run, batch) for i, c in enumerate(candidates)}
        timed = time_round_robin(runs, repeats, warmup)
        times = [timed[i] for i in range(len(candidates))]
    return [
        {
            "model": c.label,
            "params": count_parameters(c.net),
            "gflops": round(gflops(c.net, size), 4),
            "bytes": c.bytes,
            "median_ms": round(statistics.median(t), 3),
            "min_ms": round(min(t), 3),
            "max_ms": round(max(t), 3),
            # the time the model's FLOPs would take at this CPU's matrix-product rate: the compute floor
            "roofline_ms": round(gflops(c.net, size) / peak * 1000, 3),
            "backend": backend,
            "threads": threads,
            "size": size,
        }
        for c, t in zip(candidates, times, strict=True)
    ]


def format_benchmark_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'model':<28}{'params':>10}{'GFLOPs':>9}{'bytes':>11}{'median ms':>11}{'min':>9}{'max':>9}{'roofline':>10}"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['model']:<28}{r['params']:>10,}{r['gflops']:>9.3f}{r['bytes']:>11,}"
            f"{r['median_ms']:>11.2f}{r['min_ms']:>9.2f}{r['max_ms']:>9.2f}{r['roofline_ms']:>10.2f}"
        )
    return "\n".join(lines)
