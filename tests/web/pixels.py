"""Read one pixel of a PNG screenshot, with the standard library only (no imaging package in the
test dependencies): enough to tell a dark page from a light one."""

from __future__ import annotations

import struct
import zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHANNELS = {2: 3, 6: 4}  # colour type → bytes per pixel (RGB, RGBA), 8 bits each


def pixel(png: bytes, x: int, y: int) -> tuple[int, int, int]:
    """The (red, green, blue) of the pixel at column ``x``, row ``y``."""
    width, channels, rows = _decode(png)
    stride = width * channels
    line = _row(rows, y, stride, channels)
    return line[x * channels], line[x * channels + 1], line[x * channels + 2]


def _decode(png: bytes) -> tuple[int, int, bytes]:
    assert png[:8] == SIGNATURE, "not a PNG"
    pos, idat, width, channels = 8, b"", 0, 0
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos : pos + 4])
        kind, data = png[pos + 4 : pos + 8], png[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, _height, depth, colour, _c, _f, interlace = struct.unpack(">IIBBBBB", data)
            assert depth == 8 and interlace == 0 and colour in CHANNELS, (depth, colour)
            channels = CHANNELS[colour]
        elif kind == b"IDAT":
            idat += data
    return width, channels, zlib.decompress(idat)


def _row(rows: bytes, y: int, stride: int, bpp: int) -> bytearray:
    """Row ``y`` with the PNG filters undone (each row depends on the one above)."""
    previous = bytearray(stride)
    for n in range(y + 1):
        start = n * (stride + 1)
        kind, line = rows[start], bytearray(rows[start + 1 : start + 1 + stride])
        for i in range(stride):
            left = line[i - bpp] if i >= bpp else 0
            up, corner = previous[i], previous[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + _predict(kind, left, up, corner)) & 0xFF
        previous = line
    return previous


def _predict(kind: int, left: int, up: int, corner: int) -> int:
    if kind == 0:
        return 0
    if kind == 1:
        return left
    if kind == 2:
        return up
    if kind == 3:
        return (left + up) // 2
    guess = left + up - corner  # Paeth
    near = min((abs(guess - left), 0), (abs(guess - up), 1), (abs(guess - corner), 2))[1]
    return (left, up, corner)[near]
