"""Draws the Teams app icons (run once; the PNGs are committed beside this file).

color.png: 192x192, NHS blue with a white bleep-and-cross mark. outline.png: 32x32, the same
mark in white on transparent, as Teams requires for the outline icon.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
NHS_BLUE = (0x00, 0x5E, 0xB8, 0xFF)
WHITE = (0xFF, 0xFF, 0xFF, 0xFF)
CLEAR = (0, 0, 0, 0)


def cross(size: int, x: int, y: int) -> bool:
    """A plus sign filling the middle half of the square, arms a sixth of its width."""
    middle, arm, reach = size / 2, size / 12, size / 4
    return (abs(x + 0.5 - middle) < arm and abs(y + 0.5 - middle) < reach) or (
        abs(y + 0.5 - middle) < arm and abs(x + 0.5 - middle) < reach
    )


def png(size: int, background: tuple[int, ...]) -> bytes:
    rows = b"".join(
        b"\x00" + b"".join(bytes(WHITE if cross(size, x, y) else background) for x in range(size))
        for y in range(size)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)  # 8-bit RGBA
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


if __name__ == "__main__":
    (HERE / "color.png").write_bytes(png(192, NHS_BLUE))
    (HERE / "outline.png").write_bytes(png(32, CLEAR))
