"""`detect` with awkward inputs (issue 13): it never writes over an input, drawn copies cannot collide, a bad file is
skipped, counted and listed, an interrupted run keeps what it finished, and folders are searched recursively."""

import hashlib
import json
import shutil

import numpy as np
import pytest

from featherface.cli import main
from featherface.detection.api import Detector

MODEL = ["--model", "retinaface-mnet025"]


def digests(folder):
    return {p.relative_to(folder): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()}


def run(capsys, *args):
    code = main([str(a) for a in (*args, *MODEL)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def photos(tmp_path, sample_images):
    """a/x.jpg, b/x.jpg, y.png, y.jpg, a/deep/z.jpg: same names in different folders and suffixes."""
    root = tmp_path / "photos"
    (root / "a" / "deep").mkdir(parents=True)
    (root / "b").mkdir()
    shutil.copy(sample_images / "astronaut.jpg", root / "a" / "x.jpg")
    shutil.copy(sample_images / "grace_hopper_512x512.jpg", root / "b" / "x.jpg")
    shutil.copy(sample_images / "camera.jpg", root / "y.jpg")
    shutil.copy(sample_images / "astronaut.jpg", root / "a" / "deep" / "z.jpg")
    import cv2

    cv2.imwrite(str(root / "y.png"), cv2.imread(str(sample_images / "grace_hopper_512x512.jpg")))
    return root


def test_save_dir_over_the_inputs_is_refused_before_any_work(capsys, photos):
    before = digests(photos)
    code, _, err = run(capsys, "detect", photos, "--save-dir", photos)
    assert code == 2
    assert "refusing to overwrite the input" in err and str(photos / "a" / "deep" / "z.jpg") in err
    assert digests(photos) == before  # nothing written, nothing replaced
    code, _, err = run(capsys, "detect", photos / "y.jpg", "--json", photos / "y.jpg")
    assert code == 2 and "refusing to overwrite the input" in err
    assert digests(photos) == before


def test_drawn_copies_mirror_relative_paths_so_names_cannot_collide(capsys, tmp_path, photos):
    before = digests(photos)
    drawn, out = tmp_path / "drawn", tmp_path / "det.json"
    code, _, _ = run(capsys, "detect", photos, "--save-dir", drawn, "--json", out)
    assert code == 0
    written = sorted(p.relative_to(drawn).as_posix() for p in drawn.rglob("*") if p.is_file())
    assert written == ["a/deep/z.jpg", "a/x.jpg", "b/x.jpg", "y.jpg", "y.png"]
    entries = json.loads(out.read_text())
    assert [e["image"] for e in entries] == [
        str(photos / n) for n in ["a/deep/z.jpg", "a/x.jpg", "b/x.jpg", "y.jpg", "y.png"]
    ]
    assert all(len(e["faces"]) == 1 for e in entries)  # subfolders searched: five images, one face each
    assert digests(photos) == before


def test_a_save_dir_inside_the_inputs_is_not_read_back(capsys, photos):
    drawn = photos / "drawn"
    for _ in range(2):  # a second run must not detect on the first run's drawings
        code, stdout, _ = run(capsys, "detect", photos, "--save-dir", drawn)
        assert code == 0
        assert "drawn" not in stdout and stdout.count("face(s)") == 5


def test_an_unreadable_image_is_skipped_counted_and_listed(capsys, tmp_path, photos):
    (photos / "b" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    before = digests(photos)
    out = tmp_path / "det.json"
    code, _, err = run(capsys, "detect", photos, "--json", out)
    assert code == 0
    entries = json.loads(out.read_text())
    assert len(entries) == 6
    (failed,) = [e for e in entries if "error" in e]
    assert failed == {
        "image": str(photos / "b" / "broken.jpg"), "width": None, "height": None, "faces": [],
        "error": "not a readable image",
    }  # fmt: skip
    assert "skipped 1 of 6 file(s): 1 not a readable image" in err
    assert digests(photos) == before
    code, _, err = run(capsys, "detect", photos, "--json", out, "--strict")
    assert code == 2 and "broken.jpg: not a readable image" in err


def test_nothing_readable_is_an_error(capsys, tmp_path):
    (tmp_path / "one.jpg").write_text("text")
    (tmp_path / "two.png").write_bytes(b"")
    out = tmp_path / "det.json"
    code, _, err = run(capsys, "detect", tmp_path, "--json", out)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "no input could be read: 2 of 2 file(s)" in err
    assert [e["error"] for e in json.loads(out.read_text())] == ["not a readable image"] * 2  # still listed


def test_an_interrupted_detect_keeps_what_it_finished(capsys, monkeypatch, tmp_path, photos):
    calls = {"n": 0}
    original = Detector.detect_batch

    def interrupted_on_the_third_batch(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Detector, "detect_batch", interrupted_on_the_third_batch)
    out = tmp_path / "det.json"
    code, _, err = run(capsys, "detect", photos, "--json", out, "--batch-size", 1)
    assert code == 130
    assert not out.exists()
    partial = tmp_path / "det.json.partial"
    assert f"2 finished result(s) kept in {partial}" in err
    kept = [json.loads(line) for line in partial.read_text().splitlines()]
    assert [e["image"] for e in kept] == [str(photos / "a" / "deep" / "z.jpg"), str(photos / "a" / "x.jpg")]
    assert all(len(e["faces"]) == 1 for e in kept)


def test_the_api_iterator_yields_a_failure_as_a_result_in_order(photos):
    (photos / "bad.png").write_bytes(b"")
    results = list(Detector.from_pretrained("retinaface-mnet025").detect_files([photos], batch_size=2))
    order = ["a/deep/z.jpg", "a/x.jpg", "b/x.jpg", "bad.png", "y.jpg", "y.png"]
    assert [r.source.relative.as_posix() for r in results] == order
    assert [r.error for r in results] == [None, None, None, "not a readable image", None, None]
    assert [len(r.detections) for r in results if r.ok] == [1] * 5
    # a Python caller counts them as the CLI does
    from featherface.detection.stream import SkippedFiles

    skipped = SkippedFiles(len(results))
    for result in results:
        if not result.ok:
            skipped.add(result.name, result.error)
    assert skipped.finish() == f"1 of 6 file(s): 1 not a readable image (first: {photos / 'bad.png'})"


def test_a_drawn_copy_of_a_gray_only_format_is_written_gray(tmp_path):
    import cv2
    import numpy as np

    from featherface.detection.sources import write_image

    image = np.zeros((8, 8, 3), np.uint8)
    image[2:4, 2:4] = 200
    write_image(tmp_path / "x.pgm", image)
    back = cv2.imread(str(tmp_path / "x.pgm"), cv2.IMREAD_UNCHANGED)
    assert back.shape == (8, 8) and back[3, 3] == 200 and back[0, 0] == 0


def test_skipped_files_are_counted_by_reason_in_one_line():
    from featherface.detection.stream import SkippedFiles

    skipped = SkippedFiles(total=5)
    skipped.add("a.jpg", "not a readable image")
    skipped.add("clip.mp4", "video has no readable frames")
    skipped.add("c.jpg", "not a readable image")
    assert skipped.count == 3
    # reasons in the order first met, each with its count and first file
    assert skipped.finish() == (
        "3 of 5 file(s): 2 not a readable image (first: a.jpg), 1 video has no readable frames (first: clip.mp4)"
    )
    assert SkippedFiles(total=5).finish() is None  # nothing skipped: nothing to say


def test_skipped_files_raise_when_strict_or_when_nothing_could_be_read():
    from featherface.detection.stream import InputError, SkippedFiles

    with pytest.raises(InputError) as raised:
        SkippedFiles(total=5, strict=True).add("a.jpg", "not a readable image")
    assert str(raised.value) == "a.jpg: not a readable image (strict)"
    with pytest.raises(InputError) as raised:  # as the CLI names the setting
        SkippedFiles(total=5, strict=True, strict_name="--strict").add("a.jpg", "not a readable image")
    assert str(raised.value) == "a.jpg: not a readable image (--strict)"
    everything = SkippedFiles(total=2)
    everything.add("a.jpg", "not a readable image")
    everything.add("b.jpg", "not a readable image")
    with pytest.raises(InputError) as raised:
        everything.finish()
    assert str(raised.value) == "no input could be read: 2 of 2 file(s): 2 not a readable image (first: a.jpg)"
    alone = SkippedFiles(total=1)
    alone.add("a.jpg", "not a readable image")
    with pytest.raises(InputError) as raised:
        alone.finish()
    assert str(raised.value) == "a.jpg: not a readable image"  # one file: its own reason, as a plain error


def recorded_readers(monkeypatch) -> list:
    """Every VideoReader that detect_video opens from now on; each notes whether a read-ahead thread was still
    running when its capture was released (``reading_at_release``)."""
    from featherface.detection import stream

    opened = []

    class RecordedReader(stream.VideoReader):
        def __init__(self, path) -> None:
            super().__init__(path)
            self.reading_at_release = None
            opened.append(self)

        def close(self) -> None:
            self.reading_at_release = any(t.is_alive() for t in read_ahead_threads())
            super().close()

    monkeypatch.setattr(stream, "VideoReader", RecordedReader)
    return opened


def read_ahead_threads() -> list:
    import threading

    return [t for t in threading.enumerate() if t.name == "read-ahead"]


@pytest.fixture()
def thirty_frames(tmp_path):
    import numpy as np

    from .scripted import write_video

    return write_video(tmp_path / "clip.mp4", [np.full((64, 64, 3), 8 * i, np.uint8) for i in range(30)])


def test_closing_a_video_iterator_early_stops_its_reader_thread_and_releases_the_video(monkeypatch, thirty_frames):
    import numpy as np

    from featherface.detection.sources import Source
    from featherface.detection.stream import detect_video

    from .scripted import ScriptedDetector

    opened = recorded_readers(monkeypatch)
    results = detect_video(ScriptedDetector([np.zeros((0, 4))] * 30), Source.video(thirty_frames), batch_size=2)
    assert next(results).frame == 0
    (thread,), (reader,) = read_ahead_threads(), opened
    # 2 frames taken, at most 4 read ahead of 30: the thread is still reading
    assert thread.is_alive() and reader.capture.isOpened()
    results.close()
    assert not thread.is_alive()
    assert not reader.capture.isOpened()
    assert reader.reading_at_release is False  # the thread was stopped before the capture it reads was released


def test_a_consumer_that_breaks_out_of_a_pipeline_stage_stops_the_reader_and_leaves_no_video(
    monkeypatch, tmp_path, thirty_frames
):
    from contextlib import closing

    import numpy as np

    from featherface.detection.sources import Source
    from featherface.detection.stream import detect_video, write_rendered

    from .scripted import ScriptedDetector

    opened = recorded_readers(monkeypatch)
    results = detect_video(ScriptedDetector([np.zeros((0, 4))] * 30), Source.video(thirty_frames), batch_size=2)
    target = tmp_path / "out" / "clip.mp4"
    with closing(write_rendered(results, {thirty_frames: target}, lambda r: r.image)) as rendered:
        for result in rendered:
            (thread,) = read_ahead_threads()
            assert result.frame == 0 and thread.is_alive()
            break
    # closing the outer stage closed the video iterator inside it: thread stopped, capture released, no video
    (reader,) = opened
    assert not thread.is_alive() and not reader.capture.isOpened() and reader.reading_at_release is False
    assert not target.exists() and list(target.parent.iterdir()) == []


class SlowFirstDetector:
    """A stand-in for a Detector: each image's "faces" are its mean pixel; the first batch takes longest, so a
    pipeline that yielded results as they finish would put it last. Records how many batches ran at once."""

    def __init__(self) -> None:
        import threading

        self.lock, self.running, self.most_at_once, self.calls = threading.Lock(), 0, 0, 0

    def detect_batch(self, images, **options):
        import time

        from featherface.detection.postprocess import Detections

        with self.lock:
            self.calls += 1
            first = self.calls == 1
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        time.sleep(0.3 if first else 0.05)
        with self.lock:
            self.running -= 1
        return [Detections(scores=np.array([image.mean()], np.float32)) for image in images]


@pytest.mark.parametrize("batch_size", [1, 2])
def test_concurrent_batches_come_back_in_input_order_with_failures_in_place(photos, batch_size):
    import cv2

    from featherface.detection.sources import collect_sources
    from featherface.detection.stream import detect_images

    (photos / "bad.png").write_bytes(b"")
    sources = collect_sources([photos])
    detector = SlowFirstDetector()
    results = list(detect_images(detector, sources, batch_size=batch_size, inference_threads=3))
    order = ["a/deep/z.jpg", "a/x.jpg", "b/x.jpg", "bad.png", "y.jpg", "y.png"]
    assert [r.source.relative.as_posix() for r in results] == order
    assert [r.error for r in results] == [None, None, None, "not a readable image", None, None]
    for result in results[:3] + results[4:]:  # each result carries its own file's pixels and "faces"
        pixels = cv2.imread(str(result.source.path))
        np.testing.assert_array_equal(result.image, pixels)
        assert float(result.detections.scores[0]) == pytest.approx(pixels.mean(), rel=1e-6)
    # batches of 2: z.jpg + a/x.jpg (one size), b/x.jpg alone (the failure follows it), y.jpg + y.png (512x512)
    assert detector.calls == (5 if batch_size == 1 else 3)
    assert detector.most_at_once >= 2  # batches overlapped: the slow first one did not hold up the next


def test_a_failure_comes_out_without_waiting_for_later_batches(photos):
    """--strict stops at the first unreadable file: its result must not wait for the batches queued after it."""
    from featherface.detection.sources import collect_sources
    from featherface.detection.stream import detect_images

    (photos / "a" / "y.png").write_bytes(b"")  # third in order: a/deep/z.jpg, a/x.jpg, a/y.png, b/x.jpg, ...
    detector = SlowAfterFirstDetector()
    found = detect_images(detector, collect_sources([photos]), batch_size=1, inference_threads=2)
    first, second, third = next(found), next(found), next(found)
    assert first.ok and second.ok and third.error == "not a readable image"
    assert detector.finished < detector.calls  # a later (slow) batch was still running when the failure came out
    found.close()


class SlowAfterFirstDetector(SlowFirstDetector):
    """Every batch after the first takes 0.5 s; counts the batches finished."""

    finished = 0

    def detect_batch(self, images, **options):
        import time

        from featherface.detection.postprocess import Detections

        with self.lock:
            self.calls += 1
            slow = self.calls > 1
        time.sleep(0.5 if slow else 0.0)
        with self.lock:
            self.finished += 1
        return [Detections() for _ in images]


def test_side_by_side_forward_passes_find_exactly_what_one_at_a_time_finds(photos):
    """The shipped ONNX, one-thread passes: two at once give bit-identical faces to one at a time."""
    from featherface.detection.sources import collect_sources
    from featherface.detection.stream import detect_images

    detector = Detector.load("nano-b-pretrained", threads=1)
    sources = collect_sources([photos])
    one, two = (list(detect_images(detector, sources, batch_size=1, inference_threads=n)) for n in (1, 2))
    assert [r.name for r in one] == [r.name for r in two]
    for a, b in zip(one, two, strict=True):
        assert len(a.detections) >= 1
        np.testing.assert_array_equal(a.detections.boxes, b.detections.boxes)
        np.testing.assert_array_equal(a.detections.scores, b.detections.scores)


def test_threads_go_across_passes_for_onnx_on_the_cpu_and_inside_one_pass_otherwise(monkeypatch, tmp_path):
    from featherface.detection import api
    from featherface.detection.api import split_threads

    onnx = str(tmp_path / "model.onnx")
    assert split_threads("nano-b-pretrained", "cpu", 2, images=848) == (1, 2)
    assert split_threads(onnx, "auto", 4, images=10) == (1, 4)
    assert split_threads(onnx, "cpu", 4, images=3) == (1, 3)  # never more passes than batches
    assert split_threads(onnx, "cpu", 8, images=8, batch_size=8) == (8, 1)  # one batch: all threads in its pass
    assert split_threads(onnx, "cpu", 16, images=16, batch_size=8) == (8, 2)  # two batches share the threads
    assert split_threads(onnx, "cpu", 12, images=100) == (3, 4)  # at most 4 passes hold images at once
    monkeypatch.setattr(api, "cpu_threads", lambda: 16)
    assert split_threads(onnx, "cpu", None, images=100) == (4, 4)
    assert split_threads(onnx, "cpu", 2, images=1) == (2, 1)  # one image
    assert split_threads(onnx, "cpu", 2, images=0) == (2, 1)  # videos among the inputs: frames one pass at a time
    assert split_threads(onnx, "cuda", 2, images=100) == (2, 1)
    assert split_threads("retinaface-mnet025", "cpu", 2, images=100) == (1, 2)  # its shipped ONNX
    assert split_threads("retinaface-mnet025", "cpu", 2, images=100, backend="torch") == (2, 1)
    assert split_threads("nano-b-distilled", "cpu", 2, images=100) == (1, 2)  # its shipped ONNX too
    assert split_threads("nano-b-distilled", "cpu", 2, images=100, backend="torch") == (2, 1)
    assert split_threads("nano-b-pretrained", "cuda", None, images=100) == (None, 1)  # its checkpoint, in torch
