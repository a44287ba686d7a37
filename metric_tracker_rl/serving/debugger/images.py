"""Small images drawn in code, so the debugger ships no image files and fetches none: a PNG encoder (the
hourly heatmap's pixels) and the favicon in its ICO container, served at /favicon.ico.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from typing import Any


def hex_rgb(color: str) -> tuple[int, int, int]:
    return int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16)


def png_bytes(pixels: Sequence[Sequence[tuple[int, ...]]]) -> bytes:
    """A PNG of rows of RGB or RGBA pixels (all rows alike), written with zlib alone."""
    channels = len(pixels[0][0])
    raw = b"".join(b"\x00" + bytes(channel for pixel in row for channel in pixel) for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", len(pixels[0]), len(pixels), 8, 6 if channels == 4 else 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


# --- favicon ------------------------------------------------------------------------------------------


def favicon_ico(size: int = 32) -> bytes:
    """A small .ico (one PNG inside) of a rising green line on white: the tab's icon, drawn here so that no
    image file or outside request is needed."""
    points = [(3, 24), (10, 17), (16, 20), (22, 10), (29, 6)]
    pixels = [[(255, 255, 255, 0)] * size for _ in range(size)]
    for y in range(2, size - 2):
        for x in range(2, size - 2):
            pixels[y][x] = (255, 255, 255, 255)
    for (x0, y0), (x1, y1) in zip(points, points[1:], strict=False):
        for step in range(64):
            along_x = x0 + (x1 - x0) * step / 63
            along_y = y0 + (y1 - y0) * step / 63
            for dx in (-1, 0, 1):
                for dy in (-1, 0, 1):
                    pixels[round(along_y) + dy][round(along_x) + dx] = (26, 127, 55, 255)
    png = png_bytes(pixels)
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size, size, 0, 0, 1, 32, len(png), len(header) + 16)
    return header + entry + png


def add_favicon(app: Any) -> None:
    """Serve the tab icon at /favicon.ico (browsers ask for it on every site) instead of a 404."""
    from fastapi.responses import Response

    icon = favicon_ico()

    async def favicon() -> Response:
        return Response(icon, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})

    app.add_api_route("/favicon.ico", favicon, include_in_schema=False)
