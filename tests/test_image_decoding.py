"""The package's one image decoder: photos come out as a viewer shows them (all 8 EXIF orientations, in JPEG, PNG,
WebP and TIFF), written copies are upright, videos are rotated as players rotate them, an image over the pixel
limit is refused before its pixels are allocated, and an animated GIF is read frame by frame."""

import json
import os
import shutil
import struct
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest

from featherface.cli import main
from featherface.data.labels import image_size
from featherface.detection.api import Detector
from featherface.detection.boxes import box_iou
from featherface.detection.image import ImageError, read_image
from featherface.detection.sources import VideoReader, collect_sources

from .image_files import oriented_tiff, png_bomb, stored_as, tagged_jpeg, tagged_png, tagged_webp

ORIENTATIONS = range(1, 9)


@pytest.fixture(scope="module")
def upright():
    """A 20 x 40 image whose every pixel differs from its mirror and turned images."""
    return np.random.default_rng(0).integers(0, 256, (20, 40, 3), dtype=np.uint8)


@pytest.mark.parametrize("orientation", ORIENTATIONS)
@pytest.mark.parametrize("writer", [tagged_png, tagged_webp, oriented_tiff], ids=["png", "webp", "tiff"])
def test_every_orientation_tag_gives_the_image_a_viewer_shows(tmp_path, upright, writer, orientation):
    path = tmp_path / "photo.img"
    path.write_bytes(writer(stored_as(upright, orientation), orientation))
    assert np.array_equal(read_image(path), upright)  # lossless formats: pixel for pixel
    assert image_size(path) == (40, 20)  # from the header alone


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_jpeg_orientation_matches_opencvs_own_exif_reading(tmp_path, upright, orientation):
    """The same tags in JPEG (lossy): the viewer-frame size, and the pixels OpenCV gives when it applies the
    orientation itself (its IMREAD_COLOR path; read_image reads with IMREAD_UNCHANGED, which ignores the tag)."""
    data = tagged_jpeg(stored_as(upright, orientation), orientation)
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    image = read_image(path)
    assert image.shape == (20, 40, 3) and image_size(path) == (40, 20)
    assert np.array_equal(image, cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR))


def detect_json(tmp_path, inputs, name="faces.json"):
    report = tmp_path / name
    assert main(["detect", *map(str, inputs), "--json", str(report)]) == 0
    return {entry["image"]: entry for entry in json.loads(report.read_text())}


def test_a_tagged_photo_gives_the_upright_photos_faces_in_viewer_pixels(tmp_path, sample_images):
    """Each of the 8 ways a camera stores a photo: the same size and faces, in the same coordinates, as the upright
    photo (PNG: the same pixels, so the same faces to float rounding)."""
    photo = cv2.imread(str(sample_images / "faceapi_sample5.jpg"))  # 1024 x 746, 5 faces
    folder = tmp_path / "photos"
    folder.mkdir()
    cv2.imwrite(str(folder / "upright.png"), photo)
    for orientation in ORIENTATIONS:
        (folder / f"tag{orientation}.png").write_bytes(tagged_png(stored_as(photo, orientation), orientation))
    found = detect_json(tmp_path, [folder])
    reference = found[str(folder / "upright.png")]
    assert (reference["width"], reference["height"]) == (1024, 746) and len(reference["faces"]) == 5
    expected = np.array([face["box"] for face in reference["faces"]])
    for orientation in ORIENTATIONS:
        entry = found[str(folder / f"tag{orientation}.png")]
        assert (entry["width"], entry["height"]) == (1024, 746), orientation
        boxes = np.array([face["box"] for face in entry["faces"]])
        assert boxes.shape == expected.shape and np.allclose(boxes, expected, atol=0.01), orientation


def test_the_anonymised_copy_of_a_sideways_phone_photo_is_upright_and_hides_every_face(tmp_path, sample_images):
    """A phone photo stored sideways with Orientation 6 (turn 90° clockwise to view): its copy is written upright
    with no tag, and the reference detector finds none of the upright photo's 3 faces in it."""
    photo = cv2.imread(str(sample_images / "faceapi_sample1.jpg"))  # 1024 x 683, 3 faces
    source = tmp_path / "in" / "phone.jpg"
    source.parent.mkdir()
    source.write_bytes(tagged_jpeg(stored_as(photo, 6), 6))
    out = tmp_path / "out"
    assert main(["anonymize", str(source), "--out", str(out)]) == 0
    copy_bytes = np.frombuffer((out / "phone.jpg").read_bytes(), np.uint8)
    copy = cv2.imdecode(copy_bytes, cv2.IMREAD_UNCHANGED)  # the pixels as stored
    assert copy.shape == photo.shape
    assert cv2.imdecode(copy_bytes, cv2.IMREAD_COLOR).shape == photo.shape  # as shown: no tag turns them
    reference = Detector.from_pretrained("retinaface-mnet025")  # conf 0.5
    faces = reference.detect(photo).boxes
    assert len(faces) == 3
    left = reference.detect(copy).boxes
    assert not len(left) or not (box_iou(faces.astype(np.float64), left.astype(np.float64)) >= 0.3).any()


def rotated_mp4(path, frames: int = 3) -> None:
    """An mp4v video of 64 x 32 frames (a white square at the top left) whose track header asks players to turn
    it 90° clockwise, as a phone filming upright writes it: tkhd's matrix set to (0, 1, -1, 0) in 16.16."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (64, 32))
    for _ in range(frames):
        frame = np.zeros((32, 64, 3), np.uint8)
        frame[:8, :8] = 255
        writer.write(frame)
    writer.release()
    data = bytearray(path.read_bytes())
    tkhd = data.find(b"tkhd")
    assert data[tkhd + 4] == 0  # version 0: the matrix follows 40 bytes of times, ids, layer and volume
    matrix = tkhd + 4 + 40
    data[matrix : matrix + 36] = struct.pack(">9i", 0, 0x10000, 0, -0x10000, 0, 0, 0, 0, 0x40000000)
    path.write_bytes(bytes(data))


def test_a_video_with_rotation_metadata_is_read_upright(tmp_path):
    video = tmp_path / "phone.mp4"
    rotated_mp4(video)
    with VideoReader(video) as reader:
        frames = list(reader)
        assert (reader.info.width, reader.info.height) == (32, 64)
    assert len(frames) == 3 and all(frame.shape == (64, 32, 3) for frame in frames)
    ys, xs = np.nonzero(frames[0][:, :, 0] > 128)
    assert ys.max() < 8 and xs.min() >= 24  # the stored top-left square, turned clockwise: now top-right


# ------------------------------------------------------------------------------------------- pixel limit
def test_an_image_declaring_30000_x_30000_pixels_is_refused_before_decoding(tmp_path):
    """An 0.9 MB PNG that decodes to 900 MB of gray (2.7 GB as BGR): refused from its header, in well under a
    second and without allocating it (peak memory of a fresh process measured)."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_bomb(30000, 30000))
    assert bomb.stat().st_size < 1_000_000
    script = (
        "import resource, sys, time\n"
        "from featherface.detection.image import ImageError, read_image\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "start = time.perf_counter()\n"
        "try:\n"
        "    read_image(sys.argv[1])\n"
        "except ImageError as exc:\n"
        "    print(exc)\n"
        "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    run = subprocess.run([sys.executable, "-c", script, str(bomb)], capture_output=True, text=True, env=env, timeout=60)
    message, figures = run.stdout.strip().splitlines()
    assert message == f"{bomb}: 30000 x 30000 pixels, over the limit of 268,435,456 (FEATHERFACE_MAX_PIXELS)"
    seconds, grown = figures.split()
    kilobytes = int(grown) // (1024 if sys.platform == "darwin" else 1)  # ru_maxrss: bytes on macOS, else KB
    assert float(seconds) < 1.0 and kilobytes < 100_000  # peak memory grew by < 100 MB (the file is 0.9 MB)


def test_an_image_over_the_limit_is_skipped_and_counted_like_an_unreadable_one(tmp_path, sample_images, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "bomb.png").write_bytes(png_bomb(30000, 30000))
    shutil.copy(sample_images / "astronaut.jpg", folder / "astronaut.jpg")
    start = time.perf_counter()
    found = detect_json(tmp_path, [folder])
    assert time.perf_counter() - start < 30  # the model load and one 512 x 512 photo; the bomb costs nothing
    assert found[str(folder / "bomb.png")]["error"] == "30000 x 30000 pixels, over the limit of 268,435,456 " + (
        "(FEATHERFACE_MAX_PIXELS)"
    )
    assert len(found[str(folder / "astronaut.jpg")]["faces"]) == 1
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: skipped 1 of 2 file(s): 1 30000 x 30000 pixels, over the limit of 268,435,456 "
        f"(FEATHERFACE_MAX_PIXELS) (first: {folder / 'bomb.png'}); listed in the JSON output"
    ]


def test_the_pixel_limit_is_configurable(tmp_path, sample_images, monkeypatch):
    from featherface.detection.image import DEFAULT_MAX_PIXELS

    photo = sample_images / "astronaut.jpg"  # 512 x 512 = 262,144 pixels
    assert DEFAULT_MAX_PIXELS == 2**28 and read_image(photo).shape == (512, 512, 3)
    with pytest.raises(ImageError, match=r"512 x 512 pixels, over the limit of 262,143"):
        read_image(photo, max_pixels=512 * 512 - 1)
    monkeypatch.setenv("FEATHERFACE_MAX_PIXELS", "262143")
    with pytest.raises(ImageError, match="over the limit of 262,143"):
        image_size(photo)
    monkeypatch.setenv("FEATHERFACE_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="FEATHERFACE_MAX_PIXELS: expected a whole number of pixels > 0, got 'lots'"):
        read_image(photo)


# ---------------------------------------------------------------------------------------------- animations
needs_gif = pytest.mark.skipif(not hasattr(cv2, "imwriteanimation"), reason="OpenCV < 4.11 writes no GIF")


def animated_gif(path, photo: np.ndarray, frames: int = 4) -> None:
    """A GIF of ``frames`` 480 x 360 views panning across ``photo``."""
    animation = cv2.Animation()
    animation.frames = [np.ascontiguousarray(photo[40 : 40 + 360, 40 * i : 40 * i + 480]) for i in range(frames)]
    animation.durations = [100] * frames
    assert cv2.imwriteanimation(str(path), animation)


@needs_gif
def test_an_animated_gif_is_detected_and_anonymised_frame_by_frame(tmp_path, sample_images):
    photo = cv2.imread(str(sample_images / "faceapi_sample5.jpg"))
    gif = tmp_path / "in" / "party.gif"
    gif.parent.mkdir()
    animated_gif(gif, photo)
    assert [s.kind for s in collect_sources([gif])] == ["video"]
    found = detect_json(tmp_path, [gif])
    assert sorted(found) == [f"{gif}#frame={i}" for i in range(4)]
    assert all(len(entry["faces"]) >= 1 and entry["width"] == 480 for entry in found.values())
    out = tmp_path / "out"
    assert main(["anonymize", str(gif), "--out", str(out)]) == 0
    copy = cv2.VideoCapture(str(out / "party.gif.mp4"))
    frames = 0
    while copy.read()[0]:
        frames += 1
    assert frames == 4
    with pytest.raises(ImageError, match="animated GIF of 4 frames"):
        read_image(gif)  # training and evaluation take one image per file: refused, never its first frame alone


@needs_gif
def test_a_single_frame_gif_stays_an_image(tmp_path, sample_images):
    gif = tmp_path / "still.gif"
    animated_gif(gif, cv2.imread(str(sample_images / "faceapi_sample5.jpg")), frames=1)
    assert [s.kind for s in collect_sources(str(gif))] == ["image"]
    assert read_image(gif).shape == (360, 480, 3)
