"""The end-to-end benchmark (imread -> preprocess -> forward -> postprocess per image) and peers in the
forward-only one. No timed assertions: only what the rows must hold."""

from __future__ import annotations

import json
import math

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from featherface import benchmark as forward_benchmark
from featherface.benchmark import benchmark, format_benchmark_table, onnx_conv_gflops, onnx_parameters
from featherface.benchmark_e2e import STAGES, benchmark_end_to_end
from featherface.cli import main

from .conftest import YUNET, needs_shared

needs_yunet = needs_shared(YUNET)
ROW_KEYS = {"model", "backend", "threads", "images", "images_per_s", "median_ms", "mean_ms", "faces_per_image"}
ROW_KEYS |= {f"{stage}_{what}" for stage in STAGES for what in ("ms", "share")}


def assert_stage_rows(rows, images):
    for row in rows:
        assert set(row) >= ROW_KEYS
        assert row["images"] == images
        assert math.isclose(sum(row[f"{s}_share"] for s in STAGES), 1.0, abs_tol=2e-3)
        assert all(row[f"{s}_ms"] > 0 for s in STAGES)
        assert row["images_per_s"] > 0 and row["faces_per_image"] > 0


@needs_yunet
def test_end_to_end_rows_per_thread_count_then_model_with_yunet_in_the_run():
    rows = benchmark_end_to_end(["retinaface-mnet025", str(YUNET)], "sample:val", threads=(1, 2), warmup=0)
    assert [(r["model"], r["threads"]) for r in rows] == [
        ("retinaface-mnet025", 1),
        (str(YUNET), 1),
        ("retinaface-mnet025", 2),
        (str(YUNET), 2),
    ]
    assert {r["backend"] for r in rows} == {"onnxruntime"}  # the zoo model ran its shipped ONNX
    assert all(r["conf"] == 0.02 for r in rows)  # the evaluation setting by default
    assert_stage_rows(rows, images=3)


def test_end_to_end_warmup_images_are_not_counted():
    (row,) = benchmark_end_to_end(["retinaface-mnet025"], "sample:val", threads=[1], backend="torch", warmup=1)
    assert row["images"] == 2 and row["backend"] == "torch"
    with pytest.raises(ValueError, match="warm-up"):
        benchmark_end_to_end(["retinaface-mnet025"], "sample:val", threads=[1], warmup=3)


@needs_yunet
def test_cli_end_to_end_writes_rows_and_the_stage_plot(capsys, tmp_path):
    out = tmp_path / "e2e.json"
    args = ["benchmark", "--end-to-end", "--data", "sample:val", "--backend", "torch", "--threads", "1"]
    args += ["--warmup", "0", "--json", str(out), "--plots", str(tmp_path), "retinaface-mnet025", str(YUNET)]
    assert main(args) == 0
    rows = json.loads(out.read_text())
    assert [(r["model"], r["backend"]) for r in rows] == [("retinaface-mnet025", "torch"), (str(YUNET), "onnxruntime")]
    assert_stage_rows(rows, images=3)
    assert (tmp_path / "end_to_end_stages.png").stat().st_size > 0
    assert "imread" in capsys.readouterr().out


def test_cli_end_to_end_options_without_end_to_end_are_refused(capsys):
    assert main(["benchmark", "nano-b", "--data", "sample:val"]) == 2
    assert "--end-to-end" in capsys.readouterr().err
    assert main(["benchmark", "--end-to-end", "nano-b"]) == 2
    assert "--data" in capsys.readouterr().err


@needs_yunet
def test_forward_benchmark_counts_yunet_from_its_onnx():
    (row,) = benchmark([str(YUNET)], size=96, backend="onnxruntime", repeats=1, warmup=0)  # padded to 96 = 3 x 32
    assert row["params"] == onnx_parameters(YUNET) == 73_848  # float initializers (BN folded), ~75k as published
    assert row["gflops"] == pytest.approx(onnx_conv_gflops(YUNET, 96), abs=1e-4)
    assert row["bytes"] == YUNET.stat().st_size
    assert row["roofline_ms"] is not None and row["min_ms"] <= row["median_ms"] <= row["max_ms"]


def test_forward_benchmark_of_a_shipped_onnx_without_torch_leaves_its_counts_out(monkeypatch):
    # the inference install: the ONNX is timed; its parameters and GFLOPs (counted on the torch network) are not
    monkeypatch.setattr(forward_benchmark, "has_torch", lambda: False)
    monkeypatch.setattr(forward_benchmark, "peak_gflops", lambda threads: None)  # as without the onnx package
    (row,) = benchmark(["retinaface-mnet025"], size=64, backend="onnxruntime", repeats=1, warmup=0)
    assert row["params"] is None and row["gflops"] is None and row["roofline_ms"] is None
    assert row["bytes"] == 1_726_964  # the shipped ONNX file
    assert format_benchmark_table([row]).splitlines()[1].split()[1:3] == ["n/a", "n/a"]


def test_onnx_conv_gflops_counts_output_elements_times_kernel_volume(tmp_path):
    # one conv 3 -> 8 channels, 3x3, stride 2, padding 1, on 1 x 3 x 64 x 64: output 8 x 32 x 32
    weight = numpy_helper.from_array(np.zeros((8, 3, 3, 3), np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([node], "conv", [x], [y], initializer=[weight])
    path = tmp_path / "conv.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    assert onnx_conv_gflops(path, 64) == pytest.approx(2 * 8 * 32 * 32 * 3 * 3 * 3 / 1e9)
    assert onnx_parameters(path) == 8 * 3 * 3 * 3
