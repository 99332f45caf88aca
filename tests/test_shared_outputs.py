"""Two processes, one output (issue 22, kind 3): a result file has one writer at a time; a second is refused before
any work, and the file is left valid with every result of the run that wrote it."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

import featherface
from featherface.cli import main
from featherface.data.sample import sample_root
from featherface.resultlog import ResultLog

SRC = Path(featherface.__file__).resolve().parents[1]


def test_a_second_log_on_one_path_is_refused_while_the_first_writes(tmp_path):
    out = tmp_path / "det.json"
    with ResultLog(out) as first:
        first.add({"image": "a.jpg"})
        with pytest.raises(ValueError, match=r"det\.json: another process is writing it"):
            ResultLog(out)
        first.add({"image": "b.jpg"})
    assert json.loads(out.read_text()) == [{"image": "a.jpg"}, {"image": "b.jpg"}]
    assert not (tmp_path / "det.json.partial").exists()
    with ResultLog(out) as again:  # released: the next run writes it
        again.add({"image": "c.jpg"})
    assert json.loads(out.read_text()) == [{"image": "c.jpg"}]


def test_detect_into_a_json_being_written_is_refused_before_loading_a_model(capsys, monkeypatch, tmp_path):
    from featherface.detection.api import Detector

    def no_work(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(Detector, "load", no_work)
    out = tmp_path / "det.json"
    with ResultLog(out) as other:
        other.add({"image": "theirs.jpg"})
        code = main(["detect", str(sample_root() / "images"), "--json", str(out)])
        err = capsys.readouterr().err
    assert code == 2 and err.strip().splitlines() == [
        f"featherface detect: error: {out}: another process is writing it (its det.json.partial is locked); "
        "wait for it to finish or choose another output"
    ]
    assert json.loads(out.read_text()) == [{"image": "theirs.jpg"}]  # the other run's results, whole


def test_two_detect_runs_started_together_on_one_json_lose_nothing(tmp_path):
    """Two processes 0.3 s apart (were: invalid JSON with NUL bytes and a run that lost all its results)."""
    images = sample_root() / "images"
    expected = sorted(str(p) for p in images.iterdir())
    out = tmp_path / "det.json"
    command = [sys.executable, "-m", "featherface.cli", "detect", str(images), "--json", str(out),
               "--model", "nano-b-pretrained", "--threads", "1"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    runs = []
    for _ in range(2):
        runs.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        time.sleep(0.3)
    finished = [(run.wait(timeout=600), run.stderr.read()) for run in runs]
    for run in runs:
        run.stdout.close()
        run.stderr.close()
    for code, err in finished:
        assert code == 0 or (code == 2 and "another process is writing it" in err), err
    assert 0 in [code for code, _ in finished]
    entries = json.loads(out.read_text())  # valid JSON
    assert sorted(entry["image"] for entry in entries) == expected  # every result of the run that wrote it
    assert not (tmp_path / "det.json.partial").exists()
