"""Inpainting masks: holes from any mode, size checks, dilation, and matching masks to images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.images.masks import MaskSizeError, dilate_mask, load_mask, masks_for, match_mask


def save(path: Path, pixels: np.ndarray, **options: object) -> Path:
    Image.fromarray(pixels).save(path, **options)
    return path


def test_white_on_black_grey_mask(tmp_path: Path) -> None:
    pixels = np.zeros((4, 5), dtype=np.uint8)
    pixels[1, 2] = 255
    pixels[3, 4] = 1  # any non-zero value is a hole (0/1 label maps)
    holes = load_mask(save(tmp_path / "m.png", pixels), (4, 5))
    assert holes.dtype == bool and holes.shape == (4, 5)
    assert holes.sum() == 2 and holes[1, 2] and holes[3, 4]


def test_colour_mask_and_transparent_pixels(tmp_path: Path) -> None:
    pixels = np.zeros((3, 3, 4), dtype=np.uint8)
    pixels[0, 0] = (255, 0, 0, 255)  # painted red: hole
    pixels[1, 1] = (255, 255, 255, 0)  # white but fully transparent: not painted
    holes = load_mask(save(tmp_path / "m.png", pixels), (3, 3))
    assert holes.sum() == 1 and holes[0, 0]


def test_palette_and_16_bit_masks(tmp_path: Path) -> None:
    grey = np.zeros((3, 3), dtype=np.uint8)
    grey[2, 2] = 255
    palette = Image.fromarray(grey).convert("P")
    palette.save(tmp_path / "p.png")
    assert load_mask(tmp_path / "p.png", (3, 3)).sum() == 1
    deep = np.zeros((3, 3), dtype=np.uint16)
    deep[0, 1] = 300
    assert load_mask(save(tmp_path / "d.png", deep), (3, 3))[0, 1]


def test_jpeg_noise_is_not_a_hole(tmp_path: Path) -> None:
    pixels = np.zeros((16, 16), dtype=np.uint8)
    pixels[4:12, 4:12] = 255
    holes = load_mask(save(tmp_path / "m.jpg", pixels, quality=60), (16, 16))
    assert holes[6:10, 6:10].all() and not holes[0:2, 0:2].any() and holes.sum() < 100


def test_size_mismatch_fails_that_image(tmp_path: Path) -> None:
    path = save(tmp_path / "m.png", np.full((4, 4), 255, dtype=np.uint8))
    with pytest.raises(MaskSizeError, match=r"the mask is 4x4 but its image is 8x6") as caught:
        load_mask(path, (6, 8))
    assert str(path) in str(caught.value) and caught.value.exit_code == 1


def test_a_mask_without_holes_is_refused(tmp_path: Path) -> None:
    for name, pixels in (("black.png", np.zeros((4, 4), dtype=np.uint8)),
                         ("opaque.png", np.full((4, 4, 4), (0, 0, 0, 255), dtype=np.uint8)),
                         ("clear.png", np.full((4, 4, 4), (255, 255, 255, 0), dtype=np.uint8))):
        with pytest.raises(ImageError, match="marks no holes"):
            load_mask(save(tmp_path / name, pixels), (4, 4))


def test_a_mask_drawn_only_in_alpha_has_its_opaque_pixels_as_holes(tmp_path: Path) -> None:
    pixels = np.zeros((4, 5, 4), dtype=np.uint8)  # black, transparent
    pixels[1:3, 2, 3] = 255  # a stroke painted opaque
    holes = load_mask(save(tmp_path / "alpha.png", pixels), (4, 5))
    assert holes.sum() == 2 and holes[1:3, 2].all()


def test_resize_uses_nearest(tmp_path: Path) -> None:
    pixels = np.zeros((2, 2), dtype=np.uint8)
    pixels[0, 1] = 255
    holes = load_mask(save(tmp_path / "m.png", pixels), (4, 6), resize=True)
    assert holes.shape == (4, 6) and holes[:2, 3:].all() and holes.sum() == 6


def test_dilate(tmp_path: Path) -> None:
    pixels = np.zeros((7, 7), dtype=np.uint8)
    pixels[3, 3] = 255
    holes = load_mask(save(tmp_path / "m.png", pixels), (7, 7), dilate=2)
    expected = np.zeros((7, 7), dtype=bool)
    expected[1:6, 1:6] = True
    assert np.array_equal(holes, expected)


def test_dilate_matches_brute_force_at_edges() -> None:
    holes = np.random.default_rng(5).random((9, 11)) > 0.9
    radius = 3
    expected = np.zeros_like(holes)
    for y, x in zip(*np.nonzero(holes), strict=True):
        expected[max(0, y - radius) : y + radius + 1, max(0, x - radius) : x + radius + 1] = True
    assert np.array_equal(dilate_mask(holes, radius), expected)


def test_unreadable_mask_is_an_image_error(tmp_path: Path) -> None:
    (tmp_path / "m.png").write_text("nope")
    with pytest.raises(ImageError, match=r"m\.png"):
        load_mask(tmp_path / "m.png", (2, 2))


def test_match_single_file(tmp_path: Path) -> None:
    mask = save(tmp_path / "mask.png", np.zeros((2, 2), dtype=np.uint8))
    assert match_mask(tmp_path / "any.jpg", mask) == mask


def test_match_folder_by_stem(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    save(masks / "cat.png", np.zeros((2, 2), dtype=np.uint8))
    save(masks / "dog.JPG", np.zeros((2, 2), dtype=np.uint8))
    (masks / "bird.txt").write_text("not a mask")
    assert match_mask(tmp_path / "in" / "cat.jpg", masks) == masks / "cat.png"
    assert match_mask(tmp_path / "dog.webp", masks) == masks / "dog.JPG"
    with pytest.raises(ImageError, match="no mask named bird") as caught:
        match_mask(tmp_path / "bird.png", masks)
    assert caught.value.exit_code == 1
    save(masks / "cat.webp", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ImageError, match="several masks"):
        match_mask(tmp_path / "cat.png", masks)


def test_match_folder_skips_the_input_itself(tmp_path: Path) -> None:
    image = save(tmp_path / "cat.png", np.zeros((2, 2), dtype=np.uint8))
    with pytest.raises(ImageError, match="no mask"):
        match_mask(image, tmp_path)


def test_missing_mask_spec(tmp_path: Path) -> None:
    with pytest.raises(AdaCodeError, match="no such mask"):
        match_mask(tmp_path / "a.png", tmp_path / "absent")


def test_masks_for_checks_the_whole_run_up_front(tmp_path: Path) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    cat = save(masks / "cat.png", np.zeros((2, 2), dtype=np.uint8))
    assert masks_for([tmp_path / "cat.jpg", tmp_path / "dog.jpg"], masks) == [cat]
    with pytest.raises(AdaCodeError, match="no mask named after any input"):
        masks_for([tmp_path / "dog.jpg"], masks)


def test_one_mask_of_no_input_s_size_is_refused_up_front(tmp_path: Path) -> None:
    hole = np.zeros((4, 6), dtype=np.uint8)
    hole[1, 1] = 255
    mask = save(tmp_path / "mask.png", hole)  # 6 wide, 4 high
    wide = save(tmp_path / "wide.png", np.zeros((4, 6, 3), dtype=np.uint8))
    tall = save(tmp_path / "tall.png", np.zeros((6, 4, 3), dtype=np.uint8))  # EXIF may turn it
    small = save(tmp_path / "small.png", np.zeros((3, 3, 3), dtype=np.uint8))
    clip = tmp_path / "clip.mp4"  # a video's frame size is ffprobe's: left to the run

    assert masks_for([small, wide], mask) == [mask]  # fits one: the others fail one by one
    assert masks_for([tall], mask) == [mask]
    assert masks_for([small, clip], mask) == [mask]
    assert masks_for([small], mask, resize=True) == [mask]
    with pytest.raises(AdaCodeError, match=r"mask\.png: the mask is 6x4 but no input is "
                                           r"\(e\.g\. .*small\.png is 3x3\); pass --resize-mask"):
        masks_for([small], mask)
