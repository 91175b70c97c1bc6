"""Every pixel mode Pillow opens from a PNG, TIFF, WebP, BMP or GIF is read exactly (as Pillow
itself converts it, or bit-exactly for deep samples) or refused with one line: never read with
the wrong meaning (an int32 TIFF as 16-bit grey, 12-bit samples as 16-bit ones). Real files made
here, with Pillow or, for sample types Pillow cannot write, a minimal TIFF writer."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacode_cli.errors import ImageError
from adacode_cli.images.decode import read_image
from adacode_cli.images.depth import FLOAT_DEPTH
from adacode_cli.images.encode import write_image

RNG = np.random.default_rng(5)
HEIGHT, WIDTH = 5, 6


def grey_tiff(path: Path, data: bytes, *, bits: int, sample_format: int, order: str = "<") -> Path:
    """An uncompressed one-strip grey TIFF of HEIGHT x WIDTH samples `data` (already packed)."""
    tags = [(256, 4, WIDTH), (257, 4, HEIGHT), (258, 3, bits), (259, 3, 1), (262, 3, 1),
            (273, 4, 0), (277, 3, 1), (278, 4, HEIGHT), (279, 4, len(data)),
            (339, 3, sample_format)]
    ifd_size = 2 + 12 * len(tags) + 4
    strip = 8 + ifd_size
    entries = b"".join(
        struct.pack(order + "HHI", tag, kind, 1)
        + (struct.pack(order + "HH", strip if tag == 273 else value, 0) if kind == 3
           else struct.pack(order + "I", strip if tag == 273 else value))
        for tag, kind, value in tags
    )
    magic = b"II*\0" if order == "<" else b"MM\0*"
    path.write_bytes(magic + struct.pack(order + "I", 8) + struct.pack(order + "H", len(tags))
                     + entries + b"\0\0\0\0" + data)
    return path


def test_float_tiff_is_read_as_float_and_written_back_as_float(tmp_path: Path) -> None:
    samples = RNG.random((HEIGHT, WIDTH)).astype(np.float32)
    samples[0, :2] = (0.0, 1.0)
    Image.fromarray(samples).save(tmp_path / "f.tif")

    image = read_image(tmp_path / "f.tif")

    assert image.rgb.dtype == np.float32 and image.bit_depth == FLOAT_DEPTH
    assert image.is_grayscale and np.array_equal(image.rgb, np.repeat(samples[..., None], 3, 2))
    write_image(tmp_path / "out.tif", image.rgb, grayscale=True, bit_depth=image.bit_depth)
    with Image.open(tmp_path / "out.tif") as written:
        assert written.mode == "F"
        assert np.allclose(np.asarray(written), samples, atol=1e-6)
    write_image(tmp_path / "out.png", image.rgb, grayscale=True, bit_depth=image.bit_depth)
    assert read_image(tmp_path / "out.png").bit_depth == 16  # PNG holds no float: 16 bits


def test_big_endian_float_tiff(tmp_path: Path) -> None:
    samples = RNG.random((HEIGHT, WIDTH)).astype(np.float32)
    path = grey_tiff(tmp_path / "f.tif", samples.astype(">f4").tobytes(), bits=32,
                     sample_format=3, order=">")
    assert np.array_equal(read_image(path).rgb[..., 0], samples)


def test_float_rgb_round_trip_through_our_tiff_writer(tmp_path: Path) -> None:
    """An RGB float result is written as a float TIFF too (Pillow cannot read it back: the
    refusal is one line naming the file)."""
    pixels = RNG.random((HEIGHT, WIDTH, 3)).astype(np.float32)
    write_image(tmp_path / "rgb.tif", pixels, bit_depth=FLOAT_DEPTH)
    data = (tmp_path / "rgb.tif").read_bytes()
    offset = struct.unpack("<I", data[4:8])[0]
    entries = {}
    for index in range(struct.unpack("<H", data[offset : offset + 2])[0]):
        tag, _, count, value = struct.unpack("<HHII", data[offset + 2 + 12 * index:][:12])
        entries[tag] = (count, value)
    bits, formats = entries[258], entries[339]
    assert bits[0] == formats[0] == 3  # three samples per pixel, each ...
    assert struct.unpack("<3H", data[bits[1] : bits[1] + 6]) == (32, 32, 32)  # 32 bits ...
    assert struct.unpack("<3H", data[formats[1] : formats[1] + 6]) == (3, 3, 3)  # IEEE float
    assert list(entries) == sorted(entries)  # TIFF readers expect tags in ascending order
    with pytest.raises(ImageError, match=r"rgb\.tif: a TIFF file of a variant that cannot be read"):
        read_image(tmp_path / "rgb.tif")


@pytest.mark.parametrize(("values", "message"), [
    ([0.0, 1.5], r"float samples span 0 to 1\.5, outside \[0, 1\]"),
    ([-0.25, 0.5], r"float samples span -0\.25 to 0\.5, outside \[0, 1\]"),
    ([np.nan, 0.5], r"float samples include NaN or infinity"),
])
def test_float_samples_outside_zero_to_one_are_refused(
    tmp_path: Path, values: list[float], message: str
) -> None:
    samples = np.full((HEIGHT, WIDTH), 0.5, dtype=np.float32)
    samples[0, :2] = values
    Image.fromarray(samples).save(tmp_path / "hdr.tif")
    with pytest.raises(ImageError, match=rf"hdr\.tif: {message}"):
        read_image(tmp_path / "hdr.tif")


@pytest.mark.parametrize(("dtype", "bits", "sample_format", "kind"), [
    ("<i4", 32, 2, "32-bit integer"),
    ("<u4", 32, 1, "32-bit integer"),
    ("<i2", 16, 2, "signed 16-bit"),
])
def test_integer_samples_without_a_brightness_scale_are_refused(
    tmp_path: Path, dtype: str, bits: int, sample_format: int, kind: str
) -> None:
    """Pillow opens these as mode I; read_image once clipped them to 16 bits, silently."""
    samples = np.arange(HEIGHT * WIDTH).reshape(HEIGHT, WIDTH) * 1000
    path = grey_tiff(tmp_path / "deep.tif", samples.astype(dtype).tobytes(), bits=bits,
                     sample_format=sample_format)
    with pytest.raises(ImageError, match=rf"deep\.tif: {kind} samples have no agreed"):
        read_image(path)


def test_int32_tiff_written_by_pillow_is_refused(tmp_path: Path) -> None:
    Image.fromarray(np.array([[0, 40000, 70000]], dtype=np.int32)).save(tmp_path / "i.tif")
    with pytest.raises(ImageError, match=r"i\.tif: 32-bit integer samples"):
        read_image(tmp_path / "i.tif")


def test_twelve_bit_tiff_fills_the_sixteen_bit_range(tmp_path: Path) -> None:
    """12-bit samples (scientific cameras) are widened like 8-bit ones: 4095 -> 65535."""
    samples = RNG.integers(0, 4096, (HEIGHT, WIDTH), dtype=np.uint16)
    samples[0, :2] = (0, 4095)
    rows = []
    for row in samples:
        packed = bytearray()
        for a, b in zip(row[0::2], row[1::2], strict=True):
            packed += bytes([a >> 4, (a & 15) << 4 | b >> 8, b & 255])
        rows.append(bytes(packed))
    path = grey_tiff(tmp_path / "twelve.tif", b"".join(rows), bits=12, sample_format=1)

    image = read_image(path)

    assert image.bit_depth == 16
    assert np.array_equal(image.rgb[..., 0], samples << 4 | samples >> 8)


@pytest.mark.parametrize("order", ["<", ">"])
def test_sixteen_bit_grey_tiff_of_either_byte_order(tmp_path: Path, order: str) -> None:
    samples = RNG.integers(0, 65536, (HEIGHT, WIDTH), dtype=np.uint16)
    path = grey_tiff(tmp_path / "g.tif", samples.astype(order + "u2").tobytes(), bits=16,
                     sample_format=1, order=order)
    assert np.array_equal(read_image(path).rgb[..., 0], samples)


def test_lab_tiff_is_refused(tmp_path: Path) -> None:
    """Pillow's LAB -> RGB conversion copies channels: L*a*b* (50, 10, 20) came out blue."""
    Image.new("LAB", (WIDTH, HEIGHT), (128, 10, 20)).save(tmp_path / "lab.tif")
    with pytest.raises(ImageError, match=r"lab\.tif: CIE L\*a\*b\* images are not read"):
        read_image(tmp_path / "lab.tif")


def eight_bit(mode: str) -> Image.Image:
    bands = len(Image.new(mode, (1, 1)).getbands())
    pixels = RNG.integers(0, 256, (HEIGHT, WIDTH, bands), dtype=np.uint8)
    return Image.frombytes(mode, (WIDTH, HEIGHT), pixels.tobytes())


@pytest.mark.parametrize(("mode", "suffix"), [
    ("1", ".png"), ("1", ".tif"), ("1", ".bmp"), ("L", ".png"), ("L", ".tif"), ("L", ".bmp"),
    ("L", ".gif"), ("LA", ".png"), ("LA", ".tif"), ("P", ".png"), ("P", ".tif"), ("P", ".bmp"),
    ("P", ".gif"), ("RGB", ".png"), ("RGB", ".tif"), ("RGB", ".bmp"), ("RGB", ".webp"),
    ("RGBA", ".png"), ("RGBA", ".tif"), ("RGBA", ".webp"), ("CMYK", ".tif"), ("YCbCr", ".tif"),
])
def test_eight_bit_modes_read_as_pillow_converts_them(tmp_path: Path, mode: str,
                                                      suffix: str) -> None:
    """Every 8-bit mode each format stores: the pixels Pillow's own conversion gives."""
    source = eight_bit(mode) if mode != "1" else eight_bit("L").convert("1")
    path = tmp_path / f"image{suffix}"
    options = {"lossless": True} if suffix == ".webp" else {}
    source.save(path, **options)
    image = read_image(path)
    with Image.open(path) as opened:
        alpha = "A" in opened.mode or "transparency" in opened.info
        expected = np.asarray(opened.convert("RGBA" if alpha else "RGB"))
    assert np.array_equal(image.rgb, expected[..., :3])
    if alpha:
        assert image.alpha is not None and np.array_equal(image.alpha, expected[..., 3])


def test_sixteen_bit_premultiplied_tiff_is_read_as_eight_bits_with_a_warning(
    tmp_path: Path,
) -> None:
    """Pillow decodes 16-bit associated-alpha (and CMYK) TIFFs to 8 bits: the values are right
    but rounded, and the user is told."""
    from adacode_cli.images.tiff16 import NO_COMPRESSION, encode_tiff

    pixels = RNG.integers(0, 65536, (HEIGHT, WIDTH, 4), dtype=np.uint16)
    pixels[..., 3] = 65535  # opaque: premultiplied and straight colours agree
    data = bytearray(encode_tiff(pixels, compression=NO_COMPRESSION))
    offset = struct.unpack("<I", data[4:8])[0]
    for index in range(struct.unpack("<H", data[offset : offset + 2])[0]):
        entry = offset + 2 + 12 * index
        if struct.unpack("<H", data[entry : entry + 2])[0] == 338:  # ExtraSamples
            data[entry + 8 : entry + 10] = struct.pack("<H", 1)  # associated alpha
    (tmp_path / "a.tif").write_bytes(bytes(data))

    image = read_image(tmp_path / "a.tif")

    assert image.bit_depth == 8
    assert np.abs(image.rgb.astype(int) - (pixels[..., :3].astype(int) + 128) // 257).max() <= 1
    assert image.warnings == [f"{tmp_path / 'a.tif'}: 16-bit RGBa samples read as 8-bit ones"]
