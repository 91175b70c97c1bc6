"""Loss formulas on hand-made tensors: hinge GAN, Gram / feature matching, semantic, contrastive."""

from __future__ import annotations

import math

import pytest
import torch

from adacode_cli.model.quantizer import gram_loss
from adacode_cli.train.losses import (
    GAN_LOSS_WEIGHT,
    ContrastiveLoss,
    feature_loss,
    hinge_d_loss,
    hinge_g_loss,
    l1_loss,
    semantic_loss,
)


def test_hinge_discriminator_loss_on_hand_made_logits() -> None:
    logits = torch.tensor([2.0, 0.5, -1.0, -3.0])
    # real: relu(1 - x) = 0, 0.5, 2, 4 -> mean 1.625; fake: relu(1 + x) = 3, 1.5, 0, 0 -> 1.125
    assert hinge_d_loss(logits, real=True).item() == pytest.approx(1.625)
    assert hinge_d_loss(logits, real=False).item() == pytest.approx(1.125)


def test_hinge_generator_loss_is_weighted_negative_mean() -> None:
    logits = torch.tensor([[2.0, 0.5], [-1.0, -3.0]])
    assert GAN_LOSS_WEIGHT == 0.1
    assert hinge_g_loss(logits).item() == pytest.approx(-0.1 * -0.375)
    assert hinge_g_loss(logits, weight=1.0).item() == pytest.approx(0.375)


def test_l1_and_semantic_losses() -> None:
    a, b = torch.zeros(1, 2, 2, 2), torch.full((1, 2, 2, 2), 3.0)
    assert l1_loss(a, b).item() == 3.0
    target = torch.ones(1, 512, 2, 2, requires_grad=True)
    head = torch.zeros(1, 512, 2, 2, requires_grad=True)
    loss = semantic_loss(head, target)
    loss.backward()
    assert loss.item() == 1.0 and target.grad is None and head.grad is not None


def test_gram_loss_by_hand() -> None:
    # One channel pair over two positions: Gram = x x^T / HW.
    x = torch.tensor([[[[1.0, 3.0]], [[2.0, 0.0]]]])  # (1, 2, 1, 2)
    gram = torch.tensor([[10.0, 2.0], [2.0, 4.0]]) / 2
    assert gram_loss(x, torch.zeros_like(x)).item() == pytest.approx((gram**2).mean().item())
    assert gram_loss(x, x, channels_last=False).item() == 0
    assert gram_loss(x.permute(0, 2, 3, 1), torch.zeros(1, 1, 2, 2)).item() == pytest.approx(
        (gram**2).mean().item())  # the quantizer's (B, H, W, C) layout


def test_feature_loss_is_quarter_mse_plus_gram_and_stops_target_gradient() -> None:
    torch.manual_seed(0)
    z = torch.randn(2, 4, 3, 3, requires_grad=True)
    z_gt = torch.randn(2, 4, 3, 3, requires_grad=True)
    loss = feature_loss(z, z_gt)
    expected = 0.25 * ((z - z_gt) ** 2).mean() + gram_loss(z, z_gt, channels_last=False)
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert z_gt.grad is None and z.grad is not None


def test_contrastive_loss_prefers_matched_pairs_for_any_batch_size() -> None:
    torch.manual_seed(0)
    loss = ContrastiveLoss()
    for batch in (1, 3, 8):
        anchors = torch.randn(batch, 16, 4, 4)
        matched = loss(anchors, anchors + 0.05 * torch.randn_like(anchors))
        shuffled = loss(anchors, torch.randn(batch, 16, 4, 4))
        assert torch.isfinite(matched) and torch.isfinite(shuffled)
        if batch > 1:
            assert matched < shuffled
    assert loss(torch.randn(4, 8), torch.randn(4, 8)).ndim == 0  # flat embeddings work too


def test_contrastive_loss_matches_the_simclr_formula() -> None:
    # Two pairs of unit vectors: the official formula written out by hand, temperature 0.5.
    emb_i = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).view(2, 2, 1, 1)
    emb_j = torch.tensor([[1.0, 0.0], [1.0, 0.0]]).view(2, 2, 1, 1)
    z = torch.cat([emb_i, emb_j]).view(4, 2)
    sim = z @ z.T
    total = 0.0
    for a, b in ((0, 2), (1, 3), (2, 0), (3, 1)):
        others = sum(math.exp(sim[a, k].item() / 0.5) for k in range(4) if k != a)
        total += -math.log(math.exp(sim[a, b].item() / 0.5) / others)
    assert ContrastiveLoss()(emb_i, emb_j).item() == pytest.approx(total / 4)
