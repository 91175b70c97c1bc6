"""The inference forward pass of an `AdaCodeNet` as a flat list of steps over named registers.

Tiled inference with image-wide GroupNorm statistics needs to stop before every GroupNorm until
all tiles got there (the statistics of a norm depend on every pixel of its input). Cutting the
network into steps that each start with at most one norm, and keeping each tile's live tensors in
registers between steps, lets the executor run the network layer by layer across the tiles with
exact statistics, or straight through tile by tile. The steps call the network's own modules in
the order of `AdaCodeNet.forward`, and its own `quantize_and_fuse` and `skips_into` where the
forward pass is more than a chain of modules; tests/test_engine_graph.py proves them equal.

Steps marked `whole` (the Swin stacks at the latent resolution: the LQ encoder's, and the weight
predictor's, which gives `weight` before `quantize` looks the latent up and fuses per pixel)
reach furthest: shifted windows carry context across many windows, so a tile border costs most
there. The executor can run them once over the whole image's latent, gathered from the tile
cores, instead of per tile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from adacode_cli.model.layers import GroupNorm, ResBlock, residual_add
from adacode_cli.model.networks import AdaCodeNet
from adacode_cli.model.swin import SwinLayers

Registers = dict[str, torch.Tensor]


@dataclass
class Step:
    """One step: `run` reads and writes registers; `norm` (if any) normalises `source` first."""

    name: str
    run: Callable[[Registers], None]
    reads: tuple[str, ...]
    writes: tuple[str, ...]
    norm: GroupNorm | None = None
    source: str | None = None
    frees: tuple[str, ...] = field(default=())
    whole: bool = False  # long reach: may run once over the whole latent (see module doc)


def _apply(name: str, module: nn.Module, register: str = "h") -> Step:
    if any(isinstance(m, GroupNorm) for m in module.modules()):
        raise ValueError(f"{name} hides a GroupNorm from the step graph")

    def run(regs: Registers) -> None:
        regs[register] = module(regs[register])

    return Step(name, run, (register,), (register,), whole=isinstance(module, SwinLayers))


def _normed(name: str, module: nn.Sequential, source: str, target: str) -> Step:
    """A Sequential that starts with the norm layer (`NormLayer`) of a residual block half."""
    norm = module[0].norm

    def run(regs: Registers) -> None:
        regs[target] = module(regs[source])

    return Step(name, run, (source,), (target,), norm=norm, source=source)


def _residual_block(name: str, block: ResBlock) -> list[Step]:
    """`conv(x) + x` cut at its two norms; `h` stays alive as the skip connection."""

    def add(regs: Registers) -> None:
        regs["h"] = residual_add(regs.pop("t"), regs["h"])

    return [
        _normed(f"{name}.a", block.conv[0:3], "h", "t"),
        _normed(f"{name}.b", block.conv[3:6], "t", "t"),
        Step(f"{name}.add", add, ("t", "h"), ("h",)),
    ]


def _sequence(name: str, modules: nn.Module) -> list[Step]:
    steps: list[Step] = []
    for index, module in enumerate(modules.children()):
        label = f"{name}.{index}"
        if isinstance(module, ResBlock):
            steps += _residual_block(label, module)
        else:
            steps.append(_apply(label, module))
    return steps


def _copy(source: str, target: str) -> Step:
    def run(regs: Registers) -> None:
        regs[target] = regs[source]

    return Step(f"keep {target}", run, (source,), (target,))


def _codebook_weights(network: AdaCodeNet) -> Step:
    """The weight predictor (a Swin stack, then a 1x1 conv): `feature0` -> `weight`. It also
    writes `feature0`, unchanged: run over the whole latent, each tile then gets back the
    latent gathered from the tile cores, so its codebook lookup reads the image's own latent
    even where its own convolutions saw the tile border (the HQ encoder of stage 2)."""

    def run(regs: Registers) -> None:
        regs["weight"] = network.weight_predictor(regs["feature0"])

    return Step("codebook weights", run, ("feature0",), ("feature0", "weight"), whole=True)


def _quantize_and_fuse(network: AdaCodeNet, weighted: bool) -> Step:
    """The network's own `quantize_and_fuse` (no norms) with the `weight` of the step before
    (`weighted`; stage 1 has none): `feature0` -> `h`. Per pixel but for the 3x3 after-quant
    convs: it reaches one latent pixel, and its temporaries (one set per codebook) stay per
    tile."""

    def run(regs: Registers) -> None:
        regs["h"] = network.quantize_and_fuse(regs["feature0"], weight=regs.get("weight")).fused

    reads = ("feature0", "weight") if weighted else ("feature0",)
    return Step("quantize", run, reads, ("h",))


def _add_feature(index: int) -> Step:
    def run(regs: Registers) -> None:
        regs["h"] = regs["h"] + regs[f"feature{index}"]

    return Step(f"add feature{index}", run, ("h", f"feature{index}"), ("h",))


def network_steps(network: AdaCodeNet) -> list[Step]:
    """The steps of `network.forward(x)` at inference: register `h` in, `h` (image) and
    `weight` (codebook weights, stages 2/3) out."""
    encoder = network.multiscale_encoder
    steps = [_apply("in_conv", encoder.in_conv)]
    first_feature = len(encoder.blocks) - encoder.outputs
    for index, block in enumerate(encoder.blocks):
        name = f"encoder.{index}"
        is_leaf = not any(isinstance(m, ResBlock) for m in block.modules())
        steps += [_apply(name, block)] if is_leaf else _sequence(name, block)
        if index >= first_feature:
            steps.append(_copy("h", f"feature{index - first_feature}"))
    weighted = network.config.stage != "vqgan"
    if weighted:
        steps.append(_codebook_weights(network))
    steps.append(_quantize_and_fuse(network, weighted))
    for index, decoder in enumerate(network.decoder_group):
        if network.skips_into(index):
            steps.append(_add_feature(index))
        steps += _sequence(f"decoder.{index}", decoder.block)
    steps.append(_apply("out_conv", network.out_conv))
    return _with_lifetimes(steps)


def _with_lifetimes(steps: list[Step]) -> list[Step]:
    """Mark after which step each register is dead, so executors drop it at once."""
    keep = {"h", "weight"}
    last_read: dict[str, int] = {}
    for index, step in enumerate(steps):
        for name in step.reads:
            last_read[name] = index
    for name, index in last_read.items():
        if name not in keep:
            steps[index].frees += (name,)
    return steps


def run_steps(steps: list[Step], regs: Registers) -> None:
    """Run `steps` in order on one batch's registers, dropping dead ones as they go."""
    for step in steps:
        step.run(regs)
        for name in step.frees:
            regs.pop(name, None)


def segments(steps: list[Step]) -> list[list[Step]]:
    """Cut `steps` before every normalised step: each segment needs at most one norm's
    image-wide statistics, those of its first step's source."""
    result: list[list[Step]] = [[]]
    for step in steps:
        if step.norm is not None and result[-1]:
            result.append([])
        result[-1].append(step)
    return result
