"""write_image: formats by extension, depth, grey, alpha, metadata, and atomic replacement."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.images.decode import read_image
from adacode_cli.images.encode import write_image

RNG = np.random.default_rng(11)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def rgb8(height: int = 6, width: int = 7) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def rgb16(height: int = 6, width: int = 7) -> np.ndarray:
    return RNG.integers(0, 65536, (height, width, 3), dtype=np.uint16)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_lossless_rgb_round_trip(tmp_path: Path, suffix: str) -> None:
    pixels = rgb8()
    write_image(tmp_path / f"a{suffix}", pixels)
    assert np.array_equal(read_image(tmp_path / f"a{suffix}").rgb, pixels)


@pytest.mark.parametrize(
    ("suffix", "fmt"), [(".jpg", "JPEG"), (".JPEG", "JPEG"), (".webp", "WEBP")]
)
def test_lossy_formats(tmp_path: Path, suffix: str, fmt: str) -> None:
    pixels = np.full((8, 8, 3), (200, 40, 90), dtype=np.uint8)
    write_image(tmp_path / f"a{suffix}", pixels, quality=95)
    loaded = read_image(tmp_path / f"a{suffix}")
    assert loaded.format == fmt
    assert np.abs(loaded.rgb.astype(int) - pixels).max() <= 4


@pytest.mark.parametrize("suffix", [".png", ".tif", ".webp"])
def test_rgba_alpha_kept(tmp_path: Path, suffix: str) -> None:
    pixels, alpha = rgb8(), RNG.integers(0, 256, (6, 7), dtype=np.uint8)
    write_image(tmp_path / f"a{suffix}", pixels, alpha=alpha)
    loaded = read_image(tmp_path / f"a{suffix}")
    assert loaded.alpha is not None
    if suffix != ".webp":
        assert np.array_equal(loaded.alpha, alpha) and np.array_equal(loaded.rgb, pixels)


def test_alpha_dropped_for_jpeg(tmp_path: Path) -> None:
    write_image(tmp_path / "a.jpg", rgb8(), alpha=np.zeros((6, 7), dtype=np.uint8))
    assert read_image(tmp_path / "a.jpg").alpha is None


def test_grey_round_trip_8_bit(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, (5, 4), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "in.png")
    loaded = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.png", loaded.rgb, grayscale=loaded.is_grayscale)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "L"
        assert np.array_equal(np.asarray(written), grey)


def test_grey_alpha_written_as_la(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, (5, 4, 2), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "in.png")
    loaded = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.png", loaded.rgb, alpha=loaded.alpha, grayscale=True)
    with Image.open(tmp_path / "out.png") as written:
        assert written.mode == "LA"
        assert np.array_equal(np.asarray(written), grey)


def test_grey_is_luma_of_colour(tmp_path: Path) -> None:
    pixels = rgb8()
    write_image(tmp_path / "g.jpg", pixels, grayscale=True, quality=100)
    with Image.open(tmp_path / "g.jpg") as written:
        assert written.mode == "L"
        expected = np.asarray(Image.fromarray(pixels).convert("L")).astype(int)
        assert np.abs(np.asarray(written).astype(int) - expected).max() <= 3


@pytest.mark.parametrize("suffix", [".png", ".tif"])
@pytest.mark.parametrize("with_alpha", [False, True])
def test_16_bit_colour_is_bit_exact(tmp_path: Path, suffix: str, with_alpha: bool) -> None:
    pixels = rgb16()
    pixels[0, 0] = (256, 1000, 65535)  # values above 255 must survive
    alpha = RNG.integers(0, 65536, (6, 7), dtype=np.uint16) if with_alpha else None
    write_image(tmp_path / f"d{suffix}", pixels, alpha=alpha, bit_depth=16)
    loaded = read_image(tmp_path / f"d{suffix}")
    assert loaded.bit_depth == 16 and np.array_equal(loaded.rgb, pixels)
    assert (loaded.alpha is None) == (alpha is None)
    if alpha is not None:
        assert np.array_equal(loaded.alpha, alpha)


def test_16_bit_png_passes_pillow_verify(tmp_path: Path) -> None:
    write_image(tmp_path / "d.png", rgb16(40, 50), bit_depth=16, icc_profile=srgb_profile())
    with Image.open(tmp_path / "d.png") as image:
        image.verify()  # checks every chunk's CRC


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_grey(tmp_path: Path, suffix: str) -> None:
    grey = RNG.integers(0, 65536, (4, 5), dtype=np.uint16)
    write_image(
        tmp_path / f"g{suffix}", np.repeat(grey[..., None], 3, axis=2), grayscale=True, bit_depth=16
    )
    loaded = read_image(tmp_path / f"g{suffix}")
    assert loaded.is_grayscale and loaded.bit_depth == 16
    assert np.array_equal(loaded.rgb[..., 0], grey)
    with Image.open(tmp_path / f"g{suffix}") as written:
        assert written.mode == "I;16"


def test_16_bit_grey_alpha_tiff_becomes_rgba(tmp_path: Path) -> None:
    grey = np.full((3, 3, 3), 4000, dtype=np.uint16)
    alpha = np.full((3, 3), 30000, dtype=np.uint16)
    write_image(tmp_path / "g.tif", grey, alpha=alpha, grayscale=True, bit_depth=16)
    loaded = read_image(tmp_path / "g.tif")
    assert np.array_equal(loaded.rgb, grey) and np.array_equal(loaded.alpha, alpha)


@pytest.mark.parametrize("suffix", [".jpg", ".webp"])
def test_16_bit_reduced_to_8_where_format_cannot(tmp_path: Path, suffix: str) -> None:
    pixels = np.full((8, 8, 3), 257 * 100, dtype=np.uint16)
    write_image(tmp_path / f"a{suffix}", pixels, bit_depth=16, quality=100)
    loaded = read_image(tmp_path / f"a{suffix}")
    assert loaded.bit_depth == 8 and np.abs(loaded.rgb.astype(int) - 100).max() <= 2


def test_depth_conversions(tmp_path: Path) -> None:
    write_image(tmp_path / "up.png", np.full((2, 2, 3), 255, np.uint8), bit_depth=16)
    assert read_image(tmp_path / "up.png").rgb.max() == 65535
    floats = np.array([[[0.0, 0.5, 1.2]]], dtype=np.float32)
    write_image(tmp_path / "f.png", floats)
    assert read_image(tmp_path / "f.png").rgb.tolist() == [[[0, 128, 255]]]
    write_image(tmp_path / "f16.png", floats, bit_depth=16)
    assert read_image(tmp_path / "f16.png").rgb.tolist() == [[[0, 32768, 65535]]]


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tif"])
@pytest.mark.parametrize("bit_depth", [8, 16])
def test_icc_profile_carried(tmp_path: Path, suffix: str, bit_depth: int) -> None:
    profile = srgb_profile()
    write_image(tmp_path / f"i{suffix}", rgb16(), bit_depth=bit_depth, icc_profile=profile)
    assert read_image(tmp_path / f"i{suffix}").icc_profile == profile


def test_icc_profile_of_wrong_colour_space_dropped(tmp_path: Path) -> None:
    write_image(tmp_path / "g.png", rgb8(), grayscale=True, icc_profile=srgb_profile())
    assert read_image(tmp_path / "g.png").icc_profile is None


@pytest.mark.parametrize(
    ("suffix", "bit_depth"), [(".png", 8), (".png", 16), (".jpg", 8), (".webp", 8), (".tif", 8)]
)
def test_exif_carried(tmp_path: Path, suffix: str, bit_depth: int) -> None:
    exif = Image.Exif()
    exif[0x010F] = "TestCam"
    exif[0x0112] = 1
    write_image(tmp_path / f"e{suffix}", rgb8(), bit_depth=bit_depth, exif=exif.tobytes())
    with Image.open(tmp_path / f"e{suffix}") as written:
        assert written.getexif()[0x010F] == "TestCam"


def test_read_then_write_keeps_metadata(tmp_path: Path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb8(2, 4)).save(
        tmp_path / "in.jpg", exif=exif.tobytes(), icc_profile=srgb_profile()
    )
    loaded = read_image(tmp_path / "in.jpg")
    write_image(tmp_path / "out.png", loaded.rgb, icc_profile=loaded.icc_profile, exif=loaded.exif)
    again = read_image(tmp_path / "out.png")
    assert again.rgb.shape == (4, 2, 3)  # upright, and not turned a second time
    assert again.icc_profile == loaded.icc_profile


def test_one_pixel(tmp_path: Path) -> None:
    for suffix in (".png", ".jpg", ".webp", ".tif"):
        write_image(tmp_path / f"one{suffix}", np.zeros((1, 1, 3), np.uint8))
        assert read_image(tmp_path / f"one{suffix}").rgb.shape == (1, 1, 3)


def test_unknown_extension_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(AdaCodeError, match=r"cannot write \.gif"):
        write_image(tmp_path / "a.gif", rgb8())
    assert not (tmp_path / "a.gif").exists()


def test_creates_missing_folders(tmp_path: Path) -> None:
    write_image(tmp_path / "x" / "y" / "a.png", rgb8())
    assert (tmp_path / "x" / "y" / "a.png").is_file()


def test_failed_write_leaves_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "a.png"
    target.write_bytes(b"previous result")

    def half_write(self: Image.Image, fp: Path, *args: object, **kwargs: object) -> None:
        Path(fp).write_bytes(b"\x89PNG partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half_write)
    with pytest.raises(ImageError, match="disk full") as caught:
        write_image(target, rgb8())
    assert str(target) in str(caught.value)
    assert target.read_bytes() == b"previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_failed_16_bit_write_leaves_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object):  # a generator that fails after some output
        yield b"\x89PNG\r\n\x1a\n"
        raise OSError("no space left")

    monkeypatch.setattr("adacode_cli.images.encode.encode_png16", broken)
    with pytest.raises(ImageError):
        write_image(tmp_path / "d.png", rgb16(), bit_depth=16)
    assert list(tmp_path.iterdir()) == []
