"""No output over a user's file (issue 22, kind 2): every output of a command is checked against every input it
reads (images, label files, VOC XML, configs, models) and refused before any work, naming the file; a command
deletes only the temp files it can prove it made, at the top of a run folder it owns."""

import hashlib
import shutil
from pathlib import Path

import pytest

from featherface.cli import main
from featherface.data.sample import sample_root

ASTRONAUT = "181.1 62.2 86.6 109.9 205.0 101.7 0.0 246.8 103.7 0.0 224.7 129.0 0.0 201.7 139.2 0.0 245.3 141.9 0.0 1.0"
CAMERA = "199.2 118.9 55.1 73.4 234.4 147.2 0.0 252.3 149.6 0.0 250.7 169.1 0.0 231.2 180.4 0.0 243.5 181.9 0.0 1.0"
TINY = """train:
  epochs: 1
  batch_size: 2
  optimizer: adamw
  warmup_epochs: 0
  schedule: cosine
  workers: 0
  augment: {image_size: 64, crop_attempts: 5}
"""


def snapshot(*roots: Path) -> dict[str, str]:
    """sha256 of every file under ``roots`` (hidden ones included), by path."""
    digests = {}
    for root in roots:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in files:
            digests[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def one_line_error(capsys, *argv) -> str:
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.fixture()
def dataset(tmp_path) -> Path:
    """``data/label.txt`` over ``data/images/{astronaut.jpg, pr.png}``: an input image that happens to be called
    like the PR curve evaluate --plots writes."""
    import cv2

    images = tmp_path / "data" / "images"
    images.mkdir(parents=True)
    shutil.copy(sample_root() / "images" / "astronaut.jpg", images / "astronaut.jpg")
    cv2.imwrite(str(images / "pr.png"), cv2.imread(str(sample_root() / "images" / "camera.jpg")))
    label = tmp_path / "data" / "label.txt"
    label.write_text(f"# astronaut.jpg\n{ASTRONAUT}\n# pr.png\n{CAMERA}\n")
    return label


def test_evaluate_json_naming_its_own_label_file_is_refused_and_changes_nothing(capsys, dataset):
    before = snapshot(dataset.parent)
    line = one_line_error(capsys, "evaluate", "--model", "retinaface-mnet025", "--data", dataset, "--json", dataset)
    assert line == (
        f"featherface evaluate: error: {dataset}: refusing to overwrite the input {dataset} (labels of --data); "
        "write --json elsewhere"
    )
    assert snapshot(dataset.parent) == before


def test_evaluate_plots_into_the_image_folder_is_refused_over_an_input_named_pr_png(capsys, dataset):
    images = dataset.parent / "images"
    before = snapshot(dataset.parent)
    line = one_line_error(capsys, "evaluate", "--model", "retinaface-mnet025", "--data", dataset, "--plots", images)
    assert f"{images / 'pr.png'}: refusing to overwrite the input {images / 'pr.png'}" in line
    assert snapshot(dataset.parent) == before


def test_json_naming_a_model_file_or_a_config_is_refused(capsys, tmp_path):
    from featherface.models.checkpoint import save_checkpoint
    from featherface.models.zoo import create_model

    weights = save_checkpoint(create_model("nano-b", pretrained=False), tmp_path / "model.safetensors")
    described = weights.with_suffix(".json")  # the architecture beside the weights
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    before = snapshot(tmp_path)
    line = one_line_error(capsys, "info", weights, "--json", described)
    assert f"{described}: refusing to overwrite the input {described} (--model)" in line
    line = one_line_error(capsys, "show-batch", "--data", "sample", "--config", config, "--out-png", config)
    assert f"{config}: refusing to overwrite the input {config} (--config)" in line
    assert snapshot(tmp_path) == before


def test_train_out_on_a_folder_of_user_files_deletes_nothing(capsys, tmp_path, dataset):
    """Files named like an atomic save's temp file (``.NAME.XXXXXXXX.tmp``), at the top and deep inside."""
    folder = tmp_path / "mine"
    user_files = [folder / ".report.docx.20240101.tmp", folder / "photos" / "2019" / "sub" / ".vacation.a1b2c3d4.tmp"]
    for path in user_files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"a user's file")
    before = snapshot(folder)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    argv = ["train", "--model", "nano-b", "--data", dataset, "--out", folder, "--config", config, "--device", "cpu"]
    assert main([str(a) for a in argv]) == 0, capsys.readouterr().err
    assert "removed" not in capsys.readouterr().out
    after = snapshot(folder)
    assert {path: after.get(path) for path in before} == before  # every user file kept, byte for byte


def test_only_marked_temp_files_at_the_top_of_the_run_are_removed(tmp_path):
    from featherface.fileio import temp_file_beside
    from featherface.training.rundir import prepare_run_dir

    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    stale = Path(temp_file_beside(run / "last.safetensors")[1])  # a save killed before its rename
    deeper = run / "sub" / stale.name  # same name, one level down: not the run's to clean
    shutil.copy(stale, deeper)
    lookalike = run / ".last.safetensors.k2j4h_9q.tmp"  # an old-style name: no featherface marker
    lookalike.write_bytes(b"x")
    said = []
    prepare_run_dir(run, say=said.append)
    assert not stale.exists() and deeper.exists() and lookalike.exists()
    assert said == [f"{run}: removed 1 temp file(s) of an interrupted save: {stale.name}"]
