"""A camera for headless Chromium: a Y4M video of a QR code, played by
``--use-file-for-fake-video-capture`` (Chromium's fake-camera switches; docs/door.md)."""

from __future__ import annotations

from pathlib import Path

from evently.tickets.render import make_qr

WIDTH, HEIGHT = 640, 480


def qr_y4m(secret: str, path: Path, *, frames: int = 10) -> Path:
    """``frames`` identical frames (Chromium loops the file) of the ticket's QR code, black on
    white, as large as fits with its quiet zone: 4:2:0 planes, luma only, chroma at 128."""
    matrix = [list(row) for row in make_qr(secret).matrix]
    quiet = 4
    size = len(matrix) + 2 * quiet
    scale = min(WIDTH, HEIGHT) // size
    left = (WIDTH - size * scale) // 2
    top = (HEIGHT - size * scale) // 2
    luma = bytearray(b"\xff" * (WIDTH * HEIGHT))
    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            if not dark:
                continue
            x0 = left + (x + quiet) * scale
            for dy in range(scale):
                start = (top + (y + quiet) * scale + dy) * WIDTH + x0
                luma[start : start + scale] = b"\x10" * scale
    chroma = b"\x80" * (2 * (WIDTH // 2) * (HEIGHT // 2))
    frame = b"FRAME\n" + bytes(luma) + chroma
    path.write_bytes(
        f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F10:1 Ip A1:1 C420jpeg\n".encode() + frame * frames
    )
    return path
