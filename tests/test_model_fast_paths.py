"""Every fast path equals the plain one: SDPA vs explicit attention, cached vs fresh masks."""

from __future__ import annotations

import pytest
import torch

from adacode_cli.model import swin
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.layers import GroupNorm, given_statistics
from adacode_cli.model.networks import build_network
from adacode_cli.model.padding import flip_pad, padded_size, restore_whole
from adacode_cli.model.swin import SwinLayers, WindowAttention


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


def test_inference_keeps_only_the_small_position_bias_cached() -> None:
    """The (windows x heads x N x N) attention mask is as large as the scores: it must not outlive
    the forward, or memory after a large image stays tens of KB per latent pixel higher."""
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.tiny("sr", 2)).eval()
    with torch.inference_mode():
        restore_whole(network, torch.rand(1, 3, 96, 96))
    for module in network.modules():
        if isinstance(module, WindowAttention):
            with torch.inference_mode():  # a cache hit: nothing is built
                cached = module._bias_cache.get((module.relative_position_bias_table,),
                                                torch.float32, lambda: torch.empty(0))
            assert tuple(cached.shape) == (module.heads, 64, 64)


def test_a_network_built_on_the_meta_device_does_not_leak_into_later_ones() -> None:
    swin._relative_position_index.cache_clear()  # the meta build must be the first to fill it
    with torch.device("meta"):
        build_network(AdaCodeConfig.tiny("sr", 4))
    network = build_network(AdaCodeConfig.tiny("sr", 4)).eval()
    assert all(b.device.type == "cpu" for b in network.buffers())
    with torch.inference_mode():
        assert restore_whole(network, torch.rand(1, 3, 20, 20))[0].shape == (1, 3, 80, 80)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("channels_last", [False, True])
def test_group_norm_with_given_statistics_equals_the_plain_norm(
    channels_last: bool, dtype: torch.dtype
) -> None:
    """Image-wide statistics (here those of the whole batch, as the engine hands them to every
    tile) give the norm of the whole, keep the memory layout and the 16-bit dtype."""
    torch.manual_seed(0)
    norm = GroupNorm(64, 32, 1e-6)
    norm.weight.data.normal_(1, 0.2)
    norm.bias.data.normal_(0, 0.2)
    x = torch.randn(2, 64, 12, 10) * 3 + 5
    var, mean = torch.var_mean(x.transpose(0, 1).reshape(32, -1), dim=-1, correction=0)
    whole = norm(x.transpose(0, 1).reshape(1, 64, 24, 10)).reshape(64, 2, 12, 10).transpose(0, 1)
    x = x.to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        with given_statistics({norm: (mean, var)}):
            given = norm(x)
        with given_statistics({}):
            own = norm(x)
    assert given.dtype == own.dtype == dtype
    assert (given.float() - whole).abs().max() < (1e-5 if dtype == torch.float32 else 0.05)
    assert given.is_contiguous(memory_format=torch.channels_last) == channels_last
    with torch.no_grad():
        assert torch.equal(own, norm(x))


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
