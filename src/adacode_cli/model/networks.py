"""The AdaCode networks of all three training stages, with the official state-dict key names.

- stage 1 ("vqgan"): HQ encoder, one vector quantizer, decoder, and the semantic head;
- stage 2 ("recon"): HQ encoder, N basis codebooks with their own before/after-quant convs, a Swin
  weight predictor giving an N-channel weight map at latent resolution, their weighted sum, decoder;
- stage 3 ("restore"): the LQ encoder (down blocks, Swin layers, up blocks with residual links
  into the decoder) in front of the stage-2 codebooks and decoder; scale 2/4 (SR) or 1 (inpaint).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.layers import DecoderBlock, down_block, up_block
from adacode_cli.model.quantizer import VectorQuantizer
from adacode_cli.model.swin import SwinLayers


@dataclass
class NetworkOutput:
    """Everything the forward pass produces; inference reads `image` and `weight`."""

    image: torch.Tensor
    weight: torch.Tensor | None  # (B, N, h, w) codebook weights at latent resolution
    indices: list[torch.Tensor]  # per codebook (B, 1, h, w)
    codebook_loss: torch.Tensor
    latent: torch.Tensor  # encoder features before quantization
    fused: torch.Tensor  # quantized features entering the decoder
    semantic: torch.Tensor | None = None  # stage-1 semantic head output


@dataclass
class Codes:
    """What `quantize_and_fuse` gives: the decoder's input and how it was made."""

    fused: torch.Tensor
    weight: torch.Tensor | None  # (B, N, h, w) codebook weights (None for stage 1)
    indices: list[torch.Tensor]
    losses: list[torch.Tensor]
    semantic: torch.Tensor | None = None


def _swin(config: AdaCodeConfig) -> SwinLayers:
    return SwinLayers(
        config.channels[0], config.swin_layers, config.swin_depth, config.swin_heads,
        config.window_size, config.mlp_ratio,
    )


class MultiScaleEncoder(nn.Module):
    """Image -> features; the LQ variant ends in Swin layers and up blocks for the decoder links."""

    def __init__(self, config: AdaCodeConfig) -> None:
        super().__init__()
        ch, groups, eps = config.channels, config.norm_groups, config.norm_eps
        top = config.input_levels
        # kernel 4 / padding 1 shrinks the image by one pixel; the stride-2 conv then lands on H/2
        self.in_conv = nn.Conv2d(config.in_channels, ch[top], 4, padding=1)
        blocks: list[nn.Module] = [
            down_block(ch[level], ch[level - 1], groups, eps) for level in range(top, 0, -1)
        ]
        self.outputs = 1
        if config.stage == "restore":
            self.outputs = config.levels
            blocks.append(_swin(config))
            blocks += [up_block(ch[i], ch[i + 1], groups, eps) for i in range(config.levels - 1)]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Features the decoder consumes, latent first (the LQ encoder adds one per up block)."""
        features = []
        x = self.in_conv(x)
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features[-self.outputs :]


class WeightPredictor(nn.Module):
    """Swin layers then a 1x1 conv: per-pixel weights of the N basis codebooks."""

    def __init__(self, config: AdaCodeConfig) -> None:
        super().__init__()
        blocks: list[nn.Module] = [
            _swin(config), nn.Conv2d(config.channels[0], config.num_codebooks, 1)
        ]
        if config.weight_softmax:
            blocks.append(nn.Softmax(dim=1))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x


class CombineQuant(nn.Module):
    """Stage-1 after-quant conv (official `after_quant_group.0.conv`)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class AdaCodeNet(nn.Module):
    """One AdaCode network of any stage, configured by `AdaCodeConfig`."""

    def __init__(self, config: AdaCodeConfig) -> None:
        super().__init__()
        self.config = config
        ch, groups, eps = config.channels, config.norm_groups, config.norm_eps
        self.multiscale_encoder = MultiScaleEncoder(config)
        self.decoder_group = nn.ModuleList(
            DecoderBlock(ch[i], ch[i + 1], groups, eps) for i in range(config.levels)
        )
        self.out_conv = nn.Conv2d(ch[-1], 3, 3, padding=1)
        self.quantize_group = nn.ModuleList(
            VectorQuantizer(size, dim)
            for size, dim in zip(config.codebook_sizes, config.codebook_dims, strict=True)
        )
        self.before_quant_group = nn.ModuleList(
            nn.Conv2d(ch[0], dim, 1) for dim in config.codebook_dims
        )
        if config.stage == "vqgan":
            self.after_quant_group = nn.ModuleList([CombineQuant(config.codebook_dims[0], ch[0])])
            self.conv_semantic = nn.Sequential(
                nn.Conv2d(config.codebook_dims[0], config.semantic_channels, 1), nn.ReLU()
            )
        else:
            self.after_quant_group = nn.ModuleList(
                nn.Conv2d(dim, ch[0], 3, padding=1) for dim in config.codebook_dims
            )
            self.weight_predictor = WeightPredictor(config)

    def forward(
        self, x: torch.Tensor, target_indices: list[torch.Tensor] | None = None
    ) -> NetworkOutput:
        """Run the network on an input whose sides are multiples of `config.pad_multiple`:
        `encode`, `quantize_and_fuse`, `decode` (the engine's step graph calls the same stages).

        `target_indices` (stage 3 training) are the teacher's code indices per codebook: the
        quantizer loss then supervises the LQ features with them.
        """
        features = self.encode(x)
        codes = self.quantize_and_fuse(features[0], target_indices)
        return NetworkOutput(
            image=self.decode(codes.fused, features),
            weight=codes.weight,
            indices=codes.indices,
            codebook_loss=sum(codes.losses[1:], codes.losses[0]),
            latent=features[0],
            fused=codes.fused,
            semantic=codes.semantic,
        )

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Image -> the features the decoder consumes, latent first."""
        return self.multiscale_encoder(x)

    def quantize_and_fuse(
        self, latent: torch.Tensor, target_indices: list[torch.Tensor] | None = None,
        weight: torch.Tensor | None = None,
    ) -> Codes:
        """Look the latent up in every codebook and fuse the results with the per-pixel
        codebook weights (stage 1: its one codebook): `weight`, where already predicted
        (`weight_predictor(latent)`; the engine predicts it over a whole image's latent and
        fuses per tile), else predicted here."""
        indices, losses, after = [], [], []
        semantic = None
        for k, (before, quantizer, after_conv) in enumerate(
            zip(self.before_quant_group, self.quantize_group, self.after_quant_group, strict=True)
        ):
            target = None if target_indices is None else target_indices[k]
            quant = quantizer(before(latent), target)
            if self.config.stage == "vqgan":
                semantic = self.conv_semantic(quant.quantized)
            after.append(after_conv(quant.quantized))
            indices.append(quant.indices)
            losses.append(quant.loss)
        if self.config.stage == "vqgan":
            return Codes(after[0], None, indices, losses, semantic)
        if weight is None:
            weight = self.weight_predictor(latent)
        fused = torch.sum(torch.stack(after).transpose(0, 1) * weight.unsqueeze(2), dim=1)
        return Codes(fused, weight, indices, losses)

    def skips_into(self, level: int) -> bool:
        """Whether decoder `level` adds encoder feature `level` to its input (stage 3)."""
        return level > 0 and self.config.stage == "restore" and self.config.use_residual

    def decode(self, fused: torch.Tensor, features: list[torch.Tensor]) -> torch.Tensor:
        """Fused codes (and the encoder's skip features) -> image."""
        h = fused
        for level, decoder in enumerate(self.decoder_group):
            if self.skips_into(level):
                h = h + features[level]
            h = decoder(h)
        return self.out_conv(h)


def build_network(config: AdaCodeConfig) -> AdaCodeNet:
    """A freshly initialised network for `config` (weights are loaded by `checkpoint`)."""
    return AdaCodeNet(config)


def count_parameters(network: nn.Module) -> int:
    return sum(p.numel() for p in network.parameters())
