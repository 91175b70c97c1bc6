"""Random-weight stand-ins for the torchvision VGG and LPIPS files, keyed like the originals.

The key layouts are written out here from torchvision's configs ("D" = VGG16, "E" = VGG19: the
index of every convolution in `features`) rather than taken from our modules, so the tests check
our layout against torchvision's instead of against itself.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

# (index in torchvision's `features`, input channels, output channels) of every convolution.
VGG_CONVS = {
    "vgg16": [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256),
              (12, 256, 256), (14, 256, 256), (17, 256, 512), (19, 512, 512), (21, 512, 512),
              (24, 512, 512), (26, 512, 512), (28, 512, 512)],
    "vgg19": [(0, 3, 64), (2, 64, 64), (5, 64, 128), (7, 128, 128), (10, 128, 256),
              (12, 256, 256), (14, 256, 256), (16, 256, 256), (19, 256, 512), (21, 512, 512),
              (23, 512, 512), (25, 512, 512), (28, 512, 512), (30, 512, 512), (32, 512, 512),
              (34, 512, 512)],
}
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def vgg_state(arch: str, seed: int = 0, up_to: int | None = None) -> dict[str, torch.Tensor]:
    """He-initialised `features.N.weight/bias` (convolutions with index <= up_to), plus a small
    stray classifier tensor as the real files carry the classifier."""
    generator = torch.Generator().manual_seed(seed)
    state = {}
    for index, in_ch, out_ch in VGG_CONVS[arch]:
        if up_to is not None and index > up_to:
            break
        std = (2.0 / (in_ch * 9)) ** 0.5
        weight = torch.randn(out_ch, in_ch, 3, 3, generator=generator) * std
        state[f"features.{index}.weight"] = weight
        state[f"features.{index}.bias"] = torch.zeros(out_ch)
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


def lin_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """LPIPS v0.1 `vgg.pth` layout: non-negative 1x1 weights, no bias."""
    generator = torch.Generator().manual_seed(seed)
    return {
        f"lin{i}.model.1.weight": torch.rand(1, channels, 1, 1, generator=generator) / channels
        for i, channels in enumerate(LPIPS_CHANNELS)
    }


def write(state: dict[str, torch.Tensor], path: Path) -> Path:
    """Save as .safetensors or .pth according to the suffix."""
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save(state, path)
    return path
