"""Checkpoint formats: the official `.pth` release files and our self-describing safetensors.

Official files are `{'params': state_dict}` pickles. We read them with `weights_only=True` only,
drop the stray training-time keys and derived buffers, derive the architecture from tensor shapes,
and load strictly: a missing or mis-shaped tensor is an error that names the key (the official
loader's `strict=False` silently keeps random weights). Our format is safetensors with the config
in the metadata, so loading needs nothing else. This module reads and writes paths only; it knows
nothing about URLs or terminals.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import torch

from adacode_cli.atomic import atomic_save
from adacode_cli.errors import CheckpointError
from adacode_cli.model.config import AdaCodeConfig
from adacode_cli.model.networks import AdaCodeNet, build_network

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

StateDict = dict[str, torch.Tensor]


def read_official(path: Path) -> StateDict:
    """Tensors of an official `.pth` file; code-carrying pickles are refused."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "weights only" in str(error).lower() or "weights_only" in str(error):
            raise CheckpointError(
                f"{path}: refused, the file contains Python objects (code), not only tensors"
            ) from error
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({error})") from error
    except Exception as error:  # torch.load fails in many ways (struct, zip, EOF...) on bad bytes
        raise CheckpointError(f"{path}: truncated or not a PyTorch checkpoint") from error
    if isinstance(data, dict):
        for key in ("params", "params_ema", "state_dict"):
            if isinstance(data.get(key), dict):
                data = data[key]
                break
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: no state dict of tensors found")
    return {str(k).removeprefix("module."): v for k, v in data.items()}


def clean_official(state: StateDict, keep_semantic: bool = False) -> StateDict:
    """Drop training-only heads, loss buffers and buffers we derive (masks, index tables)."""
    stray = tuple(p for p in STRAY_PREFIXES if not (keep_semantic and p == "conv_semantic."))
    return {
        k: v
        for k, v in state.items()
        if not k.startswith(stray) and not k.endswith(DERIVED_SUFFIXES)
    }


def _indices(state: StateDict, pattern: str) -> list[int]:
    regex = re.compile(pattern)
    return sorted({int(m.group(1)) for k in state if (m := regex.match(k))})


def _shape(state: StateDict, key: str) -> torch.Size:
    if key not in state:
        raise CheckpointError(f"not an AdaCode network: tensor '{key}' is missing")
    return state[key].shape


def infer_config(state: StateDict) -> AdaCodeConfig:
    """Derive the architecture from tensor names and shapes (spandrel-style detection)."""
    codebooks = _indices(state, r"quantize_group\.(\d+)\.embedding\.weight$")
    if not codebooks:
        raise CheckpointError("not an AdaCode network: no 'quantize_group.N.embedding.weight'")
    sizes = tuple(int(_shape(state, f"quantize_group.{i}.embedding.weight")[0]) for i in codebooks)
    dims = tuple(int(_shape(state, f"quantize_group.{i}.embedding.weight")[1]) for i in codebooks)
    decoders = _indices(state, r"decoder_group\.(\d+)\.block\.1\.weight$")
    if not decoders:
        raise CheckpointError("not an AdaCode network: no 'decoder_group.N.block.1.weight'")
    latent = int(_shape(state, "before_quant_group.0.weight")[1])
    widths = [int(_shape(state, f"decoder_group.{i}.block.1.weight")[0]) for i in decoders]
    channels = (latent, *widths)
    in_channels = int(_shape(state, "multiscale_encoder.in_conv.weight")[1])
    blocks = _indices(state, r"multiscale_encoder\.blocks\.(\d+)\.")
    swin_at = _indices(state, r"multiscale_encoder\.blocks\.(\d+)\.swin_blks\.")
    extra: dict[str, object] = {}
    if "after_quant_group.0.conv.weight" in state:
        stage, scale, swin_prefix = "vqgan", 1, None
        if "conv_semantic.0.weight" in state:
            extra["semantic_channels"] = int(state["conv_semantic.0.weight"].shape[0])
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
        table = _shape(state, f"{block}.attn.relative_position_bias_table")
        hidden = _shape(state, f"{block}.mlp.fc1.weight")[0]
        swin = {
            "swin_layers": len(layers),
            "swin_depth": len(depth),
            "swin_heads": int(table[1]),
            "window_size": (round(table[0] ** 0.5) + 1) // 2,
            "mlp_ratio": hidden / latent,
        }
    if stage != "vqgan":
        predictor_out = int(_shape(state, "weight_predictor.blocks.1.weight")[0])
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


def load_state_strict(network: AdaCodeNet, state: StateDict) -> None:
    """Load every tensor; any missing, unexpected or mis-shaped key is a named error."""
    expected = network.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing:
        raise CheckpointError(f"tensor '{missing[0]}' is missing ({len(missing)} missing in all)")
    if unexpected:
        raise CheckpointError(
            f"unexpected tensor '{unexpected[0]}' ({len(unexpected)} unexpected in all)"
        )
    for key, tensor in expected.items():
        if state[key].shape != tensor.shape:
            raise CheckpointError(
                f"tensor '{key}' has shape {tuple(state[key].shape)}, "
                f"the architecture needs {tuple(tensor.shape)}"
            )
    network.load_state_dict(state, strict=True)


def save_safetensors(path: Path, config: AdaCodeConfig, state: StateDict) -> None:
    """Write tensors plus a metadata JSON (format version, kind, task, scale, config) atomically."""
    from safetensors.torch import save_file

    metadata = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "stage": config.stage,
        "task": config.task,
        "scale": str(config.scale),
        "config": config.to_json(),
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in state.items()}
    atomic_save(Path(path), lambda temp: save_file(tensors, str(temp), metadata=metadata))


def read_safetensors(path: Path) -> tuple[AdaCodeConfig, StateDict]:
    """Config and tensors of one of our files."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: truncated or not a safetensors file") from error
    if metadata.get("format") != FORMAT_NAME or "config" not in metadata:
        config = infer_config(clean_official(state))
        return config, clean_official(state, keep_semantic=config.stage == "vqgan")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: format version {metadata.get('format_version')} is not supported by this "
            "adacode; upgrade adacode"
        )
    try:
        config = AdaCodeConfig.from_dict(json.loads(metadata["config"]))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: invalid config metadata ({error})") from error
    return config, state


def is_safetensors(path: Path) -> bool:
    """Sniff the format from the content (8-byte header length, then a JSON header)."""
    with open(path, "rb") as handle:
        head = handle.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_checkpoint(path: Path) -> tuple[AdaCodeConfig, StateDict]:
    """Config and clean tensors of an official `.pth` or one of our `.safetensors` files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if is_safetensors(path):
        return read_safetensors(path)
    raw = read_official(path)
    config = infer_config(clean_official(raw, keep_semantic=True))
    return config, clean_official(raw, keep_semantic=config.stage == "vqgan")


def load_network(path: Path, device: str | torch.device = "cpu") -> AdaCodeNet:
    """A ready (eval-mode) network from any supported weights file."""
    config, state = read_checkpoint(path)
    network = build_network(config)
    load_state_strict(network, state)
    return network.to(device).eval()


def convert_checkpoint(src: Path, dst: Path) -> AdaCodeConfig:
    """Official `.pth` (or ours) -> our safetensors, after a strict load proves it complete."""
    config, state = read_checkpoint(src)
    load_state_strict(build_network(config), state)
    save_safetensors(dst, config, state)
    return config
