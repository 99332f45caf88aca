"""Image files built byte by byte for the decoder's tests: EXIF-tagged JPEG, PNG and WebP, an oriented TIFF, a
PNG bomb (a small file that declares a huge image), and photos stored as a phone stores them (sideways + a tag)."""

from __future__ import annotations

import struct
import zlib

import cv2
import numpy as np


def exif(orientation: int, order: str = ">") -> bytes:
    """A TIFF structure (as EXIF holds it) with one IFD entry: Orientation (0x0112, SHORT) = ``orientation``."""
    head = (b"MM" if order == ">" else b"II") + struct.pack(order + "HI", 42, 8)
    entry = struct.pack(order + "HHIH", 0x0112, 3, 1, orientation) + b"\x00\x00"
    return head + struct.pack(order + "H", 1) + entry + struct.pack(order + "I", 0)


def encode(suffix: str, image: np.ndarray, params: tuple[int, ...] = ()) -> bytes:
    ok, data = cv2.imencode(suffix, image, list(params))
    assert ok
    return data.tobytes()


def tagged_jpeg(image: np.ndarray, orientation: int, quality: int = 95) -> bytes:
    """``image`` as a JPEG with an APP1 EXIF segment right after SOI, as cameras write it."""
    data = encode(".jpg", image, (cv2.IMWRITE_JPEG_QUALITY, quality))
    payload = b"Exif\x00\x00" + exif(orientation)
    return data[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + data[2:]


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def tagged_png(image: np.ndarray, orientation: int) -> bytes:
    """``image`` as a PNG with an ``eXIf`` chunk right after IHDR (8-byte signature + 25-byte IHDR chunk)."""
    data = encode(".png", image)
    return data[:33] + png_chunk(b"eXIf", exif(orientation, "<")) + data[33:]


def riff_chunk(kind: bytes, body: bytes) -> bytes:
    return kind + struct.pack("<I", len(body)) + body + b"\x00" * (len(body) & 1)


def tagged_webp(image: np.ndarray, orientation: int) -> bytes:
    """``image`` as a lossless WebP in the extended layout: VP8X (EXIF flag), the image, an EXIF chunk."""
    simple = encode(".webp", image, (cv2.IMWRITE_WEBP_QUALITY, 101))  # > 100: lossless (VP8L)
    height, width = image.shape[:2]
    vp8x = bytes([0x08, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + riff_chunk(b"VP8X", vp8x) + simple[12:] + riff_chunk(b"EXIF", exif(orientation))
    return b"RIFF" + struct.pack("<I", len(body)) + body


def oriented_tiff(image: np.ndarray, orientation: int) -> bytes:
    """``image`` (BGR uint8) as an uncompressed RGB TIFF whose first IFD holds Orientation = ``orientation``."""
    height, width = image.shape[:2]
    pixels = np.ascontiguousarray(image[:, :, ::-1]).tobytes()
    entries = [  # tag, type (3 SHORT, 4 LONG), value
        (256, 3, width), (257, 3, height), (258, 3, 8), (259, 3, 1), (262, 3, 2), (273, 4, 0),
        (274, 3, orientation), (277, 3, 3), (278, 3, height), (279, 4, len(pixels)),
    ]  # fmt: skip
    pixel_offset = 8 + 2 + 12 * len(entries) + 4
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        value = pixel_offset if tag == 273 else value
        ifd += struct.pack("<HHI", tag, kind, 1) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        )
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + pixels


def png_bomb(width: int, height: int) -> bytes:
    """A valid 8-bit gray PNG of ``width`` x ``height`` zero pixels, about ``width * height / 1000`` bytes long.

    Its deflate stream repeats one block of ~1 MB of zero rows, compressed once and ended by a full flush (which
    makes the block independent of what came before), so building it costs milliseconds. The zlib checksum of n
    zero bytes is ``(n mod 65521) << 16 | 1``."""
    row = width + 1  # a filter byte (0: none) and the pixels
    rows_per_block = max(1, 1_000_000 // row)
    blocks, rest = divmod(height, rows_per_block)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)  # raw deflate: the zlib header and checksum are ours
    block = compressor.compress(bytes(row * rows_per_block)) + compressor.flush(zlib.Z_FULL_FLUSH)
    tail = compressor.compress(bytes(row * rest)) + compressor.flush(zlib.Z_FINISH)
    checksum = ((row * height) % 65521) << 16 | 1
    stream = b"\x78\xda" + block * blocks + tail + struct.pack(">I", checksum)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", stream) + png_chunk(b"IEND", b"")


def stored_as(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores, with EXIF ``orientation``, for a photo a viewer shows as ``upright``: the
    inverse of what the tag tells the viewer to do (EXIF 2.32, tag 0x0112), written with plain array indexing.

    6 (viewer turns 90° clockwise): stored turned 90° counter-clockwise; 8: the reverse; 2, 3, 4, 5, 7 (mirrors,
    180°, transpose, transverse) are their own inverses."""
    transpose = upright.transpose(1, 0, 2)
    return {
        1: upright,
        2: upright[:, ::-1],
        3: upright[::-1, ::-1],
        4: upright[::-1],
        5: transpose,
        6: np.rot90(upright, 1),  # numpy's k=1: counter-clockwise
        7: transpose[::-1, ::-1],
        8: np.rot90(upright, -1),
    }[orientation].copy()
