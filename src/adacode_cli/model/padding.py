"""The official inference padding: mirror-pad to the next multiple, run, crop back."""

from __future__ import annotations

import torch

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
    config = network.config
    h, w = x.shape[-2:]
    result = network(flip_pad(x, config.pad_multiple))
    image = result.image[..., : h * config.scale, : w * config.scale]
    weight = result.weight
    if weight is not None:
        factor = config.latent_factor
        weight = weight[..., : -(-h // factor), : -(-w // factor)]
    return image, weight
