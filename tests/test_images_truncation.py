"""Files cut short, of every format read_image accepts: each loads whole or fails with
`truncated image`, never with made-up rows (libjpeg fills a cut scan with grey and only warns;
a GIF whose last bytes were cut decodes whatever is there). Real files made here with Pillow."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacode_cli.errors import ImageError
from adacode_cli.images.decode import read_image

EOI = b"\xff\xd9"


def picture(height: int = 48, width: int = 64) -> np.ndarray:
    """Smooth gradients plus noise: every block has detail, so no cut hides in a flat area."""
    rows, columns = np.mgrid[0:height, 0:width]
    noise = np.random.default_rng(3).integers(0, 40, (height, width, 3))
    return (np.stack([columns * 3, rows * 4, (rows + columns) * 2], -1) + noise).astype(np.uint8)


def jpeg(mode: str = "RGB", **options: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture()).convert(mode).save(buffer, "JPEG", **options)
    return buffer.getvalue()


JPEG_VARIANTS = {
    "baseline": {},
    "progressive": {"progressive": True},
    "optimized": {"optimize": True},
    "quality-100-444": {"quality": 100, "subsampling": 0},
    "restart-blocks": {"restart_marker_blocks": 3},
    "restart-rows": {"restart_marker_rows": 1},
    "progressive-restarts": {"progressive": True, "restart_marker_blocks": 2},
}


def pillow_pixels(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("name", [*JPEG_VARIANTS, "grey", "cmyk", "exif", "trailing-bytes"])
def test_valid_jpegs_load_as_libjpeg_decodes_them(tmp_path: Path, name: str) -> None:
    """No false alarm: every variant Pillow writes, with EXIF or bytes after its EOI, loads."""
    exif = Image.Exif()
    exif[0x010F] = "camera"
    data = {
        "grey": lambda: jpeg("L"),
        "cmyk": lambda: jpeg("CMYK"),
        "exif": lambda: jpeg(exif=exif.tobytes()),
        "trailing-bytes": lambda: jpeg() + b"\x00garbage\xff\xd8\xff" * 20,
    }.get(name, lambda: jpeg(**JPEG_VARIANTS.get(name, {})))()
    path = tmp_path / "ok.jpg"
    path.write_bytes(data)
    image = read_image(path)
    expected = pillow_pixels(data)
    if name == "grey":
        expected = expected[..., :1].repeat(3, axis=2)
    assert np.array_equal(image.rgb, expected)


@pytest.mark.parametrize("name", JPEG_VARIANTS)
def test_a_jpeg_cut_short_is_truncated_with_or_without_its_eoi(tmp_path: Path, name: str) -> None:
    """Cut anywhere in its scan data (to its last few bytes), then closed with an EOI
    marker as a repair tool would, a JPEG fails; without the EOI too (Pillow's own check)."""
    data = jpeg(**JPEG_VARIANTS[name])
    path = tmp_path / "cut.jpg"
    first_scan = data.index(b"\xff\xda")
    for end in np.linspace(first_scan + 20, len(data) - 4, 7).astype(int):
        for tail in (EOI, b""):
            path.write_bytes(data[:end] + tail)
            with pytest.raises(ImageError, match=r"cut\.jpg: truncated image"):
                read_image(path)


def test_libjpeg_fills_a_cut_scan_with_grey_which_is_refused(tmp_path: Path) -> None:
    """The fault itself: Pillow returns grey rows for a cut baseline JPEG closed with EOI."""
    data = jpeg()
    cut = data[: (data.index(b"\xff\xda") + len(data)) // 2] + EOI
    assert (pillow_pixels(cut)[-8:] == 128).all()  # what Pillow alone gives, silently
    path = tmp_path / "grey.jpg"
    path.write_bytes(cut)
    with pytest.raises(ImageError, match=r"grey\.jpg: truncated image: the data of its last scan"):
        read_image(path)


def test_a_file_read_whole_before_is_not_decoded_twice_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last-scan check decodes a JPEG a second time; training reads every image of its
    checked data set again for each sample, and pays it only in the check."""
    from adacode_cli.images import decode
    from adacode_cli.train.image_files import read_rgb

    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg())
    calls: list[Path] = []
    original = decode.jpeg_scan_cut
    monkeypatch.setattr(decode, "jpeg_scan_cut",
                        lambda *args: calls.append(args[0]) or original(*args))
    first = read_rgb(path)
    again = read_rgb(path, read_before=True)
    assert calls == [path] and np.array_equal(first, again)


def test_a_progressive_jpeg_cut_between_scans_is_truncated(tmp_path: Path) -> None:
    """Cut just before a scan header, every earlier scan complete: libjpeg returns a blurred
    image without a word; the scan headers show that coefficients were never sent."""
    data = jpeg(progressive=True)
    scans = [index for index in range(len(data) - 1) if data[index : index + 2] == b"\xff\xda"]
    assert len(scans) > 3
    path = tmp_path / "blurred.jpg"
    for start in (scans[1], scans[len(scans) // 2], scans[-1]):
        path.write_bytes(data[:start] + EOI)
        with pytest.raises(ImageError, match=r"blurred\.jpg: truncated image: its scans stop"):
            read_image(path)


def test_a_jpeg_cut_at_a_restart_marker_is_truncated(tmp_path: Path) -> None:
    """Cut right before an RSTn marker: the scan ends with a whole interval, so libjpeg never
    runs short of bits; the count of restart intervals tells."""
    data = jpeg(restart_marker_blocks=2)
    restarts = [index for index in range(len(data) - 1)
                if data[index] == 0xFF and 0xD0 <= data[index + 1] <= 0xD7]
    path = tmp_path / "interval.jpg"
    for start in (restarts[0], restarts[-1]):
        path.write_bytes(data[:start] + EOI)
        with pytest.raises(ImageError, match=r"interval\.jpg: truncated image: scan 1 holds"):
            read_image(path)


def test_a_gif_whose_image_data_runs_past_the_end_is_truncated(tmp_path: Path) -> None:
    """The last sub-block of a cut GIF takes the trailer and whatever follows for pixel data:
    Pillow decodes it as such; its chain of sub-blocks never reaches a terminator."""
    buffer = io.BytesIO()
    Image.fromarray(picture()).quantize(64).save(buffer, "GIF")
    data = buffer.getvalue()
    path = tmp_path / "cut.gif"
    path.write_bytes(data[:-4] + b"\x00\x3b")
    with Image.open(path) as pillow:
        pillow.load()  # Pillow alone loads it
    with pytest.raises(ImageError, match=r"cut\.gif: truncated image: the first frame's"):
        read_image(path)


def encoded(fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image = Image.fromarray(picture(40, 56))
    (image.quantize(64) if fmt == "GIF" else image).save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "options"), [
    ("PNG", {}), ("PNG", {"optimize": True}), ("JPEG", {}), ("JPEG", {"progressive": True}),
    ("WEBP", {}), ("WEBP", {"lossless": True}), ("TIFF", {}),
    ("TIFF", {"compression": "tiff_lzw"}), ("TIFF", {"compression": "tiff_adobe_deflate"}),
    ("TIFF", {"compression": "packbits"}), ("BMP", {}), ("GIF", {}),
])
def test_every_format_cut_anywhere_loads_whole_or_fails(
    tmp_path: Path, fmt: str, options: dict[str, object]
) -> None:
    """Cut at many points (with the format's closing bytes appended, too), a file never loads
    as anything but its own pixels: it fails, mostly as `truncated image` (a header cut
    mid-segment can only be called undecodable)."""
    data = encoded(fmt, **options)
    whole = tmp_path / f"whole.{fmt.lower()}"
    whole.write_bytes(data)
    expected = read_image(whole).rgb
    closing = {"JPEG": EOI, "GIF": b"\x00\x3b"}.get(fmt, b"")
    path = tmp_path / f"cut.{fmt.lower()}"
    for end in np.linspace(16, len(data) - 1, 25).astype(int):  # past every signature
        for tail in {b"", closing}:
            path.write_bytes(data[:end] + tail)
            try:
                loaded = read_image(path)
            except ImageError as error:
                assert str(error).startswith((f"{path}: truncated image",
                                              f"{path}: cannot decode image")), str(error)
                continue
            assert np.array_equal(loaded.rgb, expected), (end, tail)


@pytest.mark.parametrize(("fmt", "options"), [("WEBP", {"lossless": True}), ("WEBP", {}),
                                              ("TIFF", {"compression": "tiff_lzw"})])
def test_a_file_shorter_than_its_header_says_is_called_truncated(
    tmp_path: Path, fmt: str, options: dict[str, object]
) -> None:
    """Pillow says "could not create decoder object" for a cut WebP and "cannot identify" for a
    TIFF whose directory was cut off: the header's own size or offset tells the user why."""
    data = encoded(fmt, **options)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) * 7 // 10])
    with pytest.raises(ImageError, match=rf"cut\.{fmt.lower()}: truncated image"):
        read_image(path)
