"""Anonymisation: on the sample photos and a short video, the reference detector at 0.5 finds none of the faces it
found before; inputs stay byte-identical; per-file face counts in the JSON."""

import hashlib
import json
import os
import shutil

import cv2
import numpy as np
import pytest

from featherface.anonymize import AnonymizeConfig, anonymize_image, grow_boxes
from featherface.cli import main
from featherface.detection.api import Detector
from featherface.detection.boxes import box_iou
from featherface.detection.postprocess import PostprocessConfig


def digests(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def reference():
    return Detector.from_pretrained("retinaface-mnet025")  # conf 0.5


@pytest.fixture(scope="module")
def photos(sample_images, reference):
    """name -> (image, faces found at 0.5, faces found at 0.3: what anonymize hides by default), detected once."""
    low = Detector.from_pretrained("retinaface-mnet025", postprocess_config=PostprocessConfig(0.3))
    found = {}
    for path in sorted(sample_images.glob("*.jpg")):
        image = cv2.imread(str(path))
        found[path.name] = (image, reference.detect(image).boxes, low.detect(image).boxes)
    return found


def faces_found_again(reference, before: np.ndarray, image: np.ndarray) -> int:
    """Faces of ``before (K, 4)`` that ``reference`` finds again in ``image`` (a box at IoU >= 0.3)."""
    after = reference.detect(image).boxes
    if not len(before) or not len(after):
        return 0
    return int((box_iou(before.astype(np.float64), after.astype(np.float64)) >= 0.3).any(axis=1).sum())


def test_solid_fill_covers_the_whole_box_and_nothing_beyond_the_margin():
    rng = np.random.default_rng(0)
    image = rng.integers(1, 255, size=(200, 300, 3), dtype=np.uint8)
    box = np.array([[100.0, 50, 160, 130]])
    out = anonymize_image(image, box, AnonymizeConfig(mode="solid"))
    assert (out[50:130, 100:160] == 0).all()  # margin 0.25: the ellipse contains the box's corners
    x1, y1, x2, y2 = np.floor(grow_boxes(box, 0.25)[0]).astype(int)
    outside = np.ones(image.shape[:2], bool)
    outside[y1 : y2 + 1, x1 : x2 + 1] = False
    assert np.array_equal(out[outside], image[outside])
    assert (out[y1 + 1, x1 + 1] == image[y1 + 1, x1 + 1]).all()  # the grown box's corner: outside the ellipse


def test_photos_anonymised_by_the_cli_hide_every_face(capsys, tmp_path, sample_images, reference, photos):
    inputs = tmp_path / "in"
    shutil.copytree(sample_images, inputs / "photos")
    before_bytes = digests(inputs)
    out, report = tmp_path / "out", tmp_path / "faces.json"
    assert main(["anonymize", str(inputs), "--out", str(out), "--json", str(report)]) == 0
    assert digests(inputs) == before_bytes
    counts = {entry["input"]: entry for entry in json.loads(report.read_text())}
    assert len(counts) == len(photos) == 9
    for name, (original, faces, faces_at_recall_threshold) in photos.items():
        entry = counts[str(inputs / "photos" / name)]
        assert entry["output"] == str(out / "photos" / name)
        assert entry["faces"] == len(faces_at_recall_threshold)  # default threshold 0.3
        anonymised = cv2.imread(entry["output"])
        assert anonymised.shape == original.shape
        assert faces_found_again(reference, faces, anonymised) == 0, name


@pytest.mark.parametrize("mode", ["pixelate", "solid"])
def test_other_modes_hide_every_face(reference, photos, mode):
    for name, (image, faces, faces_at_recall_threshold) in photos.items():
        anonymised = anonymize_image(image, faces_at_recall_threshold, AnonymizeConfig(mode=mode))
        # measured: pixelate leaves no detection at all; solid leaves one phantom in faceapi_sample4, between two
        # filled ellipses (IoU 0.13 with the nearest face), none on a face
        assert faces_found_again(reference, faces, anonymised) == 0, name


def test_a_video_is_anonymised_frame_by_frame_at_its_fps_and_size(tmp_path, sample_images, reference):
    photo = cv2.imread(str(sample_images / "faceapi_sample5.jpg"))
    video = tmp_path / "in" / "clip.avi"
    video.parent.mkdir()
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 7.0, (800, 640))
    for i in range(6):
        writer.write(np.ascontiguousarray(photo[4 * i : 4 * i + 640, 60 + 20 * i : 860 + 20 * i]))
    writer.release()
    before_bytes = video.read_bytes()
    out, report = tmp_path / "out", tmp_path / "faces.json"
    assert main(["anonymize", str(video), "--out", str(out), "--json", str(report), "--batch-size", "4"]) == 0
    assert video.read_bytes() == before_bytes
    (entry,) = json.loads(report.read_text())
    result = out / "clip.avi.mp4"
    assert entry["output"] == str(result) and entry["frames"] == 6 and entry["faces"] >= 30
    original, anonymised = cv2.VideoCapture(str(video)), cv2.VideoCapture(str(result))
    assert anonymised.get(cv2.CAP_PROP_FPS) == pytest.approx(7.0)
    frames = 0
    while True:
        ok_a, before = original.read()
        ok_b, after = anonymised.read()
        if not (ok_a and ok_b):
            assert ok_a == ok_b  # same number of frames
            break
        assert after.shape == before.shape == (640, 800, 3)
        assert faces_found_again(reference, reference.detect(before).boxes, after) == 0
        frames += 1
    assert frames == 6


def test_bad_mode_and_an_output_over_the_inputs_are_refused(capsys, tmp_path, sample_images):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(sample_images / "astronaut.jpg", inputs)
    before_bytes = digests(inputs)
    assert main(["anonymize", str(inputs), "--out", str(inputs)]) == 2
    err = capsys.readouterr().err
    assert "refusing to overwrite the input" in err and str(inputs / "astronaut.jpg") in err
    assert digests(inputs) == before_bytes
    with pytest.raises(SystemExit):
        main(["anonymize", str(inputs), "--out", str(tmp_path / "o"), "--mode", "smudge"])


def test_a_tracked_face_the_detector_misses_is_predicted_for_max_age_frames(tmp_path):
    from featherface.anonymize import hidden_boxes
    from featherface.detection.sources import Source
    from featherface.detection.stream import detect_video
    from featherface.detection.tracking import TrackerConfig

    from .scripted import ScriptedDetector, write_video

    face, nothing = np.array([[40.0, 30, 80, 80]]), np.zeros((0, 4))
    # a face that stands still, seen in frames 0-2, missed in 3-9, seen again in 10-11
    script = [face] * 3 + [nothing] * 7 + [face] * 2
    video = write_video(tmp_path / "clip.mp4", [np.full((96, 128, 3), 100, np.uint8)] * 12)
    config = TrackerConfig(smooth=False)  # max_age 5
    results = list(detect_video(ScriptedDetector(script), Source.video(video), 4, tracker_config=config))
    assert len(results) == 12
    missed = [len(r.missed_boxes) for r in results]
    # a still face's filter has no velocity: its prediction is the face's box exactly, for 5 missed frames; the
    # 6th miss ends the track, and the face seen again is a new track
    assert missed == [0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0]
    for r in results[3:8]:
        np.testing.assert_allclose(r.missed_boxes, face, atol=1e-4)
        np.testing.assert_allclose(hidden_boxes(r), face, atol=1e-4)
    assert [r.track_ids.tolist() for r in results] == [[0]] * 3 + [[]] * 7 + [[1]] * 2
    assert all(len(hidden_boxes(r)) == 0 for r in results[8:10])


def test_a_one_frame_detection_miss_does_not_show_the_face_in_an_anonymised_video(tmp_path):
    from featherface.anonymize import anonymize_files
    from featherface.detection.sources import Source

    from .scripted import ScriptedDetector, write_video

    # a white 40 x 40 "face" crossing a grey frame 6 px per frame; the detector misses it in frame 4
    boxes = [np.array([[20.0 + 6 * i, 40, 60 + 6 * i, 80]]) for i in range(8)]
    frames = []
    for x1, y1, x2, y2 in (b[0].astype(int) for b in boxes):
        frame = np.full((120, 160, 3), 100, np.uint8)
        frame[y1:y2, x1:x2] = 255
        frames.append(frame)
    (tmp_path / "in").mkdir()
    video = write_video(tmp_path / "in" / "walk.mp4", frames)
    script = [b if i != 4 else np.zeros((0, 4)) for i, b in enumerate(boxes)]
    solid = AnonymizeConfig(mode="solid")

    def white_share_of_the_face(out_dir, track: bool) -> tuple[list[float], dict]:
        (entry,) = anonymize_files(ScriptedDetector(script), [Source.video(video)], out_dir, solid, track=track)
        capture, shares = cv2.VideoCapture(str(entry.output)), []
        for x1, y1, x2, y2 in (b[0].astype(int) for b in boxes):
            ok, frame = capture.read()
            assert ok
            shares.append(float((frame[y1:y2, x1:x2] > 180).all(axis=-1).mean()))
        capture.release()
        return shares, entry.to_json()

    tracked, entry = white_share_of_the_face(tmp_path / "tracked", track=True)
    # measured: no pixel of the face's box left white in any frame, the missed frame 4 included
    assert max(tracked) < 0.01, tracked
    assert entry["frames"] == 8 and entry["faces"] == 8 and entry["predicted"] == 1
    untracked, entry = white_share_of_the_face(tmp_path / "untracked", track=False)
    # without the tracker, frame 4 shows the whole face; the others are hidden as before
    assert untracked[4] > 0.95 and max(untracked[:4] + untracked[5:]) < 0.01, untracked
    assert entry["faces"] == 7 and entry["predicted"] == 0


def test_a_video_whose_output_cannot_be_written_costs_one_entry_not_the_run(tmp_path, monkeypatch):
    from featherface.anonymize import anonymize_files
    from featherface.detection import sources
    from featherface.detection.sources import Source

    from .scripted import ScriptedDetector, write_video

    (tmp_path / "in").mkdir()
    frames = [np.full((64, 80, 3), 100, np.uint8) for _ in range(4)]
    videos = [write_video(tmp_path / "in" / f"{name}.mp4", frames) for name in ("a", "b")]
    before = {v: v.read_bytes() for v in videos}
    script = [np.array([[10.0, 10, 40, 40]])] * 8

    def run(out):
        found = anonymize_files(ScriptedDetector(script), [Source.video(v) for v in videos], out, track=False)
        return [entry.to_json() for entry in found]

    written_b = {"input": str(videos[1]), "output": str(tmp_path / "{}" / "b.mp4"), "faces": 4, "frames": 4,
                 "predicted": 0}  # fmt: skip

    # at the first frame: a folder where a.mp4's temporary file goes
    temporary = f".a.{os.getpid()}.partial.mp4"
    (tmp_path / "blocked" / temporary).mkdir(parents=True)
    entries = run(tmp_path / "blocked")
    assert entries[1] == {**written_b, "output": str(tmp_path / "blocked" / "b.mp4")}
    assert entries[0]["input"] == str(videos[0]) and set(entries[0]) == {"input", "error"}
    assert entries[0]["error"].startswith("output not written: ") and "mp4v" in entries[0]["error"]
    assert sorted(p.name for p in (tmp_path / "blocked").iterdir()) == [temporary, "b.mp4"]

    # mid-video: the disk fills at a's third frame; its partial file is removed, b is still written
    real_write, calls = sources.VideoOutput.write, []

    def write(self, frame):
        calls.append(self.path.name)
        if self.path.name == "a.mp4" and calls.count("a.mp4") == 3:
            raise OSError(28, "No space left on device")
        real_write(self, frame)

    monkeypatch.setattr(sources.VideoOutput, "write", write)
    entries = run(tmp_path / "full")
    assert entries == [
        {"input": str(videos[0]), "error": "output not written: No space left on device"},
        {**written_b, "output": str(tmp_path / "full" / "b.mp4")},
    ]
    assert calls == ["a.mp4"] * 3 + ["b.mp4"] * 4  # a's fourth frame is not written after the failure
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["b.mp4"]
    assert {v: v.read_bytes() for v in videos} == before


def test_no_track_hides_only_the_faces_detected_in_each_frame(tmp_path, monkeypatch):
    from featherface import cli
    from featherface.detection.run import DetectorChoice

    from .scripted import ScriptedDetector, write_video

    boxes = [np.array([[20.0 + 6 * i, 40, 60 + 6 * i, 80]]) for i in range(8)]
    (tmp_path / "in").mkdir()
    video = write_video(tmp_path / "in" / "walk.mp4", [np.full((120, 160, 3), 100, np.uint8)] * 8)
    script = [b if i != 4 else np.zeros((0, 4)) for i, b in enumerate(boxes)]  # missed in frame 4
    counts = {}
    for flags in ([], ["--no-track"]):
        monkeypatch.setattr(DetectorChoice, "load", lambda self, images: (ScriptedDetector(script), 1))
        out, index = tmp_path / f"out{len(flags)}", tmp_path / f"faces{len(flags)}.json"
        assert cli.main(["anonymize", str(video), "--out", str(out), "--json", str(index), *flags]) == 0
        (entry,) = json.loads(index.read_text())
        counts[tuple(flags)] = (entry["faces"], entry["predicted"])
    # tracked: the missed frame's face is hidden where the tracker predicts it; --no-track: 7 detections only
    assert counts == {(): (8, 1), ("--no-track",): (7, 0)}
