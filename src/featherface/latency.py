"""Latency measured in onnxruntime, calls interleaved so that drifts of the machine hit every candidate alike:
:func:`time_round_robin` for ``featherface benchmark`` and the benchmarks, :class:`RelativeLatency` for the
hardware-aware pruning search (a pruned architecture's time relative to the unpruned one).

Importing it needs no torch (``benchmark --backend onnxruntime`` runs in the inference install); exporting an
architecture to time it does.
"""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from featherface.detection.runners import ONNX_INPUT, onnx_session
from featherface.models.config import DetectorConfig


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

        import torch

        from featherface.export.deploy import DeploymentGraph
        from featherface.export.onnx import export_graph
        from featherface.models.detector_net import DetectorNet

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
