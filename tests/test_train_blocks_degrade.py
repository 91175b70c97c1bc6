"""BSRGAN degradation, the OpenCV/MATLAB-style resizers it relies on, and training-pair crops."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adacode_cli.errors import ImageError
from adacode_cli.train.degradations import (
    anisotropic_gaussian,
    convolve_mirror,
    degrade_bsrgan,
    isotropic_gaussian,
    shift_kernel,
)
from adacode_cli.train.pairs import augment, bsrgan_pair, paired_crop
from adacode_cli.train.resize import imresize_matlab, resize_by, resize_to


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    base = np.stack([np.sin(x / 9), np.cos(y / 7), np.sin((x + y) / 11)], axis=-1) * 0.35 + 0.5
    return np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1).astype(np.float32)


def as_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].double()


@pytest.mark.parametrize("mode", ["bilinear", "bicubic"])
@pytest.mark.parametrize("size", [(18, 26), (11, 40), (70, 90)])
def test_cv2_kernels_match_torch_half_pixel_interpolation(mode: str, size: tuple[int, int]) -> None:
    # OpenCV and torch (align_corners=False, no antialias) share centre mapping, Keys a=-0.75 and
    # replicated borders, so they must agree to float precision.
    image = np.random.default_rng(1).random((37, 53, 3)).astype(np.float32)
    ours = resize_to(image, *size, mode)  # type: ignore[arg-type]
    ref = F.interpolate(as_tensor(image), size=size, mode=mode, align_corners=False)
    np.testing.assert_allclose(ours, ref[0].permute(1, 2, 0).numpy(), atol=1e-6)


def test_area_is_box_average_for_integer_factors() -> None:
    image = np.random.default_rng(2).random((36, 52, 3)).astype(np.float32)
    ref = F.avg_pool2d(as_tensor(image), (3, 4))[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(resize_to(image, 12, 13, "area"), ref, atol=1e-6)


def test_area_fractional_weights_by_overlap() -> None:
    row = np.array([[0.0, 3.0, 6.0]], dtype=np.float32)[..., None]  # 3 px -> 2 px: 1.5 px each
    out = resize_to(row, 1, 2, "area")[0, :, 0]
    np.testing.assert_allclose(out, [(0 + 0.5 * 3) / 1.5, (0.5 * 3 + 6) / 1.5], rtol=1e-6)


def test_area_enlarging_uses_opencvs_linear_rule() -> None:
    row = np.array([[0.0, 4.0]], dtype=np.float32)[..., None]
    np.testing.assert_allclose(resize_to(row, 1, 4, "area")[0, :, 0], [0, 0, 4, 4])
    np.testing.assert_allclose(resize_to(row, 1, 3, "area")[0, :, 0], [0, 2, 4])


def test_resize_by_rounds_size_like_cv2_fx() -> None:
    assert resize_by(np.zeros((100, 61, 3), np.float32), 0.5, "bicubic").shape == (50, 30, 3)


def test_matlab_imresize_hand_computed_values() -> None:
    # [1 2 3 4] at 0.5: antialiased Keys(-0.5) kernel of width 8 with symmetric borders gives
    # 1.4609375 (worked by hand: weights f(d/2)/2 over taps reflected as 3 2 1 | 1 2 3 4 | 4).
    row = np.array([[1.0, 2.0, 3.0, 4.0]], dtype=np.float32)[..., None]
    out = imresize_matlab(row, 0.5)
    assert out.shape == (1, 2, 1)
    np.testing.assert_allclose(out[0, :, 0], [1.4609375, 3.5390625], atol=1e-6)


def test_matlab_imresize_interior_matches_antialiased_bicubic() -> None:
    # Away from the borders MATLAB's and PIL/torch's antialiased a=-0.5 bicubic coincide.
    image = np.random.default_rng(3).random((48, 64, 3)).astype(np.float32)
    ours = imresize_matlab(image, 0.25)
    ref = F.interpolate(as_tensor(image), size=(12, 16), mode="bicubic", antialias=True)
    np.testing.assert_allclose(ours[3:-3, 3:-3], ref[0].permute(1, 2, 0).numpy()[3:-3, 3:-3],
                               atol=1e-6)


def test_blur_kernels_are_normalised_and_point_symmetric() -> None:
    for kernel in (anisotropic_gaussian(15, 0.7, 5.0, 0.8), isotropic_gaussian(21, 2.4)):
        assert kernel.sum() == pytest.approx(1.0)
        np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-12)
    aniso = anisotropic_gaussian(15, 0.0, 6.0, 1.0)  # theta 0: long along x
    assert aniso[7, 10] > aniso[10, 7]
    assert np.isfinite(isotropic_gaussian(7, 0.0)).all()  # zero width gives a delta, not NaN


def test_shift_kernel_moves_centre_up_left_by_half_scale_minus_one() -> None:
    kernel = shift_kernel(isotropic_gaussian(25, 1.0), 4)
    rows, cols = np.mgrid[:25, :25]
    assert (kernel * rows).sum() / kernel.sum() == pytest.approx(12 - 1.5)
    assert (kernel * cols).sum() / kernel.sum() == pytest.approx(12 - 1.5)


def test_convolve_mirror_is_a_true_convolution_with_reflected_borders() -> None:
    image = np.zeros((9, 9, 1), dtype=np.float32)
    image[4, 4] = 1
    kernel = np.zeros((3, 3))
    kernel[0, 2] = 1  # convolution: out[i, j] = in[i + 1, j - 1], so the impulse goes up-right
    out = convolve_mirror(image, kernel)  # (a correlation would move it down-left)
    assert out[3, 5, 0] == 1 and out.sum() == 1
    edge = np.arange(5, dtype=np.float32).reshape(1, 5, 1).repeat(3, axis=0)
    left = convolve_mirror(edge, np.array([[1.0, 0.0, 0.0]]))  # out[x] = in[x + 1], mirrored
    np.testing.assert_array_equal(left[0, :, 0], [1, 2, 3, 4, 3])


@pytest.mark.parametrize("scale", [2, 4])
def test_degradation_is_seeded_and_exactly_one_scale_smaller(scale: int) -> None:
    hq = smooth_image(256, 256)
    lq_a, hq_a = degrade_bsrgan(hq, scale, np.random.default_rng(7))
    lq_b, _ = degrade_bsrgan(hq, scale, np.random.default_rng(7))
    lq_c, _ = degrade_bsrgan(hq, scale, np.random.default_rng(8))
    assert lq_a.shape == (256 // scale, 256 // scale, 3) and lq_a.dtype == np.float32
    assert hq_a.shape == (256, 256, 3)
    np.testing.assert_array_equal(lq_a, lq_b)
    assert not np.array_equal(lq_a, lq_c)
    assert lq_a.min() >= 0 and lq_a.max() <= 1
    np.testing.assert_array_equal(np.round(lq_a * 255), lq_a * np.float32(255))  # JPEG last


@pytest.mark.parametrize("scale", [2, 4])
def test_degradation_keeps_lq_aligned_with_hq(scale: int) -> None:
    # Averaged over seeds, LQ is closest to the box-downsampled HQ at zero shift, not +-1 pixel.
    hq = smooth_image(128, 128)
    down = F.avg_pool2d(as_tensor(hq), scale)[0].permute(1, 2, 0).numpy()
    errors = np.zeros((3, 3))
    for seed in range(3):
        lq = degrade_bsrgan(hq, scale, np.random.default_rng(seed))[0]
        for dy in (-1, 0, 1):
            for dx in (-1, 0, 1):
                shifted = np.roll(down, (dy, dx), axis=(0, 1))
                errors[dy + 1, dx + 1] += np.abs(lq - shifted)[4:-4, 4:-4].mean()
    assert errors.argmin() == 4


def test_degradation_mod_crops_and_patch_crops_aligned() -> None:
    hq = smooth_image(203, 150)
    lq, cropped = degrade_bsrgan(hq, 4, np.random.default_rng(0))
    assert cropped.shape == (200, 148, 3) and lq.shape == (50, 37, 3)
    lq, patch = degrade_bsrgan(hq, 4, np.random.default_rng(0), lq_patch_size=24)
    assert lq.shape == (24, 24, 3) and patch.shape == (96, 96, 3)
    rows = np.where((hq[:200, :148, None] == patch[0, 0]).all(-1))[0]
    assert rows.size and rows[0] % 4 == 0  # the hq patch starts on the lq grid


def test_too_small_image_is_an_image_error() -> None:
    with pytest.raises(ImageError, match="too small"):
        degrade_bsrgan(np.zeros((3, 9, 3), np.float32), 4, np.random.default_rng(0))


@pytest.mark.parametrize("scale", [2, 4])
def test_bsrgan_training_pair_is_a_256_crop_and_its_degradation(scale: int) -> None:
    lq, gt = bsrgan_pair(smooth_image(300, 280), scale, np.random.default_rng(scale))
    assert gt.shape == (256, 256, 3) and lq.shape == (256 // scale, 256 // scale, 3)
    with pytest.raises(ImageError, match="smaller than 256"):
        bsrgan_pair(smooth_image(200, 300), scale, np.random.default_rng(0))


def test_paired_crop_keeps_lq_and_gt_aligned() -> None:
    gt = smooth_image(288, 320)
    lq = gt[::2, ::2].copy()  # an exact x2 pair: aligned crops stay exactly related
    out_lq, out_gt = paired_crop(gt, lq, np.random.default_rng(0), scale=2, gt_size=64,
                                 resize_crop=False, flip=False, rotate=False)
    assert out_gt.shape == (64, 64, 3) and out_lq.shape == (32, 32, 3)
    np.testing.assert_array_equal(out_gt[::2, ::2], out_lq)
    out_lq, out_gt = paired_crop(gt, lq, np.random.default_rng(1), scale=2, gt_size=64)
    assert out_gt.shape == (64, 64, 3) and out_lq.shape == (32, 32, 3)


def test_augment_applies_one_transform_to_all() -> None:
    image = np.arange(24, dtype=np.float32).reshape(2, 4, 3)
    for seed in range(8):
        first, second = augment([image, image.copy()], np.random.default_rng(seed))
        np.testing.assert_array_equal(first, second)
    unchanged = augment([image], np.random.default_rng(0), flip=False, rotate=False)[0]
    np.testing.assert_array_equal(unchanged, image)
    shapes = {augment([image], np.random.default_rng(s))[0].shape for s in range(16)}
    assert shapes == {(2, 4, 3), (4, 2, 3)}  # the transpose (rotation) happens sometimes


def test_portrait_images_crop_without_error() -> None:
    """The random resize follows the short side, so tall images narrower than tall work."""
    from adacode_cli.train.pairs import bsrgan_pair, paired_crop

    rng = np.random.default_rng(0)
    gt = rng.random((400, 260, 3), dtype=np.float32)
    lq = gt[::2, ::2].copy()
    for seed in range(5):
        lq_out, gt_out = paired_crop(gt, lq, np.random.default_rng(seed), scale=2,
                                     gt_size=256)
        assert gt_out.shape == (256, 256, 3) and lq_out.shape == (128, 128, 3)
    lq_out, gt_out = bsrgan_pair(gt, 4, np.random.default_rng(1), gt_size=256)
    assert gt_out.shape == (256, 256, 3) and lq_out.shape == (64, 64, 3)
