"""The official inference padding: mirror-pad to the next multiple, run, crop back."""

from __future__ import annotations

import torch

from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import AdaCodeNet


def padded_size(size: int, multiple: int) -> int:
    """The official rule `(size // multiple + 1) * multiple` (always pads, even on a multiple)."""
    return (size // multiple + 1) * multiple


def flip_pad(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Extend (B, C, H, W) `x` at the bottom/right with its mirror image, as the official `test()`.

    The official code mirrors once; an image smaller than its padding (a 1x1 input) would come out
    too small there, so we keep mirroring until the size is reached. For every size the official
    code handles, the result is identical.
    """
    for dim in (2, 3):
        target = padded_size(x.shape[dim], multiple)
        while x.shape[dim] < target:
            x = torch.cat([x, torch.flip(x, [dim])], dim)
        x = x.narrow(dim, 0, target)
    return x


def restore_whole(network: AdaCodeNet, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Restore a whole (B, 3, H, W) image in [0, 1]: the official `test()` path.

    Returns the unclamped output (B, 3, H*scale, W*scale) and the codebook weight map at latent
    resolution, cropped to the cells that cover the image (None for a stage-1 VQGAN).
    """
    h, w = x.shape[-2:]
    result = network(flip_pad(x, network.config.pad_multiple))
    return crop_output(network.config, h, w, result.image, result.weight)


def crop_output(
    config: AdaCodeConfig, height: int, width: int, image: torch.Tensor,
    weight: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Crop the output of a padded input back to the (height, width) input before padding: the
    image exactly, the latent weight map to the cells that cover the input."""
    image = image[..., : height * config.scale, : width * config.scale]
    if weight is not None:
        factor = config.latent_factor
        weight = weight[..., : -(-height // factor), : -(-width // factor)]
    return image, weight
