"""read_image on real files made here: modes, 16 bits, orientation, metadata, damaged input."""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms, ImageOps

from adacode_cli.errors import ImageError
from adacode_cli.images.decode import MemoryBudget, read_image, read_size
from adacode_cli.images.png16 import encode_png16
from adacode_cli.images.tiff16 import NO_COMPRESSION, encode_tiff

RNG = np.random.default_rng(7)


def chunk(kind: bytes, data: bytes) -> bytes:
    """One PNG chunk: length, type, data, CRC."""
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))


def random_rgb(height: int = 6, width: int = 5) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_rgb_png(tmp_path: Path) -> None:
    pixels = random_rgb()
    Image.fromarray(pixels).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert loaded.rgb.dtype == np.uint8 and loaded.bit_depth == 8
    assert np.array_equal(loaded.rgb, pixels)
    assert loaded.alpha is None and not loaded.is_grayscale
    assert loaded.format == "PNG" and loaded.warnings == []


def test_rgba_keeps_alpha(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 256, (4, 7, 4), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert np.array_equal(loaded.rgb, pixels[..., :3])
    assert np.array_equal(loaded.alpha, pixels[..., 3])


@pytest.mark.parametrize("mode", ["L", "LA", "1"])
def test_grey_modes(tmp_path: Path, mode: str) -> None:
    grey = RNG.integers(0, 256, (5, 4), dtype=np.uint8)
    image = Image.fromarray(grey).convert(mode)
    image.save(tmp_path / "g.png")
    loaded = read_image(tmp_path / "g.png")
    expected = np.asarray(image.convert("L"))
    assert loaded.is_grayscale and loaded.bit_depth == 8
    assert all(np.array_equal(loaded.rgb[..., c], expected) for c in range(3))
    assert (loaded.alpha is not None) == (mode == "LA")


def test_palette_with_transparency(tmp_path: Path) -> None:
    image = Image.new("P", (3, 2))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((1, 0), 1)
    image.info["transparency"] = 0
    image.save(tmp_path / "p.png", transparency=0)
    loaded = read_image(tmp_path / "p.png")
    assert tuple(loaded.rgb[0, 1]) == (0, 0, 255)
    assert loaded.alpha is not None
    assert loaded.alpha[0, 1] == 255 and loaded.alpha[0, 0] == 0
    assert not loaded.is_grayscale


def test_cmyk_jpeg(tmp_path: Path) -> None:
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "c.jpg", quality=100)
    loaded = read_image(tmp_path / "c.jpg")
    assert loaded.rgb.shape == (8, 8, 3) and loaded.bit_depth == 8
    red, green, blue = loaded.rgb[4, 4].astype(int)
    assert red > 240 and green < 15 and blue < 15


@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_png_is_bit_exact(tmp_path: Path, channels: int) -> None:
    pixels = RNG.integers(0, 65536, (9, 11, channels), dtype=np.uint16)
    (tmp_path / "d.png").write_bytes(b"".join(encode_png16(pixels)))
    loaded = read_image(tmp_path / "d.png")
    assert loaded.bit_depth == 16 and loaded.rgb.dtype == np.uint16
    assert np.array_equal(loaded.rgb, pixels[..., :3])
    if channels == 4:
        assert np.array_equal(loaded.alpha, pixels[..., 3])


@pytest.mark.parametrize("channels", [1, 2])
def test_16_bit_grey_png(tmp_path: Path, channels: int) -> None:
    pixels = RNG.integers(0, 65536, (5, 3, channels), dtype=np.uint16)
    (tmp_path / "g.png").write_bytes(b"".join(encode_png16(pixels)))
    loaded = read_image(tmp_path / "g.png")
    assert loaded.is_grayscale and loaded.bit_depth == 16
    assert np.array_equal(loaded.rgb[..., 1], pixels[..., 0])
    assert (loaded.alpha is None) == (channels == 1)


def interlaced_png16(pixels: np.ndarray) -> bytes:
    """An Adam7-interlaced 16-bit PNG (Pillow cannot write one), rows unfiltered."""
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[pixels.shape[2]]
    height, width = pixels.shape[:2]
    passes = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2)]
    raw = b""
    for y0, x0, dy, dx in [*passes, (1, 0, 2, 1)]:
        sub = pixels[y0::dy, x0::dx].astype(">u2")
        if sub.size:
            raw += b"".join(b"\0" + row.tobytes() for row in sub.reshape(sub.shape[0], -1))
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 1)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def test_interlaced_16_bit_png(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (13, 11, 4), dtype=np.uint16)
    (tmp_path / "i.png").write_bytes(interlaced_png16(pixels))
    loaded = read_image(tmp_path / "i.png")
    assert np.array_equal(loaded.rgb, pixels[..., :3])
    assert np.array_equal(loaded.alpha, pixels[..., 3])


def test_16_bit_grey_png_from_pillow(tmp_path: Path) -> None:
    grey = np.array([[0, 300], [40000, 65535]], dtype=np.uint16)
    Image.fromarray(grey).save(tmp_path / "g.png")
    loaded = read_image(tmp_path / "g.png")
    assert loaded.is_grayscale and np.array_equal(loaded.rgb[..., 0], grey)


@pytest.mark.parametrize("compression", [NO_COMPRESSION, 8])
@pytest.mark.parametrize("channels", [1, 3, 4])
def test_16_bit_tiff(tmp_path: Path, channels: int, compression: int) -> None:
    pixels = RNG.integers(0, 65536, (7, 6, channels), dtype=np.uint16)
    (tmp_path / "t.tif").write_bytes(encode_tiff(pixels, compression=compression))
    loaded = read_image(tmp_path / "t.tif")
    assert loaded.bit_depth == 16 and loaded.format == "TIFF"
    assert np.array_equal(loaded.rgb[..., 0], pixels[..., 0])
    if channels >= 3:
        assert np.array_equal(loaded.rgb, pixels[..., :3])
    assert (loaded.alpha is not None) == (channels == 4)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_pillow(tmp_path: Path, orientation: int) -> None:
    pixels = random_rgb(2, 4)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(tmp_path / "o.png", exif=exif.tobytes())
    with Image.open(tmp_path / "o.png") as image:
        expected = np.asarray(ImageOps.exif_transpose(image).convert("RGB"))
    loaded = read_image(tmp_path / "o.png")
    assert np.array_equal(loaded.rgb, expected)


def test_exif_orientation_6_reset_in_jpeg(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    Image.fromarray(random_rgb(2, 4)).save(tmp_path / "o.jpg", exif=exif.tobytes())
    loaded = read_image(tmp_path / "o.jpg")
    assert loaded.rgb.shape == (4, 2, 3)  # rotated upright
    kept = Image.Exif()
    kept.load(loaded.exif)
    assert kept[0x0112] == 1 and kept[0x010F] == "TestCam"


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
def test_read_size_is_the_upright_size_read_image_returns(tmp_path: Path, suffix: str) -> None:
    for orientation in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = tmp_path / f"o{orientation}{suffix}"
        Image.fromarray(random_rgb(2, 5)).save(path, exif=exif.tobytes())
        height, width = read_image(path).rgb.shape[:2]
        assert read_size(path) == (width, height), orientation


def test_read_size_refuses_what_read_image_refuses(tmp_path: Path) -> None:
    (tmp_path / "bomb.png").write_bytes(bomb_png(100_000, 100_000))
    (tmp_path / "notes.png").write_text("not an image")
    for name in ("bomb.png", "notes.png", "absent.png"):
        with pytest.raises(ImageError, match=name):
            read_size(tmp_path / name)


def test_16_bit_orientation(tmp_path: Path) -> None:
    pixels = RNG.integers(0, 65536, (2, 3, 3), dtype=np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 8
    (tmp_path / "d.png").write_bytes(b"".join(encode_png16(pixels, exif=exif.tobytes())))
    loaded = read_image(tmp_path / "d.png")
    assert np.array_equal(loaded.rgb, np.rot90(pixels, 1))


def test_icc_profile_is_read(tmp_path: Path) -> None:
    profile = srgb_profile()
    Image.fromarray(random_rgb()).save(tmp_path / "i.jpg", icc_profile=profile)
    assert read_image(tmp_path / "i.jpg").icc_profile == profile


@pytest.mark.parametrize("suffix", [".gif", ".png", ".webp"])
def test_animation_first_frame_and_warning(tmp_path: Path, suffix: str) -> None:
    frames = [Image.new("RGB", (4, 4), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / f"anim{suffix}"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    loaded = read_image(path)
    assert tuple(loaded.rgb[2, 2]) == (255, 0, 0)
    assert len(loaded.warnings) == 1 and "2 frames" in loaded.warnings[0]
    assert str(path) in loaded.warnings[0]


def test_multipage_tiff_warns(tmp_path: Path) -> None:
    pages = [Image.new("L", (3, 3), value) for value in (10, 200)]
    pages[0].save(tmp_path / "m.tif", save_all=True, append_images=pages[1:])
    loaded = read_image(tmp_path / "m.tif")
    assert loaded.rgb[0, 0, 0] == 10 and loaded.warnings


def test_one_pixel(tmp_path: Path) -> None:
    Image.new("RGB", (1, 1), (1, 2, 3)).save(tmp_path / "one.png")
    assert read_image(tmp_path / "one.png").rgb.tolist() == [[[1, 2, 3]]]


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.arange(64 * 64 * 3, dtype=np.uint8).reshape(64, 64, 3)).save(buffer, "PNG")
    return buffer.getvalue()


def broken_idat(data: bytes) -> bytes:
    start = data.index(b"IDAT") + 4
    return data[:start] + bytes(200) + data[start + 200 :]


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("truncated.png", lambda: png_bytes()[: len(png_bytes()) // 2]),
        ("corrupt.png", lambda: broken_idat(png_bytes())),
        ("empty.png", lambda: b""),
        ("notes.png", lambda: b"just some text, not an image\n"),
        ("eps.png", lambda: b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"),
    ],
)
def test_bad_files_raise_image_error_naming_the_path(
    tmp_path: Path, name: str, content: Callable[[], bytes]
) -> None:
    path = tmp_path / name
    path.write_bytes(content())
    with pytest.raises(ImageError) as caught:
        read_image(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message
    assert caught.value.exit_code == 1


def test_missing_file_and_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "absent.png")
    with pytest.raises(ImageError, match="folder"):
        read_image(tmp_path)


def bomb_png(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims a huge size (no pixel data is ever needed to refuse it)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1000)
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


@pytest.mark.parametrize("size", [(12_000, 10_000), (100_000, 100_000)])
def test_decompression_bomb_refused(tmp_path: Path, size: tuple[int, int]) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(bomb_png(*size))
    with pytest.raises(ImageError, match="decompression bomb") as caught:
        read_image(path)
    assert str(path) in str(caught.value)


def test_pixel_cap_is_configurable(tmp_path: Path) -> None:
    Image.new("RGB", (20, 20)).save(tmp_path / "a.png")
    with pytest.raises(ImageError, match="limit of 100 pixels"):
        read_image(tmp_path / "a.png", max_pixels=100)
    assert read_image(tmp_path / "a.png", max_pixels=400).rgb.shape == (20, 20, 3)


def test_image_layer_does_not_import_torch() -> None:
    modules = "decode encode inputs masks resize weightmap"
    code = "; ".join(f"import adacode_cli.images.{name}" for name in modules.split())
    check = f"{code}; import sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", check], check=True)


def short_png(width: int, height: int, rows: int, *, interlace: int = 0) -> bytes:
    """A PNG whose complete zlib stream holds only `rows` of its `height` declared rows."""
    raw = b"".join(b"\x00" + bytes([100]) * (width * 3) for _ in range(rows))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, interlace)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


@pytest.mark.parametrize(("width", "height", "rows", "interlace"),
                         [(100, 100, 10, 0), (9000, 9900, 10, 0), (40, 40, 3, 1)])
def test_pixel_data_short_of_the_declared_size_is_an_error(
    tmp_path: Path, width: int, height: int, rows: int, interlace: int
) -> None:
    path = tmp_path / "short.png"
    path.write_bytes(short_png(width, height, rows, interlace=interlace))
    with pytest.raises(ImageError, match=r"short\.png: (truncated image|cannot decode)"):
        read_image(path)
    complete = tmp_path / "complete.png"
    complete.write_bytes(short_png(7, 5, 5))
    assert read_image(complete).rgb.shape == (5, 7, 3)


def test_truncated_files_of_every_format_name_the_file(tmp_path: Path) -> None:
    for fmt in ("PNG", "JPEG", "WEBP", "TIFF", "BMP", "GIF"):
        buffer = io.BytesIO()
        Image.fromarray(random_rgb(64, 64)).save(buffer, fmt)
        path = tmp_path / f"cut.{fmt.lower()}"
        path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
        with pytest.raises(ImageError, match=rf"cut\.{fmt.lower()}"):
            read_image(path)


def test_an_image_too_large_for_the_memory_free_is_refused_before_decoding(
    tmp_path: Path,
) -> None:
    path = tmp_path / "big.png"
    path.write_bytes(short_png(9000, 9900, 1))
    budget = MemoryBudget(available=2**30, output_scale=4)
    with pytest.raises(ImageError, match=r"big\.png: 9000x9900 pixels needs about 4\.5 GiB"):
        read_image(path, budget=budget)
    small = tmp_path / "small.png"
    small.write_bytes(short_png(8, 8, 8))
    assert read_image(small, budget=budget).rgb.shape == (8, 8, 3)


def test_truncated_images_are_never_loaded_silently() -> None:
    from PIL import ImageFile

    import adacode_cli.cli.app
    import adacode_cli.images.decode  # noqa: F401

    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_a_tiny_jpeg_declaring_a_huge_image_is_truncated(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(random_rgb(16, 96)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.index(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", 9900, 9000)
    path = tmp_path / "huge.jpg"
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"huge\.jpg: truncated image: \d+ bytes cannot hold"):
        read_image(path)
    whole = tmp_path / "whole.jpg"
    whole.write_bytes(buffer.getvalue())
    assert read_image(whole).rgb.shape == (16, 96, 3)
