"""The U-Net discriminator with spectral normalisation (Real-ESRGAN's `UNetDiscriminatorSN`).

AdaCode trains every stage against it with a hinge loss. It predicts a realness score per pixel:
three strided convolutions down, three bilinear upsamplings back with skip connections, two extra
convolutions and a one-channel head. Spectral norm uses PyTorch's hook-based `spectral_norm`
because that is what gives the official state-dict keys (`weight_orig`, `weight_u`, `weight_v`),
so official `net_d` checkpoints load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

SLOPE = 0.2


class UNetDiscriminatorSN(nn.Module):
    """`num_feat` channels at full resolution, x2 per level down to 8 x num_feat at 1/8 size."""

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, num_feat, 3, 1, 1)
        self.conv1 = _sn_conv(num_feat, num_feat * 2, 4, 2)
        self.conv2 = _sn_conv(num_feat * 2, num_feat * 4, 4, 2)
        self.conv3 = _sn_conv(num_feat * 4, num_feat * 8, 4, 2)
        self.conv4 = _sn_conv(num_feat * 8, num_feat * 4, 3, 1)
        self.conv5 = _sn_conv(num_feat * 4, num_feat * 2, 3, 1)
        self.conv6 = _sn_conv(num_feat * 2, num_feat, 3, 1)
        self.conv7 = _sn_conv(num_feat, num_feat, 3, 1)
        self.conv8 = _sn_conv(num_feat, num_feat, 3, 1)
        self.conv9 = nn.Conv2d(num_feat, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) image, H and W multiples of 8 -> (N, 1, H, W) logits."""
        x0 = _act(self.conv0(x))
        x1 = _act(self.conv1(x0))
        x2 = _act(self.conv2(x1))
        x3 = _act(self.conv3(x2))
        x4 = _act(self.conv4(_up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = _act(self.conv5(_up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = _act(self.conv6(_up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        out = _act(self.conv7(x6))
        out = _act(self.conv8(out))
        return self.conv9(out)


def _sn_conv(in_ch: int, out_ch: int, kernel: int, stride: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(in_ch, out_ch, kernel, stride, 1, bias=False))


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, negative_slope=SLOPE)


def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
