"""The generator's loss terms, each declared once: its config key, default weight, documentation,
stages, logged name and the function that computes it.

To add a training loss, write one more `@loss_term(...)` function here: `[loss] KEY` (with `--set
loss.KEY=...`, `adacode train config`, the non-negative check) and the `l_NAME` column of
metrics.jsonl follow from the declaration. The function gets every output of the step
(`LossInputs`) and returns the unweighted term, or None when it does not apply to this step
(no LPIPS network, GAN not started yet). Terms are summed in declaration order, the order of
the official code. The declarations need no torch (`adacode train config` and the config checks
read them before torch is imported); the functions import the losses when they first run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from adacode_cli.model.networks import NetworkOutput
    from adacode_cli.train.losses import LPIPS
    from adacode_cli.train.vgg import VGGFeatures

ALL_STAGES = (1, 2, 3)
SEMANTIC_LAYER = "relu4_4"
GAN_LOSS_WEIGHT = 0.1  # every official stage: gan_opt.loss_weight, generator side only
SEMANTIC_LOSS_WEIGHT = 0.1


@dataclass
class LossInputs:
    """One generator step: the network's output, the target, and what the losses compare with
    (the frozen stage-2 teacher's output in stage 3; None where a stage has none)."""

    out: NetworkOutput
    gt: torch.Tensor
    teacher: NetworkOutput | None = None
    lpips: LPIPS | None = None
    vgg: VGGFeatures | None = None
    discriminator: Callable[[torch.Tensor], torch.Tensor] | None = None


@dataclass(frozen=True)
class LossTerm:
    """A declared loss: `[loss] key` weighs `compute`, logged as `name`."""

    key: str
    name: str
    weight: float
    doc: str
    stages: tuple[int, ...]
    compute: Callable[[LossInputs], torch.Tensor | None]


LOSS_TERMS: dict[str, LossTerm] = {}


def loss_term(
    key: str, name: str, weight: float, doc: str, stages: tuple[int, ...] = ALL_STAGES
) -> Callable[[Callable[[LossInputs], Any]], Callable[[LossInputs], Any]]:
    """Declare the decorated function as the loss `[loss] key` (default `weight`)."""

    def declare(compute: Callable[[LossInputs], Any]) -> Callable[[LossInputs], Any]:
        LOSS_TERMS[key] = LossTerm(key, name, weight, doc, stages, compute)
        return compute

    return declare


def weighted_terms(stage: int, weights: Any, inputs: LossInputs) -> dict[str, torch.Tensor]:
    """{logged name: weight * term} of every term of `stage` with a non-zero weight."""
    terms = {}
    for term in LOSS_TERMS.values():
        weight = getattr(weights, term.key)
        if stage in term.stages and weight:
            value = term.compute(inputs)
            if value is not None:
                terms[term.name] = weight * value
    return terms


@loss_term("codebook", "l_codebook", 1.0, "Codebook / commitment loss weight (stage 3: "
           "code-index supervision with the Gram term).")
def _codebook(x: LossInputs) -> torch.Tensor:
    return x.out.codebook_loss


@loss_term("semantic", "l_semantic", SEMANTIC_LOSS_WEIGHT, "Semantic loss weight (VGG19 "
           "relu4_4 regression); 0 = --no-semantic.", (1,))
def _semantic(x: LossInputs) -> torch.Tensor | None:
    import torch

    from adacode_cli.train.losses import semantic_loss

    if x.vgg is None or x.out.semantic is None:
        return None
    with torch.no_grad():
        target = x.vgg(x.gt)[SEMANTIC_LAYER]
    return semantic_loss(x.out.semantic, target)


@loss_term("before_quant", "l_before_quant", 0.0, "Feature loss on the encoder output vs the "
           "teacher's.", (3,))
def _before_quant(x: LossInputs) -> torch.Tensor:
    from adacode_cli.train.losses import feature_loss

    assert x.teacher is not None
    return feature_loss(x.out.latent, x.teacher.latent)


@loss_term("after_quant", "l_after_quant", 1.0, "Feature loss on the fused codebook features "
           "vs the teacher's.", (3,))
def _after_quant(x: LossInputs) -> torch.Tensor:
    from adacode_cli.train.losses import feature_loss

    assert x.teacher is not None
    return feature_loss(x.out.fused, x.teacher.fused)


@loss_term("contrast", "l_contrast", 1.0, "Contrastive loss between student and teacher "
           "encoder features.", (3,))
def _contrast(x: LossInputs) -> torch.Tensor:
    from adacode_cli.train.losses import ContrastiveLoss

    assert x.teacher is not None
    return ContrastiveLoss()(x.out.latent, x.teacher.latent)


@loss_term("pixel", "l_pix", 1.0, "L1 loss weight.")
def _pixel(x: LossInputs) -> torch.Tensor:
    from adacode_cli.train.losses import l1_loss

    return l1_loss(x.out.image, x.gt)


@loss_term("perceptual", "l_percep", 1.0, "LPIPS (VGG16) loss weight; 0 = --no-perceptual.")
def _perceptual(x: LossInputs) -> torch.Tensor | None:
    return None if x.lpips is None else x.lpips(x.out.image, x.gt).mean()


@loss_term("gan", "l_g_gan", GAN_LOSS_WEIGHT, "Hinge GAN loss weight (generator side); "
           "0 = --no-gan.")
def _gan(x: LossInputs) -> torch.Tensor | None:
    from adacode_cli.train.losses import hinge_g_loss

    return None if x.discriminator is None else hinge_g_loss(x.discriminator(x.out.image), 1.0)
