"""Vector quantizer: nearest codebook entry per latent pixel, with the VQ-VAE losses."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


def gram_loss(x: torch.Tensor, y: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """Mean squared difference of the (C x C) Gram matrices of two (B, H, W, C) maps (or
    (B, C, H, W) ones with `channels_last=False`), each normalised by H*W: AdaCode's texture
    term, no 1/C unlike basicsr's style loss. The quantizer's stage-3 index supervision and the
    training's feature loss both use it."""
    if not channels_last:
        x, y = x.permute(0, 2, 3, 1), y.permute(0, 2, 3, 1)
    b, h, w, c = x.shape
    x = x.reshape(b, h * w, c)
    y = y.reshape(b, h * w, c)
    gram_x = x.transpose(1, 2) @ x / (h * w)
    gram_y = y.transpose(1, 2) @ y / (h * w)
    return (gram_x - gram_y).square().mean()


@dataclass
class QuantizerOutput:
    quantized: torch.Tensor  # (B, C, H, W), straight-through
    loss: torch.Tensor  # codebook + commitment (or index-supervision) loss
    indices: torch.Tensor  # (B, 1, H, W) int64


class VectorQuantizer(nn.Module):
    """Codebook of `size` entries of `dim` channels.

    Distances and the argmin always run in fp32, also inside reduced-precision inference: a
    half-precision distance flips near-ties and picks visibly wrong codes.
    """

    def __init__(self, size: int, dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.size, self.dim, self.beta = size, dim, beta
        self.embedding = nn.Embedding(size, dim)
        nn.init.uniform_(self.embedding.weight, -1.0 / size, 1.0 / size)

    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest entry for each row of (M, dim) `flat`, computed in fp32."""
        flat = flat.float()
        codebook = self.embedding.weight.float()
        distance = (
            flat.square().sum(dim=1, keepdim=True)
            + codebook.square().sum(dim=1)
            - 2 * flat @ codebook.t()
        )
        return distance.argmin(dim=1)

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W) indices -> (B, dim, H, W) codebook entries."""
        b, _, h, w = indices.shape
        entries = self.embedding.weight[indices.reshape(-1)]
        return entries.view(b, h, w, self.dim).permute(0, 3, 1, 2).contiguous()

    def forward(
        self, z: torch.Tensor, target_indices: torch.Tensor | None = None
    ) -> QuantizerOutput:
        """Quantize (B, C, H, W) `z`; stage-3 `target_indices` are the teacher's codes."""
        z = z.permute(0, 2, 3, 1).contiguous()
        indices = self.nearest(z.view(-1, self.dim))
        z_q = self.embedding.weight[indices].view(z.shape).to(z.dtype)
        if target_indices is not None:
            z_target = self.embedding.weight[target_indices.reshape(-1)].view(z.shape).detach()
            loss = self.beta * (z_target - z).square().mean() + gram_loss(z, z_target)
        else:
            codebook = (z_q - z.detach()).square().mean()
            loss = codebook + self.beta * (z_q.detach() - z).square().mean()
        z_q = z + (z_q - z).detach()
        b, h, w, _ = z.shape
        return QuantizerOutput(
            z_q.permute(0, 3, 1, 2).contiguous(), loss, indices.view(b, 1, h, w)
        )
