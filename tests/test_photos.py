"""Bad photos become one clear line each, never a crash."""
from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from bench.errors import PhotoError
from bench.photos import Photo, decode_rgb
from tests.conftest import png_bytes


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims a size, with a token IDAT (enough for a size check)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b"")


def test_a_good_png_decodes_to_rgb():
    rgb = decode_rgb(png_bytes(np.full((5, 7, 3), 9, np.uint8)), "x.png")
    assert rgb.shape == (5, 7, 3) and rgb.dtype == np.uint8


@pytest.mark.parametrize("data, message", [
    (b"", "empty file"),
    (b"this is a text file, not a photo", "not an image"),
    (png_bytes(np.zeros((50, 50, 3), np.uint8))[:60], "corrupt or truncated"),
    (png_header_only(20000, 20000), "over the 50 MP limit"),
])
def test_bad_image_bytes_give_a_one_line_reason(data, message):
    with pytest.raises(PhotoError, match=message) as info:
        decode_rgb(data, "images/bad.png")
    assert str(info.value).startswith("images/bad.png: ")
    assert "\n" not in str(info.value)


def test_zero_size_image_is_refused():
    with pytest.raises(PhotoError, match="zero size|corrupt|not an image"):
        decode_rgb(png_header_only(0, 10), "z.png")


def test_missing_file_names_the_path(tmp_path):
    from bench.photos import read_file

    photo = Photo("images/9.png", "9", [], read_file(tmp_path / "images/9.png"), source=str(tmp_path / "images/9.png"))
    with pytest.raises(PhotoError, match="9.png: file not found"):
        photo.load()
