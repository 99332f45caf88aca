"""What an image file's header says, read without decoding its pixels: size, EXIF orientation, frame count.

Formats: JPEG (SOF marker; EXIF in APP1), PNG (IHDR; EXIF in ``eXIf``; APNG's ``acTL``), GIF (logical screen and
image descriptors), WebP (``VP8 ``/``VP8L``/``VP8X``; ``EXIF``; ``ANMF``), BMP, TIFF (first IFD) and binary or
text PNM (P1-P6): every suffix of :data:`featherface.detection.image.IMAGE_SUFFIXES`. Anything else gives None.

Untrusted bytes: every read is bounds-checked and every loop moves forward, so arbitrary bytes give a header or
None (never an exception) in time linear in their length. A header that declares a size its pixels do not fill is
still a header: the decoder has the last word on the pixels.

EXIF orientation (tag 0x0112), as the EXIF 2.32 spec numbers it; what a viewer does to the stored pixels:
1 nothing, 2 mirror left-right, 3 rotate 180°, 4 mirror top-bottom, 5 transpose (mirror about the main diagonal),
6 rotate 90° clockwise, 7 transverse (mirror about the other diagonal), 8 rotate 90° counter-clockwise.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ORIENTATION_TAG = 0x0112
# orientations that swap width and height
TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})
# JPEG start-of-frame markers (C4 DHT, C8 JPG and CC DAC are not frames)
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
# JPEG markers without a length field: TEM, RST0-7 (SOI and EOI are handled apart)
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_EXIF_PREFIX = b"Exif\x00\x00"
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class ImageHeader:
    """``width`` x ``height``: the pixels as stored; ``orientation``: the EXIF orientation (1 when absent or
    invalid); ``frames``: more than 1 for an animation; ``pixels``: the most pixels the decoder will hold at once
    (a GIF frame may be larger than its screen); ``decoder_orients``: the decoder applies ``orientation`` itself
    (OpenCV's TIFF decoder does), so the pixels it returns are already upright."""

    format: str
    width: int
    height: int
    orientation: int = 1
    frames: int = 1
    decoder_orients: bool = False
    pixels: int = field(default=0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "pixels", max(self.pixels, self.width * self.height))

    @property
    def display_size(self) -> tuple[int, int]:
        """``(width, height)`` as a viewer shows the image (swapped by orientations 5-8)."""
        if self.orientation in TRANSPOSING_ORIENTATIONS:
            return self.height, self.width
        return self.width, self.height


def read_header(data: bytes) -> ImageHeader | None:
    """The header of an image file's bytes (the whole file, or enough of its start), or None for a format not
    listed in the module docstring or a header that does not parse."""
    for reader in (_jpeg, _png, _gif, _webp, _bmp, _tiff, _pnm):
        header = reader(data)
        if header is not None:
            return header if header.width > 0 and header.height > 0 else None
    return None


def _unpack(fmt: str, data: bytes, offset: int) -> tuple | None:
    """``struct.unpack_from`` that gives None instead of reading past the end."""
    if offset < 0 or offset + struct.calcsize(fmt) > len(data):
        return None
    return struct.unpack_from(fmt, data, offset)


def exif_orientation(tiff: bytes) -> int:
    """The Orientation tag of the first IFD of EXIF data (a TIFF structure, with or without the ``Exif\\0\\0``
    prefix some writers leave on it), 1 if absent or out of range."""
    if tiff.startswith(_EXIF_PREFIX):
        tiff = tiff[len(_EXIF_PREFIX) :]
    value = _tiff_tags(tiff, (ORIENTATION_TAG,)).get(ORIENTATION_TAG, 1)
    return value if 1 <= value <= 8 else 1


def _tiff_tags(tiff: bytes, wanted: tuple[int, ...]) -> dict[int, int]:
    """The SHORT or LONG values of the ``wanted`` tags in a TIFF structure's first IFD."""
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or _unpack(order + "H", tiff, 2) != (42,):
        return {}
    (offset,) = _unpack(order + "I", tiff, 4) or (0,)
    count = _unpack(order + "H", tiff, offset)
    if count is None:
        return {}
    found: dict[int, int] = {}
    # entries are 12 bytes: tag, type, count, value (inline when it fits 4 bytes, as one SHORT or LONG does)
    for entry in range(offset + 2, min(offset + 2 + 12 * count[0], len(tiff) - 11), 12):
        tag, kind = struct.unpack_from(order + "HH", tiff, entry)
        if tag in wanted and tag not in found:
            if kind == 3:  # SHORT
                found[tag] = struct.unpack_from(order + "H", tiff, entry + 8)[0]
            elif kind == 4:  # LONG
                found[tag] = struct.unpack_from(order + "I", tiff, entry + 8)[0]
    return found


def _jpeg(data: bytes) -> ImageHeader | None:
    if not data.startswith(b"\xff\xd8"):
        return None
    size: tuple[int, int] | None = None
    orientation = 0
    pos = 2
    while True:
        pos = data.find(b"\xff", pos)  # libjpeg skips stray bytes between segments; so do we
        if pos < 0 or pos + 1 >= len(data):
            break
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE or marker == 0x00:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image, start of scan: the header is over
            break
        length = _unpack(">H", data, pos + 2)
        if length is None or length[0] < 2:
            break
        segment = data[pos + 4 : pos + 2 + length[0]]
        if marker in _JPEG_SOF and size is None and len(segment) >= 5:
            height, width = struct.unpack_from(">HH", segment, 1)
            size = (width, height)
        elif marker == 0xE1 and not orientation and segment.startswith(_EXIF_PREFIX):
            orientation = exif_orientation(segment)
        pos += 2 + length[0]
    if size is None:
        return None
    return ImageHeader("jpeg", *size, orientation=orientation or 1)


def _png(data: bytes) -> ImageHeader | None:
    if not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    size = _unpack(">II", data, 16)
    if size is None:
        return None
    orientation, frames = 1, 1
    pos = 8
    while True:  # the chunks before the pixel data (eXIf and acTL must come before IDAT)
        chunk = _unpack(">I4s", data, pos)
        if chunk is None or chunk[1] in (b"IDAT", b"IEND"):
            break
        length, kind = chunk
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"eXIf":
            orientation = exif_orientation(body)
        elif kind == b"acTL" and len(body) >= 4:
            frames = max(1, struct.unpack_from(">I", body)[0])
        pos += 12 + length
    return ImageHeader("png", size[0], size[1], orientation, frames)


def _gif(data: bytes) -> ImageHeader | None:
    if data[:6] not in (b"GIF87a", b"GIF89a"):
        return None
    screen = _unpack("<HHB", data, 6)
    if screen is None:
        return None
    width, height, flags = screen
    pos = 13 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0)
    frames, largest = 0, 0
    while pos < len(data):
        block = data[pos]
        if block == 0x2C:  # image descriptor: left, top, width, height, flags; then its colour table and data
            descriptor = _unpack("<HHHHB", data, pos + 1)
            if descriptor is None:
                break
            frames += 1
            largest = max(largest, descriptor[2] * descriptor[3])
            pos += 10 + (3 << ((descriptor[4] & 7) + 1) if descriptor[4] & 0x80 else 0) + 1  # + LZW code size
        elif block == 0x21:  # extension: label, then sub-blocks
            pos += 2
        else:  # 0x3B trailer, or bytes that are no GIF block
            break
        while pos < len(data) and data[pos]:  # sub-blocks: a length byte and that many bytes, up to a 0
            pos += 1 + data[pos]
        pos += 1
    return ImageHeader("gif", width, height, frames=max(frames, 1), pixels=largest)


def _webp(data: bytes) -> ImageHeader | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    size: tuple[int, int] | None = None
    orientation, frames = 1, 0
    pos = 12
    while True:
        chunk = _unpack("<4sI", data, pos)
        if chunk is None:
            break
        kind, length = chunk
        body = data[pos + 8 : pos + 8 + length]
        if kind == b"VP8X" and size is None and len(body) >= 10:
            width = int.from_bytes(body[4:7], "little") + 1
            height = int.from_bytes(body[7:10], "little") + 1
            size = (width, height)
        elif kind == b"VP8 " and size is None and len(body) >= 10 and body[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack_from("<HH", body, 6)
            size = (width & 0x3FFF, height & 0x3FFF)
        elif kind == b"VP8L" and size is None and len(body) >= 5 and body[0] == 0x2F:
            bits = struct.unpack_from("<I", body, 1)[0]
            size = ((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1)
        elif kind == b"EXIF":
            orientation = exif_orientation(body)
        elif kind == b"ANMF":
            frames += 1
        pos += 8 + length + (length & 1)  # chunks are padded to an even length
    if size is None:
        return None
    return ImageHeader("webp", *size, orientation=orientation, frames=max(frames, 1))


def _bmp(data: bytes) -> ImageHeader | None:
    if data[:2] != b"BM":
        return None
    info = _unpack("<I", data, 14)
    if info is None:
        return None
    size = _unpack("<HH", data, 18) if info[0] == 12 else _unpack("<ii", data, 18)  # OS/2 core header: 16-bit
    if size is None:
        return None
    return ImageHeader("bmp", abs(size[0]), abs(size[1]))  # a negative height: rows stored top-down


def _tiff(data: bytes) -> ImageHeader | None:
    if data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    tags = _tiff_tags(data, (256, 257, ORIENTATION_TAG))
    if 256 not in tags or 257 not in tags:
        return None
    orientation = tags.get(ORIENTATION_TAG, 1)
    orientation = orientation if 1 <= orientation <= 8 else 1
    return ImageHeader("tiff", tags[256], tags[257], orientation, decoder_orients=True)


def _pnm(data: bytes) -> ImageHeader | None:
    if len(data) < 2 or data[0] != ord("P") or data[1] not in b"123456":
        return None
    numbers: list[int] = []
    for line in data[2:4096].split(b"\n"):  # width and height are the first two numbers, comments aside
        for token in line.split(b"#", 1)[0].split():
            if not token.isdigit():
                return None
            numbers.append(int(token))
        if len(numbers) >= 2:
            return ImageHeader("pnm", numbers[0], numbers[1])
    return None
