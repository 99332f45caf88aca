"""Bad input, tried as a new user would (issue 13: nothing lost, nothing silent).

Each case asserts the exact outcome (a one-line error naming the file, key or run; or the skip counted and
reported; or a refusal) and that the input files and any existing run are byte-identical afterwards.
Training here is one step of nano-b at 64 px on two sample photos.
"""

import hashlib
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from featherface.cli import main
from featherface.config_schema import ConfigError
from featherface.data.labels import LabelError, LabelReport, check_images, parse_label_file
from featherface.data.sample import resolve_dataset, sample_root

TINY = """train:
  epochs: 1
  batch_size: 2
  dataset_repeats: 1
  optimizer: adamw
  lr: 1.0e-3
  warmup_epochs: 0
  schedule: cosine
  workers: 0
  augment: {image_size: 64, crop_attempts: 5}
"""
ASTRONAUT = "181.1 62.2 86.6 109.9 205.0 101.7 0.0 246.8 103.7 0.0 224.7 129.0 0.0 201.7 139.2 0.0 245.3 141.9 0.0 1.0"
CAMERA = "199.2 118.9 55.1 73.4 234.4 147.2 0.0 252.3 149.6 0.0 250.7 169.1 0.0 231.2 180.4 0.0 243.5 181.9 0.0 1.0"


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (files or folders), by path."""
    digests = {}
    for root in map(Path, roots):
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code: int, err: str) -> str:
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def make_dataset(root: Path, label_bytes: bytes) -> Path:
    """``root/label.txt`` (given bytes) and ``root/images`` with two sample photos; returns the label file."""
    images = root / "images"
    images.mkdir(parents=True)
    for name in ("astronaut.jpg", "camera.jpg"):
        shutil.copy(sample_root() / "images" / name, images / name)
    label = root / "label.txt"
    label.write_bytes(label_bytes)
    return label


def good_labels() -> bytes:
    return f"# astronaut.jpg\n{ASTRONAUT}\n# camera.jpg\n{CAMERA}\n".encode()


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: a single tiny step gains nothing from two, and threads starved on a busy machine cost
    minutes."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("config") / "tiny.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_config) -> tuple[Path, Path]:
    """``(run, label file)``: a finished one-epoch run and its data."""
    root = tmp_path_factory.mktemp("finished")
    label = make_dataset(root / "data", good_labels())
    run = root / "run"
    argv = ["train", "--model", "nano-b", "--data", label, "--out", run, "--config", tiny_config, "--device", "cpu"]
    assert main([str(a) for a in argv]) == 0
    return run, label


@pytest.fixture()
def existing_run(finished, tmp_path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(finished[0], run)
    return run


def train_argv(label: Path, run: Path, config: Path, *extra) -> list:
    return ["train", "--model", "nano-b", "--data", label, "--out", run, "--config", config, "--device", "cpu", *extra]


# ------------------------------------------------------------------------------------------- run directories
@pytest.mark.parametrize("command", ["train", "distill", "prune", "finetune"])
def test_training_commands_refuse_an_existing_run(capsys, finished, existing_run, tiny_config, command):
    label = finished[1]
    model = {"distill": ["--teacher", "retinaface-mnet025", "--student", "nano-b"]}.get(
        command, ["--model", "retinaface-mnet025"]
    )
    before = snapshot(existing_run, label.parent, tiny_config)
    code, _, err = run_cli(
        capsys, command, *model, "--data", label, "--val", label, "--out", existing_run, "--config", tiny_config,
        "--device", "cpu",
    )  # fmt: skip
    line = one_line_error(code, err)
    assert f"{existing_run}: already holds a run (trainer_state.pt, metrics.csv" in line
    assert "add --resume to continue it, --overwrite to replace it" in line
    assert snapshot(existing_run, label.parent, tiny_config) == before


def test_overwrite_replaces_the_run_says_what_and_leaves_no_mixed_rows(capsys, finished, existing_run, tiny_config):
    label = finished[1]
    (existing_run / "notes.txt").write_text("mine")  # not a run output: kept
    inputs = snapshot(label.parent, tiny_config)
    code, out, err = run_cli(capsys, *train_argv(label, existing_run, tiny_config, "--overwrite"))
    assert code == 0, err
    removed = "removing trainer_state.pt, metrics.csv (1 epoch row(s)), config.yaml, last.safetensors"
    assert f"--overwrite: replacing the run in {existing_run}: {removed}" in out
    rows = (existing_run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,")  # header + epoch 1 of the new run, none of the old
    assert (existing_run / "notes.txt").read_text() == "mine"
    assert snapshot(label.parent, tiny_config) == inputs


def test_overwrite_never_deletes_an_input(capsys, existing_run, tiny_config):
    before = snapshot(existing_run)
    code, _, err = run_cli(
        capsys, "finetune", "--model", existing_run, "--data", "sample:train", "--out", existing_run,
        "--config", tiny_config, "--overwrite",
    )  # fmt: skip
    assert f"{existing_run}: --overwrite would delete the input --model {existing_run}" in one_line_error(code, err)
    assert snapshot(existing_run) == before


def test_resume_and_overwrite_together_are_refused(capsys, finished, existing_run, tiny_config):
    before = snapshot(existing_run)
    code, _, err = run_cli(capsys, *train_argv(finished[1], existing_run, tiny_config, "--resume", "--overwrite"))
    assert "--resume continues a run and --overwrite replaces it" in one_line_error(code, err)
    assert snapshot(existing_run) == before


def test_temp_files_of_an_interrupted_save_are_removed_on_the_next_start(capsys, finished, existing_run, tiny_config):
    stale = existing_run / ".last.safetensors.featherface-k2j4h_9q.tmp"
    stale.write_bytes(b"half a checkpoint")
    kept = existing_run / "my.tmp"  # not an atomic save's name
    kept.write_bytes(b"x")
    (existing_run / ".notes.txt.k2j4h_9q.tmp").write_bytes(b"a user's")  # an mkstemp name, but not ours: kept
    before = snapshot(existing_run)
    code, out, err = run_cli(capsys, *train_argv(finished[1], existing_run, tiny_config, "--resume"))
    assert code == 0, err
    assert f"{existing_run}: removed 1 temp file(s) of an interrupted save: {stale.name}" in out
    assert not stale.exists() and kept.exists()
    del before[str(stale)]
    assert snapshot(existing_run) == before  # the finished run itself is untouched by the resume


def test_a_time_budget_inside_an_epoch_is_not_reported_as_a_whole_epoch(capsys, finished, tmp_path):
    config = tmp_path / "two_steps.yaml"
    config.write_text(TINY.replace("dataset_repeats: 1", "dataset_repeats: 2"))  # 2 steps per epoch
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, *train_argv(finished[1], run, config, "--max-minutes", "1e-6"))
    assert code == 0, err
    assert "trained 0 epoch(s) and 1 step(s) of epoch 1 (--resume continues it)" in out
    assert not (run / "metrics.csv").exists()  # rows are whole epochs
    assert json.loads((run / "last.json").read_text())["metadata"]["steps_into_next_epoch"] == 1
    code, out, err = run_cli(capsys, *train_argv(finished[1], run, config, "--resume", "--max-minutes", "5"))
    assert code == 0, err
    assert "trained 1 epoch(s);" in out
    rows = (run / "metrics.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("1,")


# ----------------------------------------------------------------------------------------------- configs
@pytest.mark.parametrize(
    ("command", "text", "message"),
    [
        ("train", 'train:\n  lr: "fast"\n', "train.lr: expected a number, got 'fast'"),
        ("train", "epochs: three\n", "epochs: expected a whole number, got 'three'"),
        ("train", "train:\n  augment:\n    image_size: -640\n", "train.augment.image_size: must be >= 32, got -640"),
        ("train", "train:\n  optimizer: adam\n", "train.optimizer: must be one of sgd, adamw, got 'adam'"),
        ("train", "train:\n  bogus: 1\n", "train.bogus: unknown training option (known: model, data,"),
        ("train", "trian:\n  lr: 0.1\nprune: {}\n", "trian: not a section"),
        ("train", "train: [1, 2]\n", "train: expected a mapping of options"),
        ("train", "train: {lr: 1\n", "not valid YAML"),
        ("prune", "prune:\n  search:\n    trials: many\n", "prune.search.trials: expected a whole number, got 'many'"),
        ("prune", "prune:\n  mask: soft\n", "prune.mask: must be one of hard, smooth, got 'soft'"),
        ("distill", "distill:\n  alpha: 1.5\n", "distill.alpha: must be <= 1, got 1.5"),
    ],
)
def test_bad_config_values_name_the_file_and_the_key(capsys, tmp_path, command, text, message):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    before = snapshot(config)
    distill = ["--teacher", "retinaface-mnet025", "--student", "nano-b"]
    model = distill if command == "distill" else ["--model", "nano-b"]
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, command, *model, "--data", "sample:train", "--out", run, "--config", config)
    line = one_line_error(code, err)
    assert line.startswith(f"featherface {command}: error: {config}: ") and message in line, line
    assert not run.exists() and snapshot(config) == before


def test_a_file_with_only_a_prune_section_loads(tmp_path):
    from featherface.pruning.phases import load_prune_config
    from featherface.training.config import load_train_config
    from featherface.training.distill import load_distill_config

    config = tmp_path / "prune.yaml"
    config.write_text("prune:\n  sfp_epochs: 3\n  search: {trials: 4}\n")
    assert load_train_config(config).epochs == 250  # defaults
    assert load_distill_config(str(config)).alpha == 0.7
    prune = load_prune_config(config)
    assert (prune.sfp_epochs, prune.search.trials) == (3, 4)


def test_yaml_one_point_one_exponents_are_numbers(tmp_path):
    from featherface.training.config import load_train_config

    config = tmp_path / "c.yaml"
    config.write_text("lr: 1e-3\nepochs: 2.0\n")  # PyYAML reads 1e-3 (no dot) as text
    loaded = load_train_config(config)
    assert (loaded.lr, loaded.epochs) == (1e-3, 2)


# ------------------------------------------------------------------------------------------------ labels
BAD_LINES = (
    b"\xef\xbb\xbf# astronaut.jpg\r\n"  # 1: a UTF-8 byte-order mark, CRLF line ends
    + ASTRONAUT.encode() + b"\r\n"  # 2
    + b"10 10 -5 5\r\n"  # 3: negative width
    + b"1 2 nan 4\r\n"  # 4: NaN
    + b"1 2 3 4 5 6\r\n"  # 5: extra columns
    + b"900 900 20 20\r\n"  # 6: wholly outside the 512 x 512 image
    + b"# missing.jpg\r\n1 1 5 5\r\n"  # 7-8: no such image
    + b"# camera.jpg\r\n" + CAMERA.encode() + b"\r\n"  # 9-10
)  # fmt: skip


def test_train_counts_and_reports_skipped_label_lines_before_training(capsys, tmp_path, tiny_config):
    label = make_dataset(tmp_path / "data", BAD_LINES)
    before = snapshot(label.parent, tiny_config)
    code, _, err = run_cli(capsys, *train_argv(label, tmp_path / "run", tiny_config, "--max-minutes", "1e-6"))
    assert code == 0, err
    assert (
        f"skipped 3 x bad face line (at {label}:3, {label}:4, {label}:5); 1 x missing image file (at {label}:7); "
        f"1 x box outside the image (at {label}:6)"
    ) in err
    assert "before any" not in err  # the BOM did not hide the first image line
    assert snapshot(label.parent, tiny_config) == before


def test_lenient_parse_keeps_both_images_and_the_good_faces(tmp_path):
    label = make_dataset(tmp_path, BAD_LINES)
    report = LabelReport()
    annotations = resolve_dataset(str(label), report=report)
    assert [(a.name, len(a)) for a in annotations] == [("astronaut.jpg", 1), ("camera.jpg", 1)]
    assert report.skipped == {"bad face line": 3, "missing image file": 1, "box outside the image": 1}
    assert report.files == [
        {"path": str(tmp_path / "images" / "missing.jpg"), "reason": "missing image file", "where": f"{label}:7",
         "detail": ""}
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (b"10 10 -5 5", ":2: bad face line: box of non-positive size -5 x 5"),
        (b"1 2 3 4 5 6", ":2: bad face line: expected 4, 5, 19, 20 numbers, found 6"),
        (b"900 900 20 20", ":2: box outside the image (900, 900, 920, 920 in 512 x 512)"),
    ],
)
def test_strict_training_fails_before_the_first_step_naming_file_and_line(capsys, tmp_path, tiny_config, bad, message):
    label = make_dataset(tmp_path / "data", b"# astronaut.jpg\n" + bad + b"\n# camera.jpg\n" + CAMERA.encode())
    before = snapshot(label.parent)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_argv(label, run, tiny_config, "--strict"))
    assert f"{label}{message}" in one_line_error(code, err)
    assert not run.exists()  # nothing written: it failed before the trainer started
    assert snapshot(label.parent) == before


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda image: image.write_bytes(b"not a photo"), "unreadable image ({image}: not a readable image)"),
        (lambda image: image.unlink(), "image file {image} not found"),
    ],
)
def test_strict_training_names_a_bad_image_and_its_label_line_before_the_first_step(
    capsys, tmp_path, tiny_config, spoil, message
):
    # issue 13: these surfaced mid-epoch as "Caught LabelError in DataLoader worker process 0", no file or line
    label = make_dataset(tmp_path / "data", good_labels())
    image = tmp_path / "data" / "images" / "camera.jpg"
    spoil(image)
    before = snapshot(label.parent)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, *train_argv(label, run, tiny_config, "--strict"))
    assert one_line_error(code, err) == f"featherface train: error: {label}:3: {message.format(image=image)}"
    assert not run.exists() and snapshot(label.parent) == before


def test_strict_unreadable_image_names_its_label_line(tmp_path):
    label = make_dataset(tmp_path, good_labels())
    (tmp_path / "images" / "camera.jpg").write_bytes(b"not a photo")
    with pytest.raises(LabelError, match=r"label\.txt:3: unreadable image \(.*camera\.jpg: not a readable image\)"):
        resolve_dataset(str(label), strict=True)
    report = LabelReport()
    assert [a.name for a in resolve_dataset(str(label), report=report)] == ["astronaut.jpg"]
    assert report.skipped == {"unreadable image": 1}


# ---------------------------------------------------------------------------------------------- evaluate
def broken_png(path: Path) -> None:
    """A PNG whose header reads (40 x 40) but whose pixels do not decode."""
    data = bytearray(cv2.imencode(".png", np.full((40, 40, 3), 90, np.uint8))[1].tobytes())
    for i in range(60, len(data) - 20):
        data[i] ^= 0x5A
    path.write_bytes(bytes(data))


def test_evaluate_skips_unreadable_images_counts_and_lists_them(capsys, tmp_path):
    label = make_dataset(tmp_path / "data", f"# astronaut.jpg\n{ASTRONAUT}\n# junk.jpg\n1 1 5 5\n# bad.png\n".encode())
    (tmp_path / "data" / "images" / "junk.jpg").write_bytes(b"not a photo")  # header unreadable
    broken_png(tmp_path / "data" / "images" / "bad.png")  # header fine, pixels not
    before = snapshot(label.parent)
    out = tmp_path / "eval.json"
    code, _, err = run_cli(
        capsys, "evaluate", "--model", "retinaface-mnet025", "--data", label, "--json", out, "--device", "cpu"
    )
    assert code == 0, err
    summary = [line for line in err.splitlines() if line.startswith("warning:")]
    assert summary == [f"warning: skipped 2 x unreadable image (at {label}:3, {label}:5)"]
    result = json.loads(out.read_text())
    images = tmp_path / "data" / "images"
    assert result["errors"] == [
        {"path": str(images / "junk.jpg"), "reason": "unreadable image", "where": f"{label}:3"},
        {"path": str(images / "bad.png"), "reason": "unreadable image", "where": f"{label}:5"},
    ]
    assert result["skipped"] == {"unreadable image": 2}
    assert [row["image"] for row in result["per_image"]] == ["astronaut.jpg"] and result["num_faces"] == 1
    assert snapshot(label.parent) == before

    code, _, err = run_cli(capsys, "evaluate", "--model", "retinaface-mnet025", "--data", label, "--strict")
    assert f"{label}:3: unreadable image" in one_line_error(code, err)


def test_evaluate_fails_when_no_image_can_be_read(capsys, tmp_path):
    label = make_dataset(tmp_path / "data", b"# bad.png\n1 1 5 5\n")
    broken_png(tmp_path / "data" / "images" / "bad.png")
    code, _, err = run_cli(capsys, "evaluate", "--model", "retinaface-mnet025", "--data", label, "--device", "cpu")
    assert code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith(("warning", "featherface"))] == [
        f"warning: skipped 1 x unreadable image (at {label}:1)",
        f"featherface evaluate: error: {label}: none of the 1 images could be read",
    ]


def test_a_set_without_faces_reports_ap_as_undefined(capsys, tmp_path):
    label = make_dataset(tmp_path / "data", b"# astronaut.jpg\n")
    out = tmp_path / "eval.json"
    code, stdout, err = run_cli(
        capsys, "evaluate", "--model", "retinaface-mnet025", "--data", label, "--json", out, "--device", "cpu"
    )
    assert code == 0, err
    assert "AP@0.5 n/a  AP@0.75 n/a  AP@[.5:.95] n/a  recall n/a" in stdout
    result = json.loads(out.read_text())
    assert result["ap"] is None and result["ap50_95"] is None and result["recall"] is None
    assert result["num_faces"] == 0


# ------------------------------------------------------------------------------------- outputs not written
def three_photos(root: Path) -> list[Path]:
    """astronaut.jpg; camera.jfif (a JPEG under a suffix OpenCV reads by content but has no encoder for);
    grace.jpg. Each 512 x 512 with one face."""
    root.mkdir(parents=True)
    images = sample_root() / "images"
    pairs = [
        ("astronaut.jpg", "astronaut.jpg"),
        ("camera.jpg", "camera.jfif"),
        ("grace_hopper_512x512.jpg", "grace.jpg"),
    ]
    for name, copy in pairs:
        shutil.copy(images / name, root / copy)
    return [root / copy for _, copy in pairs]


def test_detect_skips_counts_and_lists_a_drawn_copy_it_cannot_write(capsys, tmp_path):
    photos = three_photos(tmp_path / "photos")
    drawn, out = tmp_path / "drawn", tmp_path / "det.json"
    (drawn / "grace.jpg").mkdir(parents=True)  # a folder where grace's drawn copy would go: the rename fails
    before = snapshot(tmp_path / "photos")
    model = ["--model", "retinaface-mnet025", "--device", "cpu"]
    code, _, err = run_cli(capsys, "detect", *photos, "--save-dir", drawn, "--json", out, *model)
    assert code == 0, err
    assert (
        f"warning: skipped 2 of 3 file(s): 1 output not written: could not encode the image as .jfif (first: "
        f"{photos[1]}), 1 output not written: Is a directory (first: {photos[2]}); listed in the JSON output"
    ) in err
    # the other image is still drawn; no temp file of the failed writes is left behind
    assert sorted(p.relative_to(drawn).as_posix() for p in drawn.rglob("*")) == ["astronaut.jpg", "grace.jpg"]
    assert cv2.imread(str(drawn / "astronaut.jpg")).shape == (512, 512, 3) and (drawn / "grace.jpg").is_dir()
    entries = json.loads(out.read_text())
    assert [(e["image"], e.get("error")) for e in entries] == [
        (str(photos[0]), None),
        (str(photos[1]), "output not written: could not encode the image as .jfif"),
        (str(photos[2]), "output not written: Is a directory"),
    ]
    # the faces found are kept: the same as without --save-dir
    code, _, err = run_cli(capsys, "detect", *photos, "--json", tmp_path / "plain.json", *model)
    assert code == 0, err
    plain = json.loads((tmp_path / "plain.json").read_text())
    assert [(e["width"], e["height"], e["faces"]) for e in entries] == [
        (e["width"], e["height"], e["faces"]) for e in plain
    ]
    assert all(len(e["faces"]) == 1 for e in plain)
    assert snapshot(tmp_path / "photos") == before

    code, _, err = run_cli(capsys, "detect", *photos, "--save-dir", tmp_path / "d2", "--strict", *model)
    line = one_line_error(code, err)  # the "(--strict)" note after it belongs to SkippedFiles' own test
    assert line.startswith(
        f"featherface detect: error: {photos[1]}: output not written: could not encode the image as .jfif ("
    )


def test_anonymize_skips_counts_and_lists_an_output_it_cannot_write(capsys, tmp_path):
    photos = three_photos(tmp_path / "photos")
    out, index = tmp_path / "anon", tmp_path / "anon.json"
    before = snapshot(tmp_path / "photos")
    code, _, err = run_cli(capsys, "anonymize", *photos, "--out", out, "--json", index, "--model", "retinaface-mnet025",
                           "--device", "cpu")  # fmt: skip
    assert code == 0, err
    assert (
        f"warning: skipped 1 of 3 file(s): 1 output not written: could not encode the image as .jfif (first: "
        f"{photos[1]})"
    ) in err
    assert json.loads(index.read_text()) == [
        {"input": str(photos[0]), "output": str(out / "astronaut.jpg"), "faces": 1},
        {"input": str(photos[1]), "error": "output not written: could not encode the image as .jfif"},
        {"input": str(photos[2]), "output": str(out / "grace.jpg"), "faces": 1},
    ]
    assert sorted(p.name for p in out.iterdir()) == ["astronaut.jpg", "grace.jpg"]
    assert snapshot(tmp_path / "photos") == before


def test_evaluate_save_dir_over_the_images_or_json_over_an_image_is_refused(capsys, tmp_path):
    label = make_dataset(tmp_path / "data", good_labels())
    images = tmp_path / "data" / "images"
    before = snapshot(label.parent)
    evaluate = ["evaluate", "--model", "retinaface-mnet025", "--data", label, "--device", "cpu"]
    code, _, err = run_cli(capsys, *evaluate, "--save-dir", images)
    assert one_line_error(code, err) == (
        f"featherface evaluate: error: {images / 'astronaut.jpg'}: refusing to overwrite the input "
        f"{images / 'astronaut.jpg'}; choose an output folder apart from the inputs"
    )
    code, _, err = run_cli(capsys, *evaluate, "--json", images / "camera.jpg")
    assert f"{images / 'camera.jpg'}: refusing to overwrite the input" in one_line_error(code, err)
    assert snapshot(label.parent) == before


def test_evaluate_drawn_copies_mirror_relative_paths_so_names_cannot_collide(capsys, tmp_path):
    # a/x.jpg, b/x.jpg, y.jpg, y.png: the old names ({stem}.png) gave 2 files for 4 images
    images = tmp_path / "data" / "images"
    (images / "a").mkdir(parents=True)
    (images / "b").mkdir()
    sample = sample_root() / "images"
    shutil.copy(sample / "astronaut.jpg", images / "a" / "x.jpg")
    shutil.copy(sample / "camera.jpg", images / "b" / "x.jpg")
    shutil.copy(sample / "astronaut.jpg", images / "y.jpg")
    cv2.imwrite(str(images / "y.png"), cv2.imread(str(sample / "camera.jpg")))
    label = tmp_path / "data" / "label.txt"
    label.write_text(f"# a/x.jpg\n{ASTRONAUT}\n# b/x.jpg\n{CAMERA}\n# y.jpg\n{ASTRONAUT}\n# y.png\n{CAMERA}\n")
    before = snapshot(label.parent)
    drawn, out = tmp_path / "drawn", tmp_path / "eval.json"
    code, _, err = run_cli(capsys, "evaluate", "--model", "retinaface-mnet025", "--data", label, "--save-dir", drawn,
                           "--json", out, "--device", "cpu")  # fmt: skip
    assert code == 0, err
    written = sorted(p.relative_to(drawn).as_posix() for p in drawn.rglob("*") if p.is_file())
    assert written == ["a/x.jpg", "b/x.jpg", "y.jpg", "y.png"]
    for name in written:  # each the image it mirrors, with the face drawn on it
        copy, original = cv2.imread(str(drawn / name)), cv2.imread(str(images / name))
        assert copy.shape == original.shape and not np.array_equal(copy, original)
    # a lossless copy differs from its image only where the drawing is: inside the labelled face's box, grown
    copy, original = cv2.imread(str(drawn / "y.png")).astype(int), cv2.imread(str(images / "y.png")).astype(int)
    changed = np.argwhere((copy != original).any(axis=2))
    x, y, w, h = (float(v) for v in CAMERA.split()[:4])
    assert changed[:, 1].min() >= x - 20 and changed[:, 1].max() <= x + w + 20
    assert changed[:, 0].min() >= y - 20 and changed[:, 0].max() <= y + h + 20
    assert json.loads(out.read_text())["errors"] == []
    assert snapshot(label.parent) == before


def test_evaluate_lists_a_voc_xml_whose_image_is_missing(capsys, tmp_path):
    root = tmp_path / "voc"
    (root / "annotations").mkdir(parents=True)
    (root / "images").mkdir()
    shutil.copy(sample_root() / "images" / "astronaut.jpg", root / "images" / "a.jpg")
    x, y, w, h = (round(float(v)) for v in ASTRONAUT.split()[:4])
    face = f"<object><name>face</name><bndbox><xmin>{x + 1}</xmin><ymin>{y + 1}</ymin><xmax>{x + w}</xmax>"
    face += f"<ymax>{y + h}</ymax></bndbox></object>"
    (root / "annotations" / "a.xml").write_text(f"<annotation><filename>a.jpg</filename>{face}</annotation>")
    (root / "annotations" / "c.xml").write_text(f"<annotation><filename>c.jpg</filename>{face}</annotation>")
    (root / "annotations" / "d.xml").write_text("<annotation>\n<object>\n</annotation>\n")  # malformed
    before = snapshot(root)
    out = tmp_path / "eval.json"
    code, _, err = run_cli(
        capsys, "evaluate", "--model", "retinaface-mnet025", "--data", root, "--json", out, "--device", "cpu"
    )
    assert code == 0, err
    c, d = root / "annotations" / "c.xml", root / "annotations" / "d.xml"
    assert f"warning: skipped 1 x missing image file (at {c}); 1 x malformed XML (at {d}:3)" in err
    result = json.loads(out.read_text())
    assert result["errors"] == [
        {"path": str(root / "images" / "c.jpg"), "reason": "missing image file", "where": str(c)},
        {"path": str(d), "reason": "malformed XML", "where": f"{d}:3"},
    ]
    assert result["skipped"] == {"missing image file": 1, "malformed XML": 1}
    assert [row["image"] for row in result["per_image"]] == ["a.jpg"] and result["num_faces"] == 1
    assert snapshot(root) == before


# ----------------------------------------------------------------------------------------------- pruning
@pytest.mark.slow
def test_trial_count_after_a_killed_trial_never_exceeds_the_trials(tmp_path):
    import optuna

    from featherface.models.zoo import create_model
    from featherface.pruning.search import SearchConfig, run_search, trial_count

    net = create_model("nano-b", pretrained=False)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = run_search(net, lambda c, m: {"val_loss": 1.0}, SearchConfig(trials=1), storage, say=print)
    optuna.load_study(study_name=study.study_name, storage=storage).ask()  # a trial killed mid-way: RUNNING forever
    said = []
    run_search(net, lambda c, m: {"val_loss": 1.0}, SearchConfig(trials=2), storage,
               progress=lambda done, info: said.append(trial_count(done, 2)), say=print)  # fmt: skip
    assert said == ["trial 2/2"]
    assert trial_count(3, 2) == "trial 3 (the study asked for 2; other workers finished theirs meanwhile)"


# -------------------------------------------------------------------------------------- property tests
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=200)
_number = st.one_of(st.floats(width=32).map(lambda v: f"{v:g}"), st.integers(-5, 600).map(str))
_face = st.lists(_number, min_size=0, max_size=21).map(" ".join)
_image = st.sampled_from(["# astronaut.jpg", "# camera.jpg", "#", "# missing.jpg", "\ufeff# camera.jpg", "# ."])
_line_end = st.sampled_from(["\n", "\r\n", "\r"])


@pytest.fixture(scope="module")
def label_file(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("labels"), b"")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.one_of(_face, _image, _text), _line_end), max_size=12))
def test_any_label_text_gives_annotations_or_a_label_error_with_file_and_line(label_file, lines):
    label = label_file
    text = "".join(text + end for text, end in lines)
    label.write_text(text, encoding="utf-8")
    report = LabelReport()
    annotations = check_images(parse_label_file(label, report=report), report=report)
    for ann in annotations:
        assert np.isfinite(ann.boxes).all() and (ann.boxes[:, 2:] > ann.boxes[:, :2]).all()
        assert len(ann.box_sources) == len(ann)
    try:
        check_images(parse_label_file(label, strict=True), strict=True)
    except LabelError as exc:
        assert str(exc).startswith(f"{label}:"), exc
        line = str(exc)[len(str(label)) + 1 :].split(":")[0]
        assert line.isdigit() and 1 <= int(line) <= text.count("\n") + text.count("\r") + 1, exc
    else:
        assert report.total == 0


_key = st.one_of(
    st.sampled_from(["lr", "epochs", "augment", "image_size", "search", "trials", "alpha", "mask", "data", "bogus"]),
    st.sampled_from(["train", "prune", "distill", "pipeline"]),
    st.text(max_size=8),
)
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.sampled_from(["fast", "1e-3", "sgd"])
)
_yaml = st.recursive(_scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_key, inner, max_size=4))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(_text, _yaml.map(lambda doc: __import__("yaml").safe_dump(doc))))
def test_any_config_text_loads_or_raises_a_config_error_naming_the_file(tmp_path_factory, text):
    from featherface.pipeline import load_pipeline_config
    from featherface.pruning.phases import load_prune_config
    from featherface.training.config import load_train_config
    from featherface.training.distill import load_distill_config

    config = tmp_path_factory.mktemp("config") / "c.yaml"
    config.write_text(text, encoding="utf-8")
    for load in (load_train_config, load_prune_config, load_distill_config, load_pipeline_config):
        try:
            load(str(config))
        except ConfigError as exc:
            assert str(exc).startswith(f"{config}: "), exc
