"""The Python API behind the commands (SPEC section 8): what each run counts, its rules and defaults, and errors
that name its parameters (the command line names them by its options), checked on hand-made cases."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from featherface.anonymize import Anonymized, AnonymizeReport, anonymize_to_folder
from featherface.crops import INDEX_NAME, CropReport, crop_to_folder, index_path
from featherface.data.labels import ImageAnnotation
from featherface.detection.postprocess import Detections
from featherface.detection.run import (
    DetectorChoice,
    DetectReport,
    detect_to_json,
    face_size_options,
    image_count,
    load_for_images,
)
from featherface.detection.sources import Source
from featherface.detection.stream import InputError, Result, VideoTotals
from featherface.errors import ParameterError
from featherface.evaluation.run import MAX_IMAGE_ROWS, DatasetEvaluation, evaluate, evaluate_on_wider
from featherface.evaluation.voc import evaluate_dataset
from featherface.fileio import OutputGuard

from .scripted import ScriptedDetector


def option(parameter: str) -> str:
    """How the command line names a parameter (its flag)."""
    return "--" + parameter.replace("_", "-")


# ------------------------------------------------------------------------------------------- errors, guard
def test_a_parameter_error_names_parameters_in_the_api_and_options_on_the_command_line():
    error = ParameterError(lambda n: f"{n('max_face')} 5 is below {n('min_face')} 10")
    assert str(error) == "max_face 5 is below min_face 10"
    assert error.named(option) == "--max-face 5 is below --min-face 10"
    assert ParameterError("no parameter here").named(option) == "no parameter here"


def test_face_sizes_are_checked_before_any_work_naming_the_parameters():
    with pytest.raises(ParameterError) as raised:
        face_size_options(size=640, min_face=20)
    assert str(raised.value) == "size and min_face/max_face exclude each other: the face sizes choose the scale"
    with pytest.raises(ParameterError) as raised:
        face_size_options(min_face=10, max_face=5)
    assert raised.value.named(option) == "--max-face 5 is below --min-face 10"
    assert face_size_options(min_face=10, max_face=10) == {"size": None, "min_face": 10, "max_face": 10}


def test_an_input_added_after_an_output_claimed_there_is_refused_as_a_claim_after_it_would_be(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(b"pixels")
    inputs_first = OutputGuard()
    inputs_first.add_input(photo)
    with pytest.raises(ValueError) as claimed_after:
        inputs_first.claim(photo, "--json")
    claims_first = OutputGuard()
    claims_first.claim(photo, "--json")
    with pytest.raises(ValueError) as added_after:
        claims_first.add_input(photo)
    expected = f"{photo}: refusing to overwrite the input {photo}; write --json elsewhere"
    assert str(claimed_after.value) == str(added_after.value) == expected
    claims_first.add_input(tmp_path / "b.jpg")  # another input is fine


# --------------------------------------------------------------------------------------------- files runs
def frame_result(video: str, track_ids: list[int] | None, frame: int, faces: int | None = None) -> Result:
    count = len(track_ids) if faces is None else faces
    found = Detections(np.zeros((count, 4), np.float32), np.full(count, 0.9, np.float32), np.zeros((count, 5, 2)))
    ids = None if track_ids is None else np.array(track_ids, dtype=np.int64)
    return Result(Source.video(video), np.zeros((4, 4, 3), np.uint8), found, frame=frame, track_ids=ids)


def test_video_totals_count_frames_faces_and_distinct_tracks():
    totals = VideoTotals()
    for frame, ids in enumerate([[0, 1], [1], [], [1, 2]]):
        totals.add(frame_result("clip.mp4", ids, frame))
    assert (totals.frames, totals.faces, totals.tracks) == (4, 5, {0, 1, 2})
    assert totals.describe() == "4 frame(s), 5 face(s), 3 track(s)"
    untracked = VideoTotals()
    untracked.add(frame_result("clip.mp4", None, 0, faces=2))
    assert untracked.describe() == "1 frame(s), 2 face(s)"


def test_a_detect_report_has_one_line_per_video_in_the_order_they_came():
    report = DetectReport()
    for result in [frame_result("b.mp4", [0], 0), frame_result("a.mp4", [0, 1], 0), frame_result("b.mp4", [], 1)]:
        report.add(result)
    assert report.lines() == ["b.mp4: 2 frame(s), 1 face(s), 1 track(s)", "a.mp4: 1 frame(s), 2 face(s), 2 track(s)"]


def test_only_a_run_of_images_counts_images_for_the_thread_split():
    assert image_count([Source.of("a.jpg"), Source.of("b.png")]) == 2
    assert image_count([Source.of("a.jpg"), Source.of("clip.mp4")]) == 0


def test_load_for_images_splits_threads_across_onnx_passes_then_loads_once(monkeypatch):
    from featherface.detection import api

    loaded = []
    monkeypatch.setattr(api, "cpu_threads", lambda: 4)
    monkeypatch.setattr(api.Detector, "load", classmethod(lambda cls, model, **kw: loaded.append((model, kw)) or "d"))
    # 8 one-image batches of a model that runs in onnxruntime on the CPU: 4 one-thread passes side by side
    assert load_for_images("nano-b-pretrained", 8, device="cpu", allow_untrained=True) == ("d", 4)
    # torch: one pass at a time, with every thread it was given
    assert load_for_images("nano-b-pretrained", 8, device="cpu", threads=3, backend="torch") == ("d", 1)
    assert [kw["threads"] for _, kw in loaded] == [1, 3]
    assert loaded[0] == ("nano-b-pretrained", {"device": "cpu", "threads": 1, "backend": None, "allow_untrained": True})


@pytest.fixture()
def photos(tmp_path):
    """``in/a.jpg`` (2 faces scripted), ``in/b.jpg`` (1 face) and ``in/c.jpg``, which is no image."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(folder / name), np.full((200, 200, 3), 120, np.uint8))
    (folder / "c.jpg").write_text("not a photo")
    return folder


@pytest.fixture()
def scripted(monkeypatch):
    """Every files run detects the faces scripted here, image by image."""
    script = [np.array([[20.0, 20, 80, 80], [110, 110, 170, 170]]), np.array([[40.0, 40, 120, 120]])]
    monkeypatch.setattr(DetectorChoice, "load", lambda self, images: (ScriptedDetector(script), 1))


def test_detect_to_json_writes_every_entry_says_each_count_and_counts_the_unreadable(
    photos, scripted, tmp_path, capsys
):
    out = tmp_path / "faces.json"
    report = detect_to_json(photos, json_path=out)
    entries = json.loads(out.read_text())
    assert [(Path(e["image"]).name, len(e["faces"]), "error" in e) for e in entries] == [
        ("a.jpg", 2, False), ("b.jpg", 1, False), ("c.jpg", 0, True),
    ]  # fmt: skip
    assert capsys.readouterr().out.splitlines() == [f"{photos / 'a.jpg'}: 2 face(s)", f"{photos / 'b.jpg'}: 1 face(s)"]
    assert report.lines() == []
    assert report.skipped == f"1 of 3 file(s): 1 not a readable image (first: {photos / 'c.jpg'})"
    with pytest.raises(InputError) as raised:
        detect_to_json(photos, strict=True)
    assert raised.value.named(option) == f"{photos / 'c.jpg'}: not a readable image (--strict)"


def test_crop_to_folder_counts_crops_and_the_files_it_skipped(photos, scripted, tmp_path):
    out = tmp_path / "crops"
    report = crop_to_folder(photos, out)
    assert (report.crops, report.files, report.faces_without_crop, report.index) == (3, 3, {}, out / INDEX_NAME)
    index = json.loads((out / INDEX_NAME).read_text())
    assert [Path(e["crop"]).name if e.get("crop") else e.get("error") for e in index] == [
        "a.jpg.face0.png", "a.jpg.face1.png", "b.jpg.face0.png", "not a readable image",
    ]  # fmt: skip
    assert report.skipped == f"1 of 3 file(s): 1 not a readable image (first: {photos / 'c.jpg'})"


def test_a_crop_report_counts_faces_without_a_crop_by_reason(tmp_path):
    report = CropReport(tmp_path / "crops", tmp_path / "index.json", files=3, crop_size=112)
    reasons = [None, "landmarks on one line", None, "landmarks on one line", "landmarks not finite"]
    for face, reason in enumerate(reasons):
        report.add({"crop": None, "skipped": reason} if reason else {"crop": f"x.jpg.face{face}.png"})
    assert report.crops == 2
    assert report.faces_without_crop == {"landmarks on one line": 2, "landmarks not finite": 1}
    assert report.lines() == [
        f"2 aligned 112x112 crop(s) from 3 file(s) in {tmp_path / 'crops'}; index {tmp_path / 'index.json'}",
        '3 face(s) without a crop (2 landmarks on one line, 1 landmarks not finite): in the index with "skipped"',
    ]
    assert index_path(tmp_path) == tmp_path / INDEX_NAME and index_path(tmp_path, "i.json") == Path("i.json")


def test_anonymize_to_folder_sums_the_faces_it_hid(photos, scripted, tmp_path, capsys):
    out, index = tmp_path / "out", tmp_path / "anonymized.json"
    report = anonymize_to_folder(photos, out, json_path=index)
    assert (report.files, report.faces, report.predicted) == (2, 3, 0)
    assert report.skipped == f"1 of 3 file(s): 1 not a readable image (first: {photos / 'c.jpg'})"
    assert [e.get("faces") for e in json.loads(index.read_text())] == [2, 1, None]
    assert capsys.readouterr().out.splitlines()[0] == f"{photos / 'a.jpg'}: 2 face(s) hidden -> {out / 'a.jpg'}"
    assert sorted(p.name for p in out.iterdir()) == ["a.jpg", "b.jpg"]


def test_an_anonymize_report_sums_its_files_and_each_file_says_what_was_hidden():
    photo = Anonymized(Path("a.jpg"), Path("out/a.jpg"), faces=2)
    video = Anonymized(Path("v.mp4"), Path("out/v.mp4"), faces=7, frames=3, predicted=1)
    report = AnonymizeReport()
    report.add(photo)
    report.add(video)
    assert (report.files, report.faces, report.predicted) == (2, 9, 1)
    assert photo.describe() == "a.jpg: 2 face(s) hidden -> out/a.jpg"
    assert (
        video.describe() == "v.mp4: 7 face(s) hidden over 3 frame(s), 1 where the tracker predicted them -> out/v.mp4"
    )


# ------------------------------------------------------------------------------------------------ evaluate
def one_face(name: str) -> ImageAnnotation:
    landmarks = np.array([[[30.0, 40], [70, 40], [50, 55], [35, 70], [65, 70]]], np.float32)
    return ImageAnnotation(Path(name), np.array([[20.0, 20, 80, 90]], np.float32), landmarks, np.ones(1, bool))


def test_an_evaluation_prints_its_rows_its_summary_and_keeps_its_settings_in_json():
    ann = one_face("a.jpg")
    exact = Detections(ann.boxes, np.array([0.9], np.float32), ann.landmarks)
    result = evaluate_dataset([ann, one_face("b.jpg")], [exact, Detections()], 0.5, 0.5)
    evaluation = DatasetEvaluation("m", "d", result)
    assert evaluation.table() == [
        "image                          faces  dets   TP   FP  missed",
        "a.jpg                              1     1    1    0       0",
        "b.jpg                              1     0    0    0       1",
    ]
    assert evaluation.summary() == (
        "AP@0.5 0.5000  AP@0.75 0.5000  AP@[.5:.95] 0.5000  recall 0.5000  precision 1.0000  NME 0.0000  "
        "(2 faces from labels; recall, precision and NME at score >= 0.5)"
    )
    data = evaluation.to_dict()
    assert (data["model"], data["data"], data["teacher_conf"], data["errors"], data["ap"]) == ("m", "d", None, [], 0.5)
    result.per_image = result.per_image * (MAX_IMAGE_ROWS // 2 + 1)
    assert evaluation.table() == [f"{2 * (MAX_IMAGE_ROWS // 2 + 1)} images (per-image rows in --json)"]


def test_evaluation_refuses_meaningless_combinations_before_any_work(tmp_path):
    with pytest.raises(ParameterError) as raised:
        evaluate("no-such-model", "sample", classes=["face"], teacher="no-such-teacher")
    assert raised.value.named(option) == "--classes picks labelled VOC classes; it has no meaning with --teacher"
    for given in ({}, {"predictions": tmp_path, "model": "m"}):
        with pytest.raises(ParameterError) as raised:
            evaluate_on_wider(tmp_path, **given)
        assert str(raised.value) == "wider_gt needs exactly one of predictions DIR or model M images DIR"


# ---------------------------------------------------------------------------------------- training runs
def test_the_sample_preset_is_the_recipe_only_where_no_config_is_given_and_the_data_is_the_sample_set():
    from featherface.training.run import config_source

    assert config_source("mine.yaml", "sample") == "mine.yaml"
    assert config_source(None, "sample:train") == "sample"
    assert config_source(None, "/data/widerface") is None
    assert config_source(None) == "sample"  # the pipeline: its recipe names its data
    assert config_source("") == "sample"  # as `pipeline --config ""` always ran


def test_a_resumed_run_keeps_its_saved_options_except_length_time_device_and_workers(tmp_path):
    from featherface.training.config import load_train_config
    from featherface.training.run import run_config

    run = tmp_path / "run"
    run.mkdir()
    saved = {"model": "nano-b", "data": "sample:train", "lr": 0.01, "epochs": 5, "batch_size": 4, "workers": 2}
    (run / "config.yaml").write_text(yaml.safe_dump(saved))
    given = {"lr": 0.5, "batch_size": 2, "epochs": 9, "workers": 0, "max_minutes": None}
    resumed = run_config("other-data", run, overrides={**given, "model": "run-model"}, resume=True)
    assert (resumed.data, resumed.lr, resumed.batch_size) == ("sample:train", 0.01, 4)
    assert (resumed.epochs, resumed.workers, resumed.model, resumed.max_minutes) == (9, 0, "run-model", None)
    with pytest.raises(ParameterError) as raised:
        run_config("sample", tmp_path / "empty", resume=True)
    assert raised.value.named(option) == (
        f"--resume: {tmp_path / 'empty' / 'config.yaml'} not found (was {tmp_path / 'empty'} made by featherface?)"
    )
    preset = load_train_config("sample")
    fresh = run_config("sample", tmp_path / "empty", overrides={"epochs": 2, "lr": None}, resume=True, must_exist=False)
    assert (fresh.epochs, fresh.lr, fresh.batch_size) == (2, preset.lr, preset.batch_size)


def test_overwrite_refuses_to_delete_an_input_naming_it_as_the_caller_does(tmp_path):
    from featherface.training.rundir import RunExistsError, prepare_run_dir

    run = tmp_path / "run"
    run.mkdir()
    (run / "best.safetensors").write_bytes(b"")
    with pytest.raises(RunExistsError) as raised:
        prepare_run_dir(run, overwrite=True, inputs=[("model", str(run))], say=lambda line: None)
    assert str(raised.value) == f"{run}: overwrite would delete the input model {run}; give another out"
    assert raised.value.named(option) == f"{run}: --overwrite would delete the input --model {run}; give another --out"


def test_prune_needs_validation_data_except_on_the_sample_set():
    from featherface.pruning.run import validation_data

    assert validation_data("sample", None) == "sample:val"
    assert validation_data("/data/wider", "val.txt") == "val.txt"
    with pytest.raises(ParameterError) as raised:
        validation_data("/data/wider", None)
    assert raised.value.named(option) == "--val is required: the BO objective is the validation loss"


def test_pruning_options_take_dotted_overrides_checked_as_the_files_are():
    from featherface.config_schema import ConfigError
    from featherface.pruning.phases import load_prune_config
    from featherface.pruning.run import phase_config
    from featherface.pruning.search import SearchConfig

    config = load_prune_config(None, {"search.trials": 3, "method": "oneshot", "search.tolerance": None})
    assert (config.search.trials, config.method, config.search.tolerance) == (3, "oneshot", SearchConfig().tolerance)
    with pytest.raises(ConfigError, match=r"^overrides: prune\.search\.trials: must be >= 1, got 0"):
        load_prune_config(None, {"search.trials": 0})
    with pytest.raises(ParameterError) as raised:
        load_prune_config(None, {"search.latency_target": 0.6})
    named = raised.value.named(option)
    assert named.startswith("--latency-target: latency_target needs") and named.endswith("(--latency-exponent)")
    # a run's epochs set the phase's own length, its seed the search's
    phase = phase_config(None, "sfp_epochs", {"epochs": 4, "seed": 7}, {"mask": "smooth"})
    assert (phase.sfp_epochs, phase.finetune_epochs, phase.search.seed, phase.mask) == (4, 10, 7, "smooth")


def test_show_batch_draws_the_first_samples_of_the_sample_recipe(tmp_path):
    from featherface.training.preview import TILE, preview_batch

    path = preview_batch("sample:train", tmp_path / "batch.png", count=3)
    assert cv2.imread(str(path)).shape == (TILE, 3 * TILE, 3)  # one row of three tiles


# ------------------------------------------------------------------------------------------ info, benchmark
def test_the_zoo_listing_marks_its_default_once_and_says_what_the_columns_mean():
    from featherface.catalog import format_zoo_listing, zoo_listing
    from featherface.models.zoo import ZOO
    from featherface.weights import DEFAULT_MODEL

    listing = zoo_listing()
    names = [row["name"] for row in listing["models"]]
    assert names == list(ZOO)
    assert [row["name"] for row in listing["models"] if row["default"]] == [DEFAULT_MODEL]
    lines = format_zoo_listing(listing).splitlines()
    assert len(lines) == len(ZOO) + 3
    assert lines[names.index(DEFAULT_MODEL)].startswith(f"* {DEFAULT_MODEL} ")


def test_benchmark_threads_times_each_count_in_turn_and_keeps_every_row(monkeypatch):
    from featherface import benchmark

    counts = []

    def timed(models, size, backend, threads, repeats, warmup):
        counts.append(threads)
        return [{"model": m, "threads": threads, "params": 1, "gflops": None, "bytes": 8, "median_ms": 1.0,
                 "min_ms": 1.0, "max_ms": 1.0, "roofline_ms": None} for m in models]  # fmt: skip

    monkeypatch.setattr(benchmark, "benchmark", timed)
    said = []
    rows = benchmark.benchmark_threads(["a", "b"], threads=[2, 1], say=said.append)
    assert counts == [2, 1]
    assert [(row["model"], row["threads"]) for row in rows] == [("a", 2), ("b", 2), ("a", 1), ("b", 1)]
    assert said[0] == "backend torch, 2 thread(s), 1x3x640x640, 30 repeats" and len(said) == 4


def test_a_pipelines_datasets_are_labelled_by_where_its_config_names_them():
    from featherface.outputs import pipeline_datasets
    from featherface.pipeline import PipelineConfig

    pipe = PipelineConfig(data="d", val="v", report_data=["x", "y"])
    assert pipeline_datasets(pipe) == {
        "pipeline data": "d", "pipeline val": "v", "pipeline report_data x": "x", "pipeline report_data y": "y",
    }  # fmt: skip
