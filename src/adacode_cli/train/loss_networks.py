"""Every registry weights file a run needs, checked at once before anything is written.

The perceptual loss needs VGG16 and the LPIPS layers, the stage-1 semantic loss VGG19, and a
stage-3 run started from the registry's `recon` model needs it (and its discriminator, for the
GAN loss). All of them are looked up in the cache first; offline (`--offline` or ADACODE_OFFLINE)
a missing one is not fetched, and one message names every missing file with the flag that avoids
it. Online, the missing ones are downloaded; after a failed download the rest are not tried (they
come from the same hosts), so an unreachable network costs one failure, not one per file.
Training never falls back to random VGG features, which give plausible-looking losses that teach
nothing. Validation uses LPIPS only when its weights are already cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from adacode_cli.errors import WeightsError

LPIPS_WEIGHTS = ("vgg16", "lpips-vgg")
SEMANTIC_WEIGHTS = ("vgg19",)


@dataclass(frozen=True)
class WeightsNeed:
    """Registry files one part of a run needs, and the flag that does without them."""

    names: tuple[str, ...]
    purpose: str
    avoid: str


@dataclass
class LossWeightFiles:
    """Local weight files of the loss networks a run uses (None: not used / not available)."""

    lpips: tuple[Path, Path] | None = None
    lpips_for_loss: bool = False
    vgg19: Path | None = None


def fetch_needed(needs: list[WeightsNeed], offline: bool | None) -> dict[str, Path]:
    """{registry name: cached file} of every need, or one `WeightsError` naming all that are
    missing (or failed to download) and each flag that avoids them."""
    from adacode_cli.weights.api import ensure_weights, is_offline

    files: dict[str, Path] = {}
    missing: list[str] = []
    for name in dict.fromkeys(n for need in needs for n in need.names):
        try:
            files[name] = ensure_weights(name, offline=True)
        except WeightsError:
            missing.append(name)
    if not missing:
        return files
    if is_offline(offline):
        reason = "offline mode is on (--offline or ADACODE_OFFLINE)"
        raise WeightsError(_missing_message(needs, missing, reason))
    for name in missing[:]:
        try:
            files[name] = ensure_weights(name, offline=False)
            missing.remove(name)
        except WeightsError as error:
            raise WeightsError(_missing_message(needs, missing, str(error))) from error
    return files


def _missing_message(needs: list[WeightsNeed], missing: list[str], reason: str) -> str:
    count = f"{len(missing)} weights file{'s' if len(missing) > 1 else ''}"
    lines = [f"{count} missing, nothing was written: {reason}"]
    for need in needs:
        absent = [name for name in need.names if name in missing]
        if absent:
            lines.append(f"{', '.join(absent)}: {need.purpose}; without it: {need.avoid}")
    lines.append(f"fetch them while online: adacode weights download {' '.join(missing)}")
    return "\n  ".join(lines)


def loss_weights(files: dict[str, Path], perceptual: bool, semantic: bool) -> LossWeightFiles:
    """The loss networks' files among `files`, plus LPIPS for validation if already cached."""
    from adacode_cli.weights.api import ensure_weights

    found = LossWeightFiles()
    try:
        lpips = [files.get(name) or ensure_weights(name, offline=True) for name in LPIPS_WEIGHTS]
        found.lpips = (lpips[0], lpips[1])
    except WeightsError:
        found.lpips = None
    found.lpips_for_loss = perceptual
    if semantic:
        found.vgg19 = files[SEMANTIC_WEIGHTS[0]]
    return found


def loss_needs(perceptual: bool, semantic: bool) -> list[WeightsNeed]:
    """What the switched-on losses need."""
    needs = []
    if perceptual:
        needs.append(WeightsNeed(LPIPS_WEIGHTS, "the perceptual loss (LPIPS)", "--no-perceptual"))
    if semantic:
        needs.append(WeightsNeed(SEMANTIC_WEIGHTS, "the semantic loss (VGG19)", "--no-semantic"))
    return needs
