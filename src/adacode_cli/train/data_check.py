"""Every problem of a run's images, found in one pass before anything is written.

Training reads its images again and again for hours; a file it cannot use must stop the command
before iteration 1, not at the iteration that first draws it, and before the run folder exists,
so the corrected command runs as it was typed. Each image is decoded once here (a header alone
does not reveal a truncated file) and every problem is collected, so one refusal names every bad
file: unreadable or empty files, images smaller than the training crop, low-quality images
without a partner or not 1/scale of it, validation images too small to score, empty folders.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.train.image_files import list_images, read_rgb
from adacode_cli.train.metrics import min_scored_side
from adacode_cli.train.pairs import pair_mismatch

MAX_LISTED = 20  # problems listed one per line; the rest are counted


class DataError(AdaCodeError):
    """Training or validation images that cannot be used; the message lists every problem."""


@dataclass
class DataCheck:
    """Collects problems across every folder of a command; sizes are read once per file."""

    problems: list[str] = field(default_factory=list)
    _sizes: dict[Path, tuple[int, int] | None] = field(default_factory=dict)

    def report(self, problem: str) -> None:
        if problem not in self.problems:
            self.problems.append(problem)

    def images(self, folder: Path, role: str) -> list[Path]:
        """The images of `folder`, or none (and a problem) when it is missing or empty."""
        try:
            return list_images(folder)
        except AdaCodeError as error:
            self.report(f"{role}: {error}")
            return []

    def size(self, path: Path) -> tuple[int, int] | None:
        """(width, height) as training sees the image (decoded, upright), None if unreadable."""
        if path not in self._sizes:
            try:
                pixels = read_rgb(path)
                self._sizes[path] = (pixels.shape[1], pixels.shape[0])
            except ImageError as error:
                self.report(str(error))
                self._sizes[path] = None
        return self._sizes[path]

    def refuse_if_any(self) -> None:
        """Raise one `DataError` naming every problem found (the first MAX_LISTED by name)."""
        if not self.problems:
            return
        count = len(self.problems)
        lines = self.problems[:MAX_LISTED]
        if count > MAX_LISTED:
            lines.append(f"... and {count - MAX_LISTED} more")
        header = f"{count} problem{'s' if count > 1 else ''} with the images; nothing was written:"
        raise DataError("\n  ".join([header, *lines]))


def check_training_images(check: DataCheck, images: list[Path], gt_size: int) -> None:
    """Every training image readable and at least the training crop on each side."""
    for path in images:
        size = check.size(path)
        if size is not None and min(size) < gt_size:
            check.report(f"{path}: {size[0]}x{size[1]} is smaller than the {gt_size}px training "
                         "crop (data.gt_size)")


def partners(
    check: DataCheck, hq_root: Path, hq: list[Path], lq_root: Path, scale: int, role: str
) -> list[Path]:
    """The low-quality partner of each image (same relative name, any extension), each
    readable and exactly 1/scale of its reference (rounded down, as `data degrade` writes)."""
    lq_images = check.images(lq_root, role)
    by_name = {p.relative_to(lq_root).with_suffix("").as_posix(): p for p in lq_images}
    found = []
    for path in hq:
        name = path.relative_to(hq_root).with_suffix("").as_posix()
        partner = by_name.get(name)
        if partner is None:
            if lq_images:
                check.report(f"{path}: no low-quality image {name!r} in {lq_root}")
            continue
        found.append(partner)
        hq_size, lq_size = check.size(path), check.size(partner)
        if hq_size is not None and lq_size is not None:
            mismatch = pair_mismatch(hq_size, lq_size, scale, str(path))
            if mismatch:
                check.report(f"{partner}: {mismatch}")
    return found


def check_validation_images(
    check: DataCheck, root: Path, scale: int, lq_root: Path | None, crop_border: int
) -> tuple[list[Path], list[Path] | None]:
    """Validation images readable, large enough to score, and paired when `lq_root` is given;
    the images and their partners."""
    images = check.images(root, "--val")
    smallest = min_scored_side(crop_border)
    for path in images:
        size = check.size(path)
        if size is not None and min(size) // scale * scale < smallest:
            check.report(f"{path}: {size[0]}x{size[1]} is too small to validate (PSNR/SSIM/LPIPS "
                         f"with a {crop_border} px border need {smallest} px per side)")
    if lq_root is None:
        return images, None
    return images, partners(check, root, images, lq_root, scale, "--val-lq")
