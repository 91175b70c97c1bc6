"""Every fast path equals the plain one: SDPA vs explicit attention, cached vs fresh masks."""

from __future__ import annotations

import pytest
import torch

from adacode_cli.model import swin
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.layers import GroupNorm, NearestUpConv, ResBlock, given_statistics
from adacode_cli.model.networks import build_network
from adacode_cli.model.padding import flip_pad, padded_size, restore_whole
from adacode_cli.model.swin import Linear, SwinLayers, WindowAttention


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


def _swin_stack() -> SwinLayers:
    torch.manual_seed(0)
    layers = SwinLayers(32, 2, 2, 2, 8, 2.0).eval()
    for p in layers.parameters():
        p.data.normal_(0, 0.1)
    return layers


@pytest.mark.parametrize("chunk", [16, 256])
@pytest.mark.parametrize("channels_last", [False, True])
def test_a_chunked_swin_stack_equals_the_whole_map_at_once(chunk: int, channels_last: bool
                                                           ) -> None:
    """Inference over a map of more than one chunk runs each block a chunk of windows at a
    time, in place, and each RSTB's conv in bands of rows: 16 tokens is less than one window
    (one window per chunk, one row per band); 256 leaves a partial last chunk and bands that
    touch neither edge. Two images in the batch, 24 x 40 tokens each."""
    layers = _swin_stack()
    x = torch.randn(2, 32, 24, 40)
    if channels_last:  # the tokens are then a view of the input: it must stay untouched
        x = x.contiguous(memory_format=torch.channels_last)
    before = x.clone()
    chunks: list[int | None] = []
    for module in layers.modules():
        if isinstance(module, swin.SwinBlock):
            module.register_forward_pre_hook(lambda module, args: chunks.append(args[2]))
    with torch.inference_mode():
        whole = layers(x)
        layers.chunk_tokens = chunk
        chunked = layers(x)
    assert chunks == [None] * 4 + [chunk] * 4
    assert torch.equal(x, before)
    assert (chunked - whole).abs().max() < 1e-5
    assert chunked.is_contiguous(memory_format=torch.channels_last) == channels_last
    plain = layers(x)  # training keeps the whole-map path, whatever the chunk size
    assert chunks[-1] is None and (plain.detach() - whole).abs().max() < 1e-5


def test_chunk_windows_and_masks_are_those_of_the_rolled_map() -> None:
    """`window_tokens` gathers what rolling the map and cutting it into windows gives;
    `window_shift_mask` is the slice of the whole map's shift mask for the same windows, and
    each window's mask is that of its class (last row or column of windows or neither)."""
    h, w, window, shift = 24, 40, 8, 4
    tokens = torch.arange(h * w).view(1, h, w, 1)
    rolled = torch.roll(tokens, shifts=(-shift, -shift), dims=(1, 2))
    expected = swin.window_partition(rolled, window).reshape(-1)
    cpu = torch.device("cpu")
    assert torch.equal(swin.window_tokens(h, w, window, shift, 0, 15, cpu), expected)
    assert torch.equal(swin.window_tokens(h, w, window, shift, 4, 7, cpu),
                       expected[4 * 64 : 11 * 64])
    whole = swin.shift_mask(h, w, window, shift, cpu)
    assert whole.shape == (15, 64, 64) and set(whole.unique().tolist()) == {0.0, -100.0}
    assert torch.equal(swin.window_shift_mask(h, w, window, shift, 4, 7, cpu), whole[4:11])
    assert not whole[:4].any() and whole[4].any()  # only the last window column and row mix
    by_class = swin.class_shift_masks(window, shift, cpu)[swin.window_classes(h, w, window, cpu)]
    assert torch.equal(by_class, whole)
    for size in ((8, 40), (24, 8), (8, 8)):  # one row, one column, one window of windows
        classes = swin.window_classes(*size, window, cpu)
        assert torch.equal(swin.class_shift_masks(window, shift, cpu)[classes],
                           swin.shift_mask(*size, window, shift, cpu))


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


def _official_formulation(network: torch.nn.Module) -> None:
    _set_attention(network, "math")
    for layer in network.modules():
        if isinstance(layer, NearestUpConv):
            layer.subpixel = False


@pytest.mark.parametrize("channels_last", [False, True])
def test_subpixel_up_conv_equals_upsample_then_conv(channels_last: bool) -> None:
    torch.manual_seed(0)
    layer = NearestUpConv(16, 8)
    x = torch.randn(2, 16, 5, 7)
    if channels_last:
        layer = layer.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        fast = layer(x)
        plain = torch.nn.functional.conv2d(torch.nn.functional.interpolate(x, scale_factor=2),
                                           layer.weight, layer.bias, padding=1)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = layer(x)
    assert fast.shape == plain.shape == (2, 8, 10, 14)
    assert (fast - plain).abs().max() < 1e-5
    assert fast.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert half.dtype == torch.bfloat16 and (half.float() - plain).abs().max() < 0.05


def test_onednn_linear_equals_f_linear_and_trains_through_the_plain_path() -> None:
    torch.manual_seed(0)
    layer = Linear(32, 48)
    x = torch.randn(3, 10, 32)
    plain = torch.nn.functional.linear(x, layer.weight, layer.bias).detach()
    with torch.inference_mode():
        fast, fused = layer(x), layer(x, gelu=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = layer(x)
    assert (fast - plain).abs().max() < 1e-5
    assert (fused - torch.nn.functional.gelu(plain)).abs().max() < 1e-5
    assert half.dtype == torch.bfloat16 and (half.float() - plain).abs().max() < 0.05
    layer(x, gelu=True).sum().backward()  # oneDNN has no backward: training takes F.linear
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def _bf16_and_fp32(network: torch.nn.Module, x: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            half = restore_whole(network, x)[0].float()
        return half, restore_whole(network, x)[0]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (a.clamp(0, 1) - b.clamp(0, 1)).square().mean()))


@pytest.mark.parametrize("task", [("sr", 2), ("sr", 4), ("inpaint",)])
def test_every_fast_path_together_equals_the_official_formulation(task) -> None:
    """oneDNN linears, gathered windows, strided SDPA, sub-pixel up convs and in-place SiLU and
    residual adds against explicit attention, F.linear, rolls and upsampling: equal in fp32; in
    bf16 at most 1 dB further from fp32 than the official formulation in bf16 (measured on
    these tiny models: 0-0.7 dB, at 30-36 dB)."""
    torch.manual_seed(0)
    network = build_network(AdaCodeConfig.tiny(*task)).eval()
    x = torch.rand(2, 3, 32, 48)
    fast_half, fast = _bf16_and_fp32(network, x)
    _official_formulation(network)
    plain_half, plain = _bf16_and_fp32(network, x)
    assert (fast - plain).abs().max() < 1e-5
    assert _psnr(fast_half, plain) > _psnr(plain_half, plain) - 1.0


def test_in_place_silu_and_residual_add_keep_training_gradients() -> None:
    torch.manual_seed(0)
    block = ResBlock(32, 8, 1e-6)
    x = torch.randn(2, 32, 6, 6, requires_grad=True)
    block(x).square().sum().backward()
    fast = x.grad.clone()
    x.grad = None
    conv = block.conv
    h = conv[2](torch.nn.functional.silu(conv[0](x)))
    (conv[5](torch.nn.functional.silu(conv[3](h))) + x).square().sum().backward()
    assert torch.allclose(fast, x.grad, atol=1e-6)
