"""Every fast path equals the plain one: SDPA vs explicit attention, cached vs fresh masks."""

from __future__ import annotations

import pytest
import torch

from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import build_network
from adacode_cli.model.padding import flip_pad, padded_size, restore_whole
from adacode_cli.model.swin import SwinLayers


def _set_attention(module: torch.nn.Module, mode: str) -> None:
    for layer in module.modules():
        if isinstance(layer, SwinLayers):
            layer.set_attention(mode)


@pytest.mark.parametrize("size", [(8, 8), (16, 24), (32, 32)])
def test_sdpa_equals_math_attention_full_width(size) -> None:
    torch.manual_seed(0)
    layers = SwinLayers(256, 1, 2, 8, 8, 4.0).eval()
    for p in layers.parameters():
        p.data.normal_(0, 0.05)
    x = torch.randn(2, 256, *size)
    with torch.inference_mode():
        fast = layers(x)
        layers.set_attention("math")
        plain = layers(x)
    assert (fast - plain).abs().max() < 2e-5


def test_network_fast_equals_plain_and_grad_path_matches() -> None:
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.tiny("sr", 2)).eval()
    x = torch.rand(1, 3, 24, 40)
    with torch.inference_mode():
        fast = restore_whole(network, x)[0]
        fast_again = restore_whole(network, x)[0]
    grad_path = restore_whole(network, x)[0].detach()  # no mask cache while autograd records
    _set_attention(network, "math")
    with torch.inference_mode():
        plain = restore_whole(network, x)[0]
    assert torch.equal(fast, fast_again)
    assert (fast - plain).abs().max() < 1e-5
    assert (fast - grad_path).abs().max() < 1e-5


def test_mask_cache_follows_weight_updates() -> None:
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.tiny("inpaint")).eval()
    x = torch.rand(1, 3, 32, 32)
    with torch.inference_mode():
        before = restore_whole(network, x)[0]
    with torch.no_grad():
        for name, p in network.named_parameters():
            if name.endswith("relative_position_bias_table"):
                p.add_(1.0)
    with torch.inference_mode():
        after = restore_whole(network, x)[0]
    _set_attention(network, "math")
    with torch.inference_mode():
        reference = restore_whole(network, x)[0]
    assert not torch.equal(before, after)
    assert (after - reference).abs().max() < 1e-5


@pytest.mark.parametrize(
    ("size", "multiple", "expected"), [(40, 32, 64), (64, 32, 96), (1, 64, 64)]
)
def test_official_padding_rule(size, multiple, expected) -> None:
    assert padded_size(size, multiple) == expected
    x = torch.arange(size, dtype=torch.float32).view(1, 1, size, 1).expand(1, 1, size, 3)
    padded = flip_pad(x, multiple)
    assert padded.shape[-2:] == (expected, multiple)
    assert torch.equal(padded[..., :size, :3], x)
    column = padded[0, 0, :, 0]
    if expected - size <= size:  # the official single mirror
        assert torch.equal(column[size:], x[0, 0, :, 0].flip(0)[: expected - size])
    else:  # mirrored again until the size is reached
        assert set(column.tolist()) == set(x[0, 0, :, 0].tolist())
