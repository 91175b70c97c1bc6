"""Swin transformer layers (SwinIR's RSTB) used by the weight predictor and the LQ encoder.

Window attention runs through `scaled_dot_product_attention` with the relative-position bias and
the shifted-window mask folded into one additive mask. The shift masks are cached per feature
size, and the (heads, N, N) bias is cached while no gradient is needed (inference), keyed by the
bias table's version so a weight load invalidates it. Their sum, (windows x heads x N x N), is as
large as the attention scores themselves, so it is built per call and freed with them rather than
kept: cached, it held about 49 KB per latent pixel after a forward. The linear layers run in
oneDNN at inference on the CPU (`Linear`), with the MLP's GELU fused into its first layer.
`set_attention("math")` keeps the plain formulation of the paper's code (explicit attention,
`F.linear`), used by the tests to prove the fast path equal and by the benchmarks' reference.

At inference over a map of more than `chunk_tokens(device type)` tokens (the engine runs the Swin
stacks once over a whole image's latent), each block runs a chunk of windows at a time, its
attention and MLP together, and writes the chunk's result back into the map; each RSTB's conv
runs in bands of rows and adds into the map. A stack then holds three latent-sized tensors (its
input, the RSTB's residual and the blocks' map) and one chunk's temporaries, where the whole map
at once held some twenty (qkv, scores, masks, the MLP's hidden layer). Training, small maps and
the "math" formulation run the whole map at once.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from adacode_cli.model.layers import DerivedTensor, residual_add

SHIFT_MASK_VALUE = -100.0  # the official code uses -100, not -inf; keep it for identical softmax
# tokens per chunk of a large map at inference, per device type: on the CPU a chunk's
# temporaries (qkv, scores, the MLP's hidden layer) are then tens of MB at the official width,
# and the chunked blocks measured 1.10x faster (cache); on an accelerator each chunk costs a
# dozen kernel launches per block, so chunks are 16x larger there (a 1024 px image at x4: 4
# chunks per block, not 64; its temporaries some hundreds of MB)
CHUNK_TOKENS = 4096
ACCELERATOR_CHUNK_TOKENS = 16 * CHUNK_TOKENS


def chunk_tokens(device_type: str) -> int:
    """Tokens per chunk of a Swin block over a large map on a `device_type` device."""
    return CHUNK_TOKENS if device_type == "cpu" else ACCELERATOR_CHUNK_TOKENS


def window_partition(x: torch.Tensor, window: int) -> torch.Tensor:
    """(B, H, W, C) -> (B * windows, window * window, C), windows in row-major order."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def window_reverse(windows: torch.Tensor, window: int, h: int, w: int) -> torch.Tensor:
    """Inverse of `window_partition`: (B * windows, window * window, C) -> (B, H, W, C)."""
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // window) * (w // window))
    x = windows.view(b, h // window, w // window, window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


@lru_cache(maxsize=8)
def _relative_position_index(window: int) -> torch.Tensor:
    """Built on the CPU whatever the default device: a cached meta or CUDA tensor would leak
    into every network built later."""
    axis = torch.arange(window, device="cpu")
    coords = torch.stack(torch.meshgrid(axis, axis, indexing="ij")).flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)
    return relative[:, :, 0] * (2 * window - 1) + relative[:, :, 1]


def _window_positions(w: int, window: int, first: int, count: int, device: torch.device
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """(count, N) rows and columns, in the rolled map, of the tokens of windows `first` ..
    `first + count - 1` (row-major windows of a map `w` wide, tokens in `window_partition`'s
    order)."""
    n = torch.arange(window * window, device=device)
    index = torch.arange(first, first + count, device=device)[:, None]
    per_row = w // window
    return (index // per_row) * window + n // window, (index % per_row) * window + n % window


def window_tokens(h: int, w: int, window: int, shift: int, first: int, count: int,
                  device: torch.device) -> torch.Tensor:
    """Row indices into an (h * w, C) token map of the tokens of windows `first` ..
    `first + count - 1` of the map rolled by -`shift`, as `window_partition` lays them out."""
    rows, cols = _window_positions(w, window, first, count, device)
    return (((rows + shift) % h) * w + (cols + shift) % w).reshape(-1)


def window_shift_mask(h: int, w: int, window: int, shift: int, first: int, count: int,
                      device: torch.device) -> torch.Tensor:
    """Additive mask (count, N, N) of windows `first` .. `first + count - 1` that stops tokens
    from attending across a cyclic-shift seam: the rolled map's last `window` rows (columns)
    hold two regions, split `shift` from its edge."""
    rows, cols = _window_positions(w, window, first, count, device)

    def band(position: torch.Tensor, size: int) -> torch.Tensor:
        return (position >= size - window).long() + (position >= size - shift).long()

    region = band(rows, h) * 3 + band(cols, w)
    diff = region[:, None, :] - region[:, :, None]
    return torch.zeros(diff.shape, device=device).masked_fill(diff != 0, SHIFT_MASK_VALUE)


def window_classes(h: int, w: int, window: int, device: torch.device) -> torch.Tensor:
    """Per window of an (h, w) map: 2 if it is in the last row of windows, plus 1 if in the
    last column. A window's shift mask depends on nothing else (`class_shift_masks`)."""
    rows, per_row = h // window, w // window
    index = torch.arange(rows * per_row, device=device)
    return (index // per_row == rows - 1).long() * 2 + (index % per_row == per_row - 1).long()


def class_shift_masks(window: int, shift: int, device: torch.device) -> torch.Tensor:
    """(4, N, N): the shift mask of a window of each `window_classes` class, those of the
    four windows of a 2 x 2-window map."""
    return window_shift_mask(2 * window, 2 * window, window, shift, 0, 4, device)


@lru_cache(maxsize=32)
def window_order(batch: int, h: int, w: int, window: int, shift: int, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices into a (batch * h * w, C) token map: gathering `order` gives the windows of
    the map rolled by -`shift` as `window_partition` lays them out; gathering `inverse` from
    the windows gives the map back, rolled back. Built as normal tensors even inside inference
    mode: autograd saves the indices of a later training step."""
    with torch.inference_mode(False):
        windows = (h // window) * (w // window)
        single = window_tokens(h, w, window, shift, 0, windows, torch.device("cpu"))
        order = torch.cat([single + image * h * w for image in range(batch)])
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel())
        return order.to(device), inverse.to(device)


@lru_cache(maxsize=32)
def shift_mask(h: int, w: int, window: int, shift: int, device: torch.device) -> torch.Tensor:
    """Additive mask (windows, N, N) that stops tokens from attending across a cyclic-shift seam."""
    windows = (h // window) * (w // window)
    return window_shift_mask(h, w, window, shift, 0, windows, torch.device("cpu")).to(device)


def _onednn_linear_available() -> bool:
    return (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled
            and hasattr(torch.ops.mkldnn, "_linear_pointwise"))


class Linear(nn.Linear):
    """`nn.Linear` (same keys) whose inference on the CPU runs in oneDNN.

    PyTorch's CPU `addmm` goes to MKL, which on this project's AMD CPU ran fp32 at 0.4x the
    speed of oneDNN's kernel, and its bf16 path copies the broadcast bias into the output before
    the product; oneDNN adds the bias (and an optional GELU) inside the product. fp32 stays
    fp32 (a different summation order, 1e-6 relative); under CPU autocast the weights are cast
    once and kept, not on every call. `kernel = "aten"` is the plain `F.linear`.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__(in_features, out_features)
        self.kernel = "onednn"
        self._weight16, self._bias16 = DerivedTensor(), DerivedTensor()

    def forward(self, x: torch.Tensor, gelu: bool = False) -> torch.Tensor:
        dtype = self._onednn_dtype(x)
        if dtype is None:
            y = super().forward(x)
            return F.gelu(y) if gelu else y
        weight, bias = self.weight, self.bias
        if dtype != weight.dtype:
            weight = self._weight16.get((weight,), dtype, lambda: self.weight.to(dtype))
            bias = self._bias16.get((bias,), dtype, lambda: self.bias.to(dtype))
        return torch.ops.mkldnn._linear_pointwise(
            x.to(dtype), weight, bias, "gelu" if gelu else "none", [], "none" if gelu else ""
        )

    def _onednn_dtype(self, x: torch.Tensor) -> torch.dtype | None:
        """The dtype oneDNN computes in here, or None where the plain path must run (training,
        other devices and dtypes, no oneDNN, inside `torch.compile`, which fuses on its own)."""
        if self.kernel != "onednn" or x.device.type != "cpu" or torch.compiler.is_compiling() or (
            torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        ):
            return None
        dtype = x.dtype
        if torch.is_autocast_enabled("cpu"):
            dtype = torch.get_autocast_dtype("cpu")
        if dtype not in (torch.float32, torch.bfloat16) or not _onednn_linear_available():
            return None
        if dtype == torch.bfloat16 and not torch.ops.mkldnn._is_mkldnn_bf16_supported():
            return None
        return dtype


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = Linear(dim, hidden)
        self.fc2 = Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.fc1(x, gelu=True))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows, with a learned relative-position bias."""

    def __init__(self, dim: int, window: int, heads: int, attention: str = "sdpa") -> None:
        super().__init__()
        self.dim, self.window, self.heads = dim, window, heads
        self.scale = (dim // heads) ** -0.5
        self.attention = attention
        self.relative_position_bias_table = nn.Parameter(
            torch.zeros((2 * window - 1) ** 2, heads)
        )
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)
        self.register_buffer(
            "relative_position_index", _relative_position_index(window).clone(), persistent=False
        )
        self.qkv = Linear(dim, dim * 3)
        self.proj = Linear(dim, dim)
        self._bias_cache = DerivedTensor()

    def position_bias(self) -> torch.Tensor:
        """(heads, N, N) bias looked up from the table."""
        n = self.window * self.window
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, -1).permute(2, 0, 1).contiguous()

    def _cached_bias(self, dtype: torch.dtype) -> torch.Tensor:
        """`position_bias()` in `dtype`, cached while no gradient can flow into the table."""
        return self._bias_cache.get((self.relative_position_bias_table,), dtype,
                                    lambda: self.position_bias().to(dtype))

    def _additive_mask(self, shift: torch.Tensor | None, dtype: torch.dtype, windows: int
                       ) -> torch.Tensor:
        """(windows or 1, heads, N, N): the bias, plus the shift mask for shifted blocks, for
        `windows` windows (a batch of maps repeats the map's mask)."""
        bias = self._cached_bias(dtype)
        if shift is None:
            return bias.unsqueeze(0)
        mask = shift.to(dtype)[:, None] + bias[None]
        return mask.repeat(windows // len(shift), 1, 1, 1) if windows > len(shift) else mask

    def forward(self, x: torch.Tensor, shift: torch.Tensor | None) -> torch.Tensor:
        """x: (B * windows, N, C); shift: the (windows, N, N) mask of an (H, W) map, or None.

        The fused kernel reads q, k and v as strided views of the qkv output and writes its
        output token-major, so the heads are split and merged without copies."""
        bw, n, c = x.shape
        qkv = self.qkv(x).reshape(bw, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        if self.attention == "math":
            out = self._math_attention(q, k, v, shift)
        else:
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=self._additive_mask(shift, q.dtype, bw), scale=self.scale
            )
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))

    def _math_attention(
        self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, shift: torch.Tensor | None
    ) -> torch.Tensor:
        """The paper code's formulation: scaled q, explicit softmax."""
        attn = (q * self.scale) @ k.transpose(-2, -1) + self.position_bias().unsqueeze(0)
        if shift is not None:
            windows, n = shift.shape[0], attn.shape[-1]
            attn = attn.view(-1, windows, self.heads, n, n) + shift.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.heads, n, n)
        return attn.softmax(dim=-1) @ v


class SwinBlock(nn.Module):
    """(Shifted-)window attention block; every second block shifts by half a window."""

    def __init__(self, dim: int, heads: int, window: int, shift: int, mlp_ratio: float) -> None:
        super().__init__()
        self.window, self.shift = window, shift
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, window, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor, size: tuple[int, int], chunk: int | None = None
                ) -> torch.Tensor:
        """x: (B, H * W, C) tokens of maps of `size`. With `chunk` (inference only, x
        contiguous), the block runs about `chunk` tokens' windows at a time and writes its
        result into `x` itself."""
        if chunk is not None:
            return self._forward_chunked(x, size, chunk)
        h, w = size
        mask = shift_mask(h, w, self.window, self.shift, x.device) if self.shift else None
        if self.attn.attention == "math":
            attended = self._attend_rolled(self.norm1(x), size, mask)
        else:
            attended = self._attend_gathered(self.norm1(x), size, mask)
        return self._mlp_residual(residual_add(attended, x))

    def _mlp_residual(self, x: torch.Tensor) -> torch.Tensor:
        return residual_add(self.mlp(self.norm2(x)), x)

    def _forward_chunked(self, x: torch.Tensor, size: tuple[int, int], chunk: int
                         ) -> torch.Tensor:
        """The block over `chunk` tokens' windows at a time: each chunk's tokens gathered in
        window order, attended, through the MLP (both per window or per token, so a chunk
        needs nothing outside it) and copied back; only one chunk's temporaries live. The
        windows' token indices and mask classes are built once for all chunks."""
        b, length, c = x.shape
        h, w = size
        n = self.window * self.window
        flat = x.view(b * length, c)
        windows, step = length // n, max(1, chunk // n)
        order = window_tokens(h, w, self.window, self.shift, 0, windows, x.device)
        if self.shift:
            classes = window_classes(h, w, self.window, x.device)
            masks = class_shift_masks(self.window, self.shift, x.device)
        for image in range(b):
            for first in range(0, windows, step):
                count = min(step, windows - first)
                index = order[first * n : (first + count) * n]
                if image:
                    index = index + image * length
                mask = None
                if self.shift:
                    mask = masks.index_select(0, classes[first : first + count])
                tokens = flat.index_select(0, index)
                attended = self.attn(self.norm1(tokens).view(count, n, c), mask)
                tokens = self._mlp_residual(residual_add(attended.view(-1, c), tokens))
                flat.index_copy_(0, index, tokens)
                del tokens, attended
        return x

    def _attend_rolled(self, x: torch.Tensor, size: tuple[int, int], mask: torch.Tensor | None
                       ) -> torch.Tensor:
        """The paper code's formulation: roll the map, cut it into windows, and back."""
        (h, w), (b, _, c) = size, x.shape
        x = x.view(b, h, w, c)
        if self.shift:
            x = torch.roll(x, shifts=(-self.shift, -self.shift), dims=(1, 2))
        x = window_reverse(self.attn(window_partition(x, self.window), mask), self.window, h, w)
        if self.shift:
            x = torch.roll(x, shifts=(self.shift, self.shift), dims=(1, 2))
        return x.reshape(b, h * w, c)

    def _attend_gathered(self, x: torch.Tensor, size: tuple[int, int],
                         mask: torch.Tensor | None) -> torch.Tensor:
        """The same tokens moved by one row gather each way (`window_order`) instead of two
        rolls and a reshuffle: bit-identical, a third of the copies."""
        b, length, c = x.shape
        order, inverse = window_order(b, *size, self.window, self.shift, x.device)
        windows = x.reshape(b * length, c).index_select(0, order)
        attended = self.attn(windows.view(-1, self.window * self.window, c), mask)
        return attended.view(b * length, c).index_select(0, inverse).view(b, length, c)


class BasicLayer(nn.Module):
    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, heads, window, 0 if i % 2 == 0 else window // 2, mlp_ratio)
            for i in range(depth)
        )

    def forward(self, x: torch.Tensor, size: tuple[int, int], chunk: int | None = None
                ) -> torch.Tensor:
        """The blocks in turn; with `chunk`, chunked and in place in `x` (`SwinBlock`)."""
        for block in self.blocks:
            x = block(x, size, chunk)
        return x


class RSTB(nn.Module):
    """Residual Swin Transformer Block: Swin blocks, a 3x3 conv, and a skip connection."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, mlp_ratio: float) -> None:
        super().__init__()
        self.residual_group = BasicLayer(dim, depth, heads, window, mlp_ratio)
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor, size: tuple[int, int], chunk: int | None = None
                ) -> torch.Tensor:
        """x: (B, H * W, C) tokens. With `chunk` (inference only, x contiguous), the result is
        written into `x` (`_forward_chunked`)."""
        if chunk is not None:
            return self._forward_chunked(x, size, chunk)
        b, _, c = x.shape
        y = self.residual_group(x, size).transpose(1, 2).reshape(b, c, *size)
        return self.conv(y).flatten(2).transpose(1, 2) + x

    def _forward_chunked(self, x: torch.Tensor, size: tuple[int, int], chunk: int
                         ) -> torch.Tensor:
        """The blocks chunked in place on a copy of `x`; the conv reads that copy as a
        channels-last map (a view: token-major is channels-last) in bands of about `chunk`
        tokens, each band adding its output rows into `x`. No transposed copy, no conv output
        the size of the map."""
        b, _, c = x.shape
        h, w = size
        y = self.residual_group(x.clone(), size, chunk)
        image = y.view(b, h, w, c).permute(0, 3, 1, 2)
        out = x.view(b, h, w, c)
        rows = max(1, -(-chunk // w))
        for top in range(0, h, rows):
            bottom = min(top + rows, h)
            band = image[:, :, max(top - 1, 0) : bottom + 1]
            if top == 0 or bottom == h:  # zero rows beyond the map, as the conv's padding
                band = F.pad(band, (0, 0, int(top == 0), int(bottom == h)))
            conv = F.conv2d(band, self.conv.weight, self.conv.bias, padding=(0, 1))
            out[:, top:bottom].add_(conv.permute(0, 2, 3, 1))
            del band, conv
        return x


class SwinLayers(nn.Module):
    """A stack of RSTBs applied to a (B, C, H, W) feature map."""

    def __init__(
        self, dim: int, layers: int, depth: int, heads: int, window: int, mlp_ratio: float
    ) -> None:
        super().__init__()
        self.swin_blks = nn.ModuleList(
            RSTB(dim, depth, heads, window, mlp_ratio) for _ in range(layers)
        )
        # maps of more tokens run chunked at inference; None: `chunk_tokens` of their device
        self.chunk_tokens: int | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        tokens = x.reshape(b, c, h * w).transpose(1, 2)
        chunk = self._chunk(b * h * w, x.device.type)
        if chunk is not None:  # the chunked blocks write into their map: never into `x`
            tokens = tokens.clone(memory_format=torch.contiguous_format)
        for layer in self.swin_blks:
            tokens = layer(tokens, (h, w), chunk)
        out = tokens.transpose(1, 2).reshape(b, c, h, w)
        if chunk is not None and not x.is_contiguous(memory_format=torch.channels_last):
            return out.contiguous()  # the input's layout, as the whole-map path gives it
        return out

    def _chunk(self, tokens: int, device_type: str) -> int | None:
        """Tokens per chunk where this forward runs chunked: inference (no gradient, not traced
        by `torch.compile`) with fast attention over more than one chunk; else None."""
        size = self.chunk_tokens or chunk_tokens(device_type)
        if tokens <= size or torch.is_grad_enabled() or torch.compiler.is_compiling():
            return None
        math = any(m.attention == "math" for m in self.modules() if isinstance(m, WindowAttention))
        return None if math else size

    def set_attention(self, mode: str) -> None:
        """Switch every window attention between "sdpa" (fast: SDPA, oneDNN linear layers) and
        "math" (reference: the paper code's explicit attention and `F.linear`)."""
        for module in self.modules():
            if isinstance(module, WindowAttention):
                module.attention = mode
            if isinstance(module, Linear):
                module.kernel = "aten" if mode == "math" else "onednn"
