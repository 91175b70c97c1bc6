"""The BSRGAN degradation model as the official AdaCode code applies it (`degradation_bsrgan`).

Blur twice, downsample in two steps, add Gaussian noise and JPEG artefacts in a random order, then a
final JPEG pass: the synthetic low-quality inputs AdaCode's super-resolution stages train on. The
probabilities, ranges and kernel formulas are the official ones; every random choice comes from one
`numpy.random.Generator`, so a seed reproduces an image (the official code mixes Python's `random`
and NumPy's global state, so the same seed does not give the official image, only the same
distribution). Images are HxWx3 float32 RGB in [0, 1].
"""

from __future__ import annotations

import io

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from adacode_cli.errors import ImageError
from adacode_cli.train.resize import CV2_MODES, Cv2Mode, imresize_matlab, resize_to

JPEG_PROB = 0.9  # chance of the in-sequence JPEG step; the final JPEG pass always runs
SCALE2_PROB = 0.25  # x4 only: chance of a first x2 downsample, after which the rest works at x2
NOISE_LEVELS = (2, 25)  # Gaussian noise sigma range, in 8-bit grey levels
JPEG_QUALITIES = (30, 95)
_MIN_VARIANCE = 1e-6  # keeps a (vanishingly rare) zero-width blur from dividing by zero


def degrade_bsrgan(
    hq: np.ndarray, scale: int, rng: np.random.Generator, *, lq_patch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (lq, hq): hq cropped to a multiple of `scale`, lq exactly hq's size / `scale`.

    With `lq_patch_size`, both are cropped to an aligned random patch (lq_patch_size and
    lq_patch_size * scale), as the official `use_crop=True`; training uses the whole 256 crop.
    """
    height, width = hq.shape[0] - hq.shape[0] % scale, hq.shape[1] - hq.shape[1] % scale
    if height < scale or width < scale:
        raise ImageError(f"image of {hq.shape[1]}x{hq.shape[0]} is too small for x{scale}")
    hq = np.array(hq[:height, :width], dtype=np.float32)
    img, sf = hq, scale
    if scale == 4 and rng.random() < SCALE2_PROB:
        if rng.random() < 0.5:
            img = resize_to(img, height // 2, width // 2, _random_mode(rng))
        else:
            img = imresize_matlab(img, 0.5)
        img, sf = np.clip(img, 0.0, 1.0), 2
    for step in _shuffled_steps(rng):
        if step in (0, 1):
            img = add_blur(img, sf, rng)
        elif step == 2:
            img = _downsample_random(img, sf, rng)
        elif step == 3:  # back to exactly the target size, whatever step 2 did
            img = resize_to(img, height // scale, width // scale, _random_mode(rng))
            img = np.clip(img, 0.0, 1.0)
        elif step == 4:
            img = add_gaussian_noise(img, rng)
        elif step == 5 and rng.random() < JPEG_PROB:
            img = add_jpeg(img, rng)
        # step 6 is the camera-ISP noise, which the official pipeline never enables (isp_model=None)
    lq = add_jpeg(img, rng)
    if lq_patch_size is not None:
        lq, hq = _aligned_crop(lq, hq, scale, lq_patch_size, rng)
    return lq, hq


def _shuffled_steps(rng: np.random.Generator) -> list[int]:
    """A random order of the 7 steps, except that downsample step 2 always precedes step 3."""
    order = [int(i) for i in rng.permutation(7)]
    first, second = order.index(2), order.index(3)
    if first > second:
        order[first], order[second] = order[second], order[first]
    return order


def _downsample_random(img: np.ndarray, sf: int, rng: np.random.Generator) -> np.ndarray:
    """Step 2: a random resize by 1/[1, 2sf), or a shifted Gaussian blur + nearest subsampling."""
    if rng.random() < 0.75:
        factor = rng.uniform(1, 2 * sf)
        height = max(1, int(1 / factor * img.shape[0]))
        width = max(1, int(1 / factor * img.shape[1]))
        img = resize_to(img, height, width, _random_mode(rng))
    else:
        kernel = shift_kernel(isotropic_gaussian(25, rng.uniform(0.1, 0.6 * sf)), sf)
        img = convolve_mirror(img, kernel / kernel.sum())[0::sf, 0::sf]
    return np.clip(img, 0.0, 1.0)


def add_blur(img: np.ndarray, sf: int, rng: np.random.Generator) -> np.ndarray:
    """Half the time an anisotropic Gaussian (eigenvalues up to 4+sf), else an isotropic one."""
    if rng.random() < 0.5:
        l1, l2 = (4.0 + sf) * rng.random(), (4.0 + sf) * rng.random()
        kernel = anisotropic_gaussian(_kernel_size(rng), rng.random() * np.pi, l1, l2)
    else:
        kernel = isotropic_gaussian(_kernel_size(rng), (2.0 + 0.2 * sf) * rng.random())
    return convolve_mirror(img, kernel)


def _kernel_size(rng: np.random.Generator) -> int:
    return 2 * int(rng.integers(2, 12)) + 3  # odd, 7..25


def _random_mode(rng: np.random.Generator) -> Cv2Mode:
    """OpenCV's INTER_LINEAR, INTER_CUBIC or INTER_AREA with equal chance, as the official."""
    return CV2_MODES[int(rng.integers(len(CV2_MODES)))]


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    """(y, x) pixel offsets from the centre of an odd size x size kernel."""
    coords = np.arange(size) - (size - 1) / 2
    y, x = np.meshgrid(coords, coords, indexing="ij")
    return y, x


def isotropic_gaussian(size: int, sigma: float) -> np.ndarray:
    """MATLAB `fspecial('gaussian', size, sigma)`: tiny tails zeroed, normalised to sum 1."""
    y, x = _grid(size)
    kernel = np.exp(-(x * x + y * y) / (2 * max(sigma, _MIN_VARIANCE) ** 2))
    kernel[kernel < np.finfo(float).eps * kernel.max()] = 0
    return kernel / kernel.sum()


def anisotropic_gaussian(size: int, theta: float, l1: float, l2: float) -> np.ndarray:
    """Gaussian with covariance V diag(l1, l2) V^-1, V the reflection of angle theta (official)."""
    c, s = np.cos(theta), np.sin(theta)
    v = np.array([[c, s], [s, -c]])  # its own inverse
    precision = v @ np.diag([1 / max(l1, _MIN_VARIANCE), 1 / max(l2, _MIN_VARIANCE)]) @ v
    y, x = _grid(size)
    quad = precision[0, 0] * x * x + 2 * precision[0, 1] * x * y + precision[1, 1] * y * y
    kernel = np.exp(-0.5 * quad)
    return kernel / kernel.sum()


def shift_kernel(kernel: np.ndarray, sf: int) -> np.ndarray:
    """Move a kernel (sf-1)/2 pixels up-left (bilinear, edges clamped) so that the following
    `[0::sf]` subsampling stays centred, as the official `shift_pixel`."""
    shift = (sf - 1) * 0.5
    rows = _linear_sampler(np.arange(kernel.shape[0]) + shift, kernel.shape[0])
    cols = _linear_sampler(np.arange(kernel.shape[1]) + shift, kernel.shape[1])
    return rows @ kernel @ cols.T


def _linear_sampler(positions: np.ndarray, length: int) -> np.ndarray:
    positions = np.clip(positions, 0, length - 1)
    left = np.minimum(np.floor(positions).astype(np.int64), length - 1)
    right = np.minimum(left + 1, length - 1)
    frac = positions - left
    matrix = np.zeros((positions.size, length))
    index = np.arange(positions.size)
    np.add.at(matrix, (index, left), 1 - frac)
    np.add.at(matrix, (index, right), frac)
    return matrix


def convolve_mirror(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True 2-D convolution per channel with mirrored borders (SciPy `convolve(mode='mirror')`)."""
    pad_h, pad_w = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(img, ((pad_h, pad_h), (pad_w, pad_w), (0, 0)), mode="reflect")
    planes = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1), dtype=np.float32))
    flipped = np.ascontiguousarray(kernel[::-1, ::-1], dtype=np.float32)
    out = F.conv2d(planes[:, None], torch.from_numpy(flipped)[None, None])[:, 0]
    return out.permute(1, 2, 0).numpy()


def add_gaussian_noise(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Colour (40%), grey (40%) or channel-correlated (20%) Gaussian noise, sigma 2..25 levels."""
    level = int(rng.integers(NOISE_LEVELS[0], NOISE_LEVELS[1] + 1)) / 255.0
    pick = rng.random()
    if pick > 0.6:
        noise = rng.normal(0, level, img.shape)
    elif pick < 0.4:
        noise = rng.normal(0, level, (*img.shape[:2], 1))
    else:  # random covariance at the top noise level, made "positive" by abs() as official
        top = NOISE_LEVELS[1] / 255.0
        basis = np.linalg.svd(rng.random((3, 3)))[0]
        covariance = np.abs(top**2 * (basis.T @ np.diag(rng.random(3)) @ basis))
        noise = rng.multivariate_normal(
            np.zeros(3), covariance, img.shape[:2], check_valid="ignore"
        )
    return np.clip(img + noise.astype(np.float32), 0.0, 1.0)


def add_jpeg(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Round-trip through an in-memory JPEG of quality 30..95 (4:2:0, as OpenCV's default)."""
    quality = int(rng.integers(JPEG_QUALITIES[0], JPEG_QUALITIES[1] + 1))
    pixels = (np.clip(img, 0.0, 1.0) * 255.0).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality, subsampling="4:2:0")
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255.0


def _aligned_crop(
    lq: np.ndarray, hq: np.ndarray, scale: int, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    if lq.shape[0] < size or lq.shape[1] < size:
        raise ImageError(f"low-quality image {lq.shape[1]}x{lq.shape[0]} is smaller than {size}")
    top = int(rng.integers(0, lq.shape[0] - size + 1))
    left = int(rng.integers(0, lq.shape[1] - size + 1))
    hq_top, hq_left, hq_size = top * scale, left * scale, size * scale
    return (
        lq[top : top + size, left : left + size],
        hq[hq_top : hq_top + hq_size, hq_left : hq_left + hq_size],
    )
