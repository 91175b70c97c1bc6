"""The training losses of AdaCode's three stages, with the official weights and formulas.

Pixel L1 and LPIPS (VGG16) on the output image, a hinge GAN loss against the U-Net discriminator,
the stage-1 semantic loss (a 1x1-conv head regressing VGG19 relu4_4 features), and in stage 3 the
feature-matching loss (MSE + the model's Gram loss) and the contrastive loss between LQ and HQ
encoder features. The codebook/commitment loss lives inside the model's quantiser. Which terms a
stage uses, with which config key and weight, is declared in `train.loss_terms`.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from adacode_cli.model.quantizer import gram_loss
from adacode_cli.train.loss_terms import GAN_LOSS_WEIGHT
from adacode_cli.train.state_files import load_strict
from adacode_cli.train.vgg import VGGFeatures

CONTRAST_TEMPERATURE = 0.5
LPIPS_LAYERS = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
_LPIPS_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS v0.1 input scaling: maps ImageNet-normalised statistics onto [-1, 1] input.
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error (basicsr L1Loss, reduction 'mean', weight 1)."""
    return F.l1_loss(pred, target)


class _LinLayer(nn.Module):
    """LPIPS's per-layer 1x1 weighting. Slot 0 held the Dropout used while LPIPS itself was
    trained; it is the identity at evaluation, and keeping the slot keeps the key `model.1`."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 with VGG16 (what pyiqa's 'lpips-vgg' computes), inputs RGB in [0, 1].

    Both weight files are required: torchvision's VGG16 (`features.N.*`) and the LPIPS linear
    layers (`lin0.model.1.weight` .. `lin4.model.1.weight`, the original `vgg.pth`).
    """

    def __init__(self, vgg16_weights: Path, lin_weights: Path):
        super().__init__()
        self.net = VGGFeatures("vgg16", LPIPS_LAYERS, vgg16_weights, imagenet_norm=False)
        self.lin0, self.lin1, self.lin2, self.lin3, self.lin4 = (
            _LinLayer(channels) for channels in _LPIPS_CHANNELS
        )
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        lins = nn.ModuleDict({f"lin{i}": getattr(self, f"lin{i}") for i in range(5)})
        load_strict(lins, lin_weights)
        self.requires_grad_(False)
        self.eval()

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-image distance, shape (N,); 0 for identical images. Use `.mean()` as the loss."""
        feats_x = self.net(self._scaled(x))
        feats_y = self.net(self._scaled(y))
        total = x.new_zeros(x.shape[0])
        for index, name in enumerate(LPIPS_LAYERS):
            diff = (_unit_channels(feats_x[name]) - _unit_channels(feats_y[name])) ** 2
            total = total + getattr(self, f"lin{index}")(diff).mean(dim=(1, 2, 3))
        return total

    def _scaled(self, image: torch.Tensor) -> torch.Tensor:
        return (image * 2 - 1 - self.shift) / self.scale


def _unit_channels(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Divide each spatial feature vector by its L2 norm over channels (LPIPS normalize_tensor)."""
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def hinge_d_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Discriminator side: mean(relu(1 - D(real))) or mean(relu(1 + D(fake))), weight 1."""
    return F.relu(1 - logits).mean() if real else F.relu(1 + logits).mean()


def hinge_g_loss(fake_logits: torch.Tensor, weight: float = GAN_LOSS_WEIGHT) -> torch.Tensor:
    """Generator side: -weight * mean(D(fake)); basicsr applies loss_weight here only."""
    return -fake_logits.mean() * weight


def semantic_loss(head_out: torch.Tensor, vgg_feat: torch.Tensor) -> torch.Tensor:
    """MSE between the semantic head's output and (detached) VGG19 relu4_4 features; the
    training loop multiplies by SEMANTIC_LOSS_WEIGHT as the official stage options do."""
    return F.mse_loss(head_out, vgg_feat.detach())


def feature_loss(z: torch.Tensor, z_gt: torch.Tensor) -> torch.Tensor:
    """Stage-3 feature matching (`AdaCodeSRNet_Contrast.feature_loss`): 0.25 MSE + Gram loss of
    two (N, C, H, W) maps, pulling LQ features towards the frozen HQ network's features."""
    target = z_gt.detach()
    return 0.25 * (target - z).square().mean() + gram_loss(z, target, channels_last=False)


class ContrastiveLoss(nn.Module):
    """SimCLR NT-Xent between two batches of feature maps; pairs share a batch index.

    Features are L2-normalised over channels at each position; similarity is the spatial mean of
    the per-position cosine similarity. Each sample's positive is its partner, its negatives all
    other 2N-2 samples. Works for any batch size (the official fixes it at construction).
    """

    def __init__(self, temperature: float = CONTRAST_TEMPERATURE):
        super().__init__()
        self.temperature = temperature

    def forward(self, emb_i: torch.Tensor, emb_j: torch.Tensor) -> torch.Tensor:
        """(N, C, ...) and (N, C, ...) -> scalar loss, averaged over the 2N anchors."""
        batch = emb_i.shape[0]
        pairs = torch.cat([emb_i, emb_j])
        z = F.normalize(pairs.reshape(pairs.shape[0], pairs.shape[1], -1), dim=1)
        similarity = torch.einsum("acl,bcl->ab", z, z) / z.shape[2]
        logits = similarity / self.temperature
        self_mask = torch.eye(2 * batch, dtype=torch.bool, device=z.device)
        logits = logits.masked_fill(self_mask, float("-inf"))
        partner = torch.arange(2 * batch, device=z.device).roll(batch)
        return F.cross_entropy(logits, partner)
