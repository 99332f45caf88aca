"""Command line: results as documented, and bad input as a one-line error with a non-zero exit."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from featherface.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *fragments):
    assert code != 0
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0]


def test_detect_writes_documented_json_and_drawings(capsys, tmp_path, sample_images):
    out = tmp_path / "det.json"
    code, _, _ = run_cli(capsys, "detect", sample_images / "astronaut.jpg", "--json", out, "--save-dir", tmp_path / "d")
    assert code == 0
    result = json.loads(out.read_text())
    assert len(result) == 1
    entry = result[0]
    assert set(entry) == {"image", "width", "height", "faces"}
    assert (entry["width"], entry["height"]) == (512, 512)
    assert len(entry["faces"]) == 1
    face = entry["faces"][0]
    assert set(face) == {"box", "score", "landmarks"}
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    assert (tmp_path / "d" / "astronaut.jpg").is_file()


def test_detect_on_a_folder_lists_every_image(capsys, tmp_path, sample_images):
    out = tmp_path / "det.json"
    code, _, _ = run_cli(capsys, "detect", sample_images, "--json", out)
    assert code == 0
    result = json.loads(out.read_text())
    assert len(result) == 9
    assert sum(len(r["faces"]) for r in result) == 25
    for r in result:
        scores = [f["score"] for f in r["faces"]]
        assert scores == sorted(scores, reverse=True)


def test_missing_file(capsys, tmp_path):
    code, _, err = run_cli(capsys, "detect", tmp_path / "nope.jpg")
    assert_one_line_error(code, err, "nope.jpg", "no such file")


def test_non_image_file(capsys, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("this is not a picture")
    code, _, err = run_cli(capsys, "detect", bad)
    assert_one_line_error(code, err, "notes.jpg", "not a readable image")


def test_empty_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "detect", tmp_path)
    assert_one_line_error(code, err, "holds no images")


@pytest.fixture()
def face_photo(sample_images):
    return cv2.imread(str(sample_images / "astronaut.jpg"))


@pytest.mark.parametrize("kind", ["gray", "rgba", "uint16", "gray16"])
def test_unusual_png_kinds_are_detected(capsys, tmp_path, face_photo, kind):
    image = {
        "gray": lambda: cv2.cvtColor(face_photo, cv2.COLOR_BGR2GRAY),
        "rgba": lambda: cv2.cvtColor(face_photo, cv2.COLOR_BGR2BGRA),
        "uint16": lambda: face_photo.astype(np.uint16) * 257,
        "gray16": lambda: cv2.cvtColor(face_photo, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257,
    }[kind]()
    path = tmp_path / f"{kind}.png"
    assert cv2.imwrite(str(path), image)
    out = tmp_path / "det.json"
    code, _, _ = run_cli(capsys, "detect", path, "--json", out)
    assert code == 0
    faces = json.loads(out.read_text())[0]["faces"]
    assert len(faces) == 1  # the astronaut's face, whatever the pixel format


def test_one_pixel_image(capsys, tmp_path):
    path = tmp_path / "dot.png"
    cv2.imwrite(str(path), np.full((1, 1, 3), 128, np.uint8))
    out = tmp_path / "det.json"
    code, _, _ = run_cli(capsys, "detect", path, "--json", out)
    assert code == 0
    assert json.loads(out.read_text()) == [{"image": str(path), "width": 1, "height": 1, "faces": []}]


@pytest.mark.slow
def test_huge_image_is_downscaled_not_crashed(capsys, tmp_path, face_photo):
    canvas = np.full((8000, 8000, 3), 90, np.uint8)
    canvas[3000:3512, 3000:3512] = cv2.resize(face_photo, (512, 512))
    path = tmp_path / "huge.jpg"
    cv2.imwrite(str(path), canvas)
    out = tmp_path / "det.json"
    code, _, _ = run_cli(capsys, "detect", path, "--json", out)
    assert code == 0
    result = json.loads(out.read_text())[0]
    assert (result["width"], result["height"]) == (8000, 8000)
    assert len(result["faces"]) >= 1
    x1, y1, x2, y2 = result["faces"][0]["box"]
    assert 3000 < (x1 + x2) / 2 < 3512 and 3000 < (y1 + y2) / 2 < 3512  # original-image pixels


def test_bad_model_argument(capsys, tmp_path, sample_images):
    code, _, err = run_cli(
        capsys, "detect", sample_images / "astronaut.jpg", "--model", tmp_path / "missing.safetensors"
    )
    assert_one_line_error(code, err, "missing.safetensors")


@pytest.mark.parametrize(
    ("command", "flag", "value"),
    [
        ("detect", "--conf", "2"),
        ("detect", "--conf", "nan"),
        ("prune", "--latency-exponent", "-1"),
        ("prune", "--latency-target", "0"),
    ],
)
def test_bad_numbers_are_rejected_by_the_parser(capsys, sample_images, command, flag, value):
    extra = [str(sample_images / "astronaut.jpg")] if command == "detect" else ["--model", "nano-b"]
    with pytest.raises(SystemExit) as exit_info:
        main([command, *extra, flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_latency_target_needs_a_hardware_aware_search(capsys, tmp_path):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "prune", "--model", "nano-b", "--data", "sample", "--out", out,
                           "--latency-target", "0.6")  # fmt: skip
    assert_one_line_error(code, err, "--latency-target")
    assert "--latency-exponent" in err and not out.exists()


def test_info_json_keys(capsys, tmp_path):
    out = tmp_path / "info.json"
    code, stdout, _ = run_cli(capsys, "info", "nano-b", "--json", out)
    assert code == 0
    info = json.loads(out.read_text())
    assert {"params", "gflops", "modules"} <= set(info)
    assert "seed budget" in stdout


def test_export_and_detect_through_onnx(capsys, tmp_path, sample_images):
    onnx_path = tmp_path / "ref.onnx"
    code, _, _ = run_cli(capsys, "export", "retinaface-mnet025", "--out", onnx_path)
    assert code == 0
    out = tmp_path / "det.json"
    code, _, _ = run_cli(capsys, "detect", sample_images / "astronaut.jpg", "--model", onnx_path, "--json", out)
    assert code == 0
    assert len(json.loads(out.read_text())[0]["faces"]) == 1


def test_benchmark_json_rows_in_argument_order(capsys, tmp_path):
    out = tmp_path / "bench.json"
    code, _, _ = run_cli(
        capsys, "benchmark", "nano-b", "retinaface-mnet025", "--size", 128, "--repeats", 2, "--json", out
    )
    assert code == 0
    rows = json.loads(out.read_text())
    assert [r["model"] for r in rows] == ["nano-b", "retinaface-mnet025"]
    for r in rows:
        assert {"model", "params", "gflops", "bytes", "median_ms", "min_ms", "max_ms"} <= set(r)
        assert r["min_ms"] <= r["median_ms"] <= r["max_ms"]


def test_console_script_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "featherface.cli", "detect", str(tmp_path / "absent.png")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "absent.png" in result.stderr


def test_detect_on_a_video_writes_every_frame(capsys, tmp_path, face_photo):
    video = tmp_path / "clip.mp4"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5.0, (512, 512))
    for shift in (0, 8, 16):
        writer.write(np.roll(face_photo, shift, axis=1))
    writer.release()
    out = tmp_path / "det.json"
    code, _, _ = run_cli(capsys, "detect", video, "--json", out, "--save-dir", tmp_path / "drawn")
    assert code == 0
    frames = json.loads(out.read_text())
    assert [f["image"] for f in frames] == [f"{video}#frame={i}" for i in range(3)]
    assert all(len(f["faces"]) == 1 for f in frames)
    assert (tmp_path / "drawn" / "clip.mp4").stat().st_size > 0


def test_batched_folder_detection_equals_one_by_one(capsys, tmp_path, sample_images):
    batched, single = tmp_path / "b.json", tmp_path / "s.json"
    assert run_cli(capsys, "detect", sample_images, "--json", batched, "--batch-size", 4)[0] == 0
    assert run_cli(capsys, "detect", sample_images, "--json", single, "--batch-size", 1)[0] == 0
    a, b = json.loads(batched.read_text()), json.loads(single.read_text())
    assert [x["image"] for x in a] == [x["image"] for x in b]
    for x, y in zip(a, b, strict=True):
        assert len(x["faces"]) == len(y["faces"])
        for f, g in zip(x["faces"], y["faces"], strict=True):
            np.testing.assert_allclose(f["box"], g["box"], atol=0.05)
