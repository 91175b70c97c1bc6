"""Helpers for the scale-out tests."""

from __future__ import annotations

from pathlib import Path

from cli_restore_helpers import noise, save_png


def mixed_folder(folder: Path) -> list[str]:
    """Images of very different sizes and one file that fails to decode; their names."""
    sizes = [(8, 8), (40, 30), (12, 12), (56, 40), (10, 20), (16, 16), (24, 8)]
    for index, (height, width) in enumerate(sizes):
        save_png(folder / f"img{index}.png", noise((height, width, 3), seed=index))
    (folder / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return sorted(path.name for path in folder.iterdir())
