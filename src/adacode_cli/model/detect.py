"""Which AdaCode network a checkpoint holds, from its tensor names and shapes or its metadata.

Nothing here needs torch or a file: the loader (`model.checkpoint`) passes tensors, and the
check before torch loads (`weights.header`) passes the shapes a file's header lists, so both
reach the same verdict, the second one in milliseconds.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterator, Mapping
from typing import Protocol, TypeVar

from adacode_cli.errors import CheckpointError
from adacode_cli.model.config import AdaCodeConfig


class Shaped(Protocol):
    """A tensor, or what a file's header says about one: its shape is all the detection reads."""

    @property
    def shape(self) -> tuple[int, ...]: ...


S = TypeVar("S", bound=Shaped)
Shapes = Mapping[str, Shaped]

FORMAT_NAME = "adacode"
FORMAT_VERSION = "1"
STRAY_PREFIXES = (
    "conv_semantic.",
    "vgg_feat_extractor.",
    "contrast_cri.",
    "weight_cri.",
    "multiscale_encoder.upsampler.",
    "sft_fusion_group.",
)
DERIVED_SUFFIXES = ("attn_mask", "relative_position_index")


def clean_official(state: Mapping[str, S], keep_semantic: bool = False) -> dict[str, S]:
    """Drop training-only heads, loss buffers and buffers we derive (masks, index tables)."""
    stray = tuple(p for p in STRAY_PREFIXES if not (keep_semantic and p == "conv_semantic."))
    return {
        k: v
        for k, v in state.items()
        if not k.startswith(stray) and not k.endswith(DERIVED_SUFFIXES)
    }


def _indices(state: Shapes, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := regex.match(k))})


def _dim(state: Shapes, key: str, axis: int) -> int:
    """Size `axis` of tensor `key`; a missing tensor or one of too few dimensions is named."""
    if key not in state:
        raise CheckpointError(f"not an AdaCode network: tensor '{key}' is missing")
    shape = state[key].shape
    if len(shape) <= axis:
        raise CheckpointError(
            f"not an AdaCode network: tensor '{key}' has shape {tuple(shape)}, too few dimensions"
        )
    return int(shape[axis])


def infer_config(state: Shapes) -> AdaCodeConfig:
    """Derive the architecture from tensor names and shapes (spandrel-style detection)."""
    codebooks = _indices(state, r"quantize_group\.(\d+)\.embedding\.weight$")
    if not codebooks:
        raise CheckpointError("not an AdaCode network: no 'quantize_group.N.embedding.weight'")
    sizes = tuple(_dim(state, f"quantize_group.{i}.embedding.weight", 0) for i in codebooks)
    dims = tuple(_dim(state, f"quantize_group.{i}.embedding.weight", 1) for i in codebooks)
    decoders = _indices(state, r"decoder_group\.(\d+)\.block\.1\.weight$")
    if not decoders:
        raise CheckpointError("not an AdaCode network: no 'decoder_group.N.block.1.weight'")
    latent = _dim(state, "before_quant_group.0.weight", 1)
    widths = [_dim(state, f"decoder_group.{i}.block.1.weight", 0) for i in decoders]
    channels = (latent, *widths)
    in_channels = _dim(state, "multiscale_encoder.in_conv.weight", 1)
    blocks = _indices(state, r"multiscale_encoder\.blocks\.(\d+)\.")
    swin_at = _indices(state, r"multiscale_encoder\.blocks\.(\d+)\.swin_blks\.")
    extra: dict[str, object] = {}
    if "after_quant_group.0.conv.weight" in state:
        stage, scale, swin_prefix = "vqgan", 1, None
        if "conv_semantic.0.weight" in state:
            extra["semantic_channels"] = _dim(state, "conv_semantic.0.weight", 0)
    elif swin_at:
        stage, swin_prefix = "restore", f"multiscale_encoder.blocks.{swin_at[0]}"
        scale = 2 ** (len(channels) - 1 - swin_at[0])
    else:
        stage, scale, swin_prefix = "recon", 1, None
    if stage != "vqgan":
        swin_prefix = "weight_predictor.blocks.0"
    elif blocks and len(blocks) != len(channels) - 1:
        raise CheckpointError("not an AdaCode network: encoder depth does not match the decoder")
    swin: dict[str, object] = {}
    if swin_prefix is not None:
        layers = _indices(state, rf"{re.escape(swin_prefix)}\.swin_blks\.(\d+)\.")
        depth = _indices(
            state, rf"{re.escape(swin_prefix)}\.swin_blks\.0\.residual_group\.blocks\.(\d+)\."
        )
        block = f"{swin_prefix}.swin_blks.0.residual_group.blocks.0"
        table = f"{block}.attn.relative_position_bias_table"
        hidden = _dim(state, f"{block}.mlp.fc1.weight", 0)
        swin = {
            "swin_layers": len(layers),
            "swin_depth": len(depth),
            "swin_heads": _dim(state, table, 1),
            "window_size": (round(_dim(state, table, 0) ** 0.5) + 1) // 2,
            "mlp_ratio": hidden / latent,
        }
    if stage != "vqgan":
        predictor_out = _dim(state, "weight_predictor.blocks.1.weight", 0)
        if predictor_out != len(sizes):
            raise CheckpointError(
                f"weight predictor has {predictor_out} outputs but there are {len(sizes)} codebooks"
            )
    try:
        return AdaCodeConfig(
            stage=stage, scale=scale, codebook_sizes=sizes, codebook_dims=dims,
            channels=channels, in_channels=in_channels, **swin, **extra,  # type: ignore[arg-type]
        )
    except ValueError as error:
        raise CheckpointError(f"not a supported AdaCode network: {error}") from error


@contextlib.contextmanager
def naming(path: object) -> Iterator[None]:
    """Make every CheckpointError raised inside name the file it is about (once)."""
    try:
        yield
    except CheckpointError as error:
        if str(error).startswith(f"{path}:"):
            raise
        raise CheckpointError(f"{path}: {error}") from error


def config_from_metadata(metadata: Mapping[str, str], source: object) -> AdaCodeConfig | None:
    """The config our safetensors files carry in their metadata; None for a file without it
    (another tool's safetensors: detect from the tensors). `source` starts each message."""
    if metadata.get("format") != FORMAT_NAME or "config" not in metadata:
        return None
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{source}: format version {metadata.get('format_version')} is not supported by this "
            "adacode; upgrade adacode"
        )
    try:
        return AdaCodeConfig.from_dict(json.loads(metadata["config"]))
    except (ValueError, TypeError, AttributeError) as error:
        raise CheckpointError(f"{source}: invalid config metadata ({error})") from error
