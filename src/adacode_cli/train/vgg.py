"""VGG16 / VGG19 feature extractors that load the original torchvision weight files.

AdaCode's stage-1 semantic loss compares codebook features with VGG19 relu4_4 activations (inputs
normalised with the ImageNet mean and std), and LPIPS measures distances between VGG16 activations.
The module keeps torchvision's layout (`features.N.weight`, `features.N.bias`) so the published
`vgg19-dcbb9e9d.pth` / `vgg16-397923af.pth` load as they are, and keeps only the layers up to the
deepest one asked for, as the official extractor does. There is no way to build one without
weights: a perceptual loss on random features would train silently towards nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from adacode_cli.train.state_files import load_strict

VggArch = Literal["vgg16", "vgg19"]
# Convolutions per block; every block ends with a 2x2 max-pool (torchvision configs "D" and "E").
_BLOCKS: dict[str, tuple[int, ...]] = {"vgg16": (2, 2, 3, 3, 3), "vgg19": (2, 2, 4, 4, 4)}
_CHANNELS = (64, 128, 256, 512, 512)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def layer_names(arch: VggArch) -> list[str]:
    """Names of the entries of torchvision's `features`, in order: conv1_1, relu1_1, ... pool5."""
    names = []
    for block, convs in enumerate(_BLOCKS[arch], start=1):
        for conv in range(1, convs + 1):
            names += [f"conv{block}_{conv}", f"relu{block}_{conv}"]
        names.append(f"pool{block}")
    return names


def _build_features(arch: VggArch, count: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    in_ch = 3
    for name in layer_names(arch)[:count]:
        if name.startswith("conv"):
            out_ch = _CHANNELS[int(name[4]) - 1]
            layers.append(nn.Conv2d(in_ch, out_ch, 3, padding=1))
            in_ch = out_ch
        elif name.startswith("relu"):
            layers.append(nn.ReLU())
        else:
            layers.append(nn.MaxPool2d(2, 2))
    return nn.Sequential(*layers)


class VGGFeatures(nn.Module):
    """Frozen VGG returning the activations named in `layers` (e.g. "relu4_4") as a dict.

    `imagenet_norm` expects [0, 1] RGB input and normalises it with the ImageNet statistics, as
    basicsr's `VGGFeatureExtractor(use_input_norm=True)`; LPIPS turns it off and scales itself.
    """

    def __init__(
        self,
        arch: VggArch,
        layers: Sequence[str],
        weights_path: Path,
        *,
        imagenet_norm: bool = True,
    ):
        super().__init__()
        names = layer_names(arch)
        unknown = [layer for layer in layers if layer not in names]
        if unknown or not layers:
            raise ValueError(f"{arch} has no layer {unknown[0] if unknown else '(none given)'!r}")
        self.layers = tuple(layers)
        self.names = names[: max(names.index(layer) for layer in layers) + 1]
        self.features = _build_features(arch, len(self.names))
        self.imagenet_norm = imagenet_norm
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        deeper = [f"features.{i}." for i in range(len(self.names), len(names))]
        load_strict(self.features, weights_path, prefix="features.",
                    allowed_extra=[*deeper, "classifier."])
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, H, W) RGB -> {layer name: activation}."""
        if self.imagenet_norm:
            x = (x - self.mean) / self.std
        out = {}
        for name, layer in zip(self.names, self.features, strict=True):
            x = layer(x)
            if name in self.layers:
                out[name] = x
        return out
