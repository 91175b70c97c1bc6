"""Pictures of AdaCode's per-codebook weight maps, as in the paper's figures.

The network mixes N codebooks with per-position weights (N x h x w, at latent resolution). The
blend view paints each position with the codebooks' colours mixed by their share of the weight;
the tiled view shows each codebook's share as its own grey-scale panel.
"""

from __future__ import annotations

import colorsys

import numpy as np

from adacode_cli.images.resize import resize_nearest

# Distinct colours for the first codebooks (Tableau 10); more are spread around the hue circle.
_BASE_COLOURS = np.array(
    [
        (31, 119, 180),
        (255, 127, 14),
        (44, 160, 44),
        (214, 39, 40),
        (148, 103, 189),
        (140, 86, 75),
        (227, 119, 194),
        (127, 127, 127),
        (188, 189, 34),
        (23, 190, 207),
    ],
    dtype=np.uint8,
)
_GOLDEN_ANGLE = 0.381966  # fraction of a turn between successive extra hues
SEPARATOR = (0, 0, 0)  # columns between tiles


def codebook_colours(count: int) -> np.ndarray:
    """`count` x 3 uint8: the fixed colour of each codebook, the same for every image."""
    extra = [
        tuple(round(255 * v) for v in colorsys.hsv_to_rgb((k * _GOLDEN_ANGLE) % 1.0, 0.65, 0.9))
        for k in range(max(0, count - len(_BASE_COLOURS)))
    ]
    return np.concatenate([_BASE_COLOURS, np.array(extra, dtype=np.uint8).reshape(-1, 3)])[:count]


def weight_shares(weights: np.ndarray) -> np.ndarray:
    """N x h x w: each codebook's share of |weight| at each position (summing to 1, or all 0
    where every weight is 0)."""
    if weights.ndim != 3:
        raise ValueError(f"expected an N x h x w weight map, got shape {weights.shape}")
    magnitude = np.abs(weights.astype(np.float64))
    total = magnitude.sum(axis=0, keepdims=True)
    return np.divide(magnitude, total, out=np.zeros_like(magnitude), where=total > 0)


def colorize_weight_map(weights: np.ndarray) -> np.ndarray:
    """h x w x 3 uint8: codebook colours blended by each position's weight shares; a position
    whose weight is all on codebook k gets exactly colour k."""
    shares = weight_shares(weights)
    colours = codebook_colours(shares.shape[0]).astype(np.float64)
    blended = np.tensordot(shares, colours, axes=([0], [0]))
    return np.clip(np.rint(blended), 0, 255).astype(np.uint8)


def tile_weight_maps(
    weights: np.ndarray, *, panel_shape: tuple[int, int] | None = None, gap: int = 2
) -> np.ndarray:
    """Each codebook's weight share as a grey panel (white = all weight on it), left to right in
    codebook order with `gap` black columns between: H x (N*W + (N-1)*gap) x 3 uint8.

    Panels are h x w, or `panel_shape` (height, width) upsampled by nearest neighbour.
    """
    shares = weight_shares(weights)
    grey = np.rint(shares * 255).astype(np.uint8)
    if panel_shape is not None:
        grey = np.stack([resize_nearest(panel, panel_shape) for panel in grey])
    count, height, width = grey.shape
    out = np.empty((height, count * width + (count - 1) * gap, 3), dtype=np.uint8)
    out[:] = SEPARATOR
    for k in range(count):
        start = k * (width + gap)
        out[:, start : start + width] = grey[k][..., None]
    return out


def weight_map_image(
    weights: np.ndarray, shape: tuple[int, int], *, tiled: bool = False
) -> np.ndarray:
    """The blended (or tiled) picture of `weights` at `shape` (height, width; one panel's size
    when tiled), upsampled by nearest neighbour so each latent position stays a crisp block
    over the output pixels it governs."""
    if tiled:
        return tile_weight_maps(weights, panel_shape=shape)
    return resize_nearest(colorize_weight_map(weights), shape)
