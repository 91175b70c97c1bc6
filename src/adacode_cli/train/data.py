"""Training and validation data, reproducible to the sample.

Every training sample is addressed by its position in an endless stream: epoch `e` visits the
images in a permutation seeded by (seed, e), and the crop, flips, degradation or holes of the
sample at position `p` come from a generator seeded by (seed, p). So a batch depends only on the
seed and the iteration, never on worker processes or on where a run was interrupted, and the
data-order state of a checkpoint is just the iteration. With several processes, iteration `i` of
rank `r` reads its own block of the iteration's positions, which together cover each epoch once
(what `DistributedSampler` does, but resumable in the middle of an epoch).
"""

from __future__ import annotations

import hashlib
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from adacode_cli.errors import AdaCodeError, ImageError
from adacode_cli.images.depth import to_bit_depth, to_float
from adacode_cli.images.inputs import images_in
from adacode_cli.train.baselines import BASELINE_NAMES, bicubic_upscale, mean_fill, white_holes
from adacode_cli.train.degradations import degrade_bsrgan
from adacode_cli.train.image_files import read_rgb
from adacode_cli.train.masks import brush_stroke_mask
from adacode_cli.train.pairs import aligned_pair, augment, bsrgan_pair, paired_crop
from adacode_cli.train.resize import resize_by

SampleKind = Literal["hq", "sr", "inpaint"]


@dataclass(frozen=True)
class SampleSpec:
    """What one training sample is: `hq` (stages 1-2: the crop only), `sr` or `inpaint`."""

    kind: SampleKind
    scale: int = 1
    gt_size: int = 256
    resize_crop: bool = True
    flip: bool = True
    rotate: bool = True


def category_folders(root: Path) -> list[Path] | None:
    """Sub-folders of a category root (no images at its top level), else None (one category)."""
    if not root.is_dir():
        raise AdaCodeError(f"{root}: not a folder")
    has_images = bool(images_in(root, recursive=False))
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    return folders if folders and not has_images else None


def fingerprint(paths: list[Path], root: Path) -> str:
    """A short digest of the file list, to notice a changed data set on resume."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
    return digest.hexdigest()[:16]


def resized_crop(gt: np.ndarray, spec: SampleSpec, rng: np.random.Generator) -> np.ndarray:
    """The official random shrink (here of the short side, so portrait images keep a side of at
    least gt_size; the official code scales by the height) then a random gt_size crop."""
    if spec.resize_crop:
        short = min(gt.shape[:2])
        target = int(rng.integers(spec.gt_size, short + 1))
        if target != short:
            gt = resize_by(gt, target / short, "bicubic")
    top = int(rng.integers(0, gt.shape[0] - spec.gt_size + 1))
    left = int(rng.integers(0, gt.shape[1] - spec.gt_size + 1))
    return gt[top : top + spec.gt_size, left : left + spec.gt_size]


def hq_crop(gt: np.ndarray, spec: SampleSpec, rng: np.random.Generator) -> np.ndarray:
    """Stages 1-2 (and the inpainting target): resized crop, then flips and rotations."""
    return augment([resized_crop(gt, spec, rng)], rng, flip=spec.flip, rotate=spec.rotate)[0]


def with_holes(gt: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The inpainting input (brush-stroke holes painted white, as the official data) and the
    HxW hole mask."""
    mask = brush_stroke_mask(gt.shape[0], gt.shape[1], rng)
    return np.where(mask[..., None], np.float32(1.0), gt).astype(np.float32), mask


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))


class TrainingImages(Dataset):
    """Samples by stream position: {'gt': (3, S, S)} plus 'lq' for stage 3."""

    def __init__(self, hq: list[Path], spec: SampleSpec, seed: int, lq: list[Path] | None = None):
        self.hq, self.lq, self.spec, self.seed = hq, lq, spec, seed
        self._epoch, self._order = -1, np.arange(0)

    def __len__(self) -> int:
        """Images per epoch."""
        return len(self.hq)

    def order(self, epoch: int) -> np.ndarray:
        if epoch != self._epoch:
            self._epoch = epoch
            self._order = np.random.default_rng((self.seed, epoch)).permutation(len(self.hq))
        return self._order

    def __getitem__(self, position: int) -> dict[str, torch.Tensor]:
        epoch, offset = divmod(position, len(self.hq))
        index = int(self.order(epoch)[offset])
        rng = np.random.default_rng((self.seed, 1_000_003, position))
        try:
            return self._sample(index, rng)
        except ImageError as error:
            if str(self.hq[index]) in str(error):
                raise
            raise ImageError(f"{self.hq[index]}: {error}") from error

    def _sample(self, index: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        spec = self.spec
        # every image was read whole when the data set was checked (`data_check`)
        gt = to_float(read_rgb(self.hq[index], read_before=True))
        options = {"gt_size": spec.gt_size, "flip": spec.flip, "rotate": spec.rotate}
        if spec.kind == "hq":
            return {"gt": _tensor(hq_crop(gt, spec, rng))}
        if self.lq is not None:
            lq = to_float(read_rgb(self.lq[index], read_before=True))
            lq, gt = paired_crop(gt, lq, rng, scale=spec.scale, resize_crop=spec.resize_crop,
                                 **options)
        elif spec.kind == "sr":
            crop = resized_crop(gt, spec, rng)
            lq, gt = bsrgan_pair(crop, spec.scale, rng, resize_crop=False, **options)
        else:
            gt = hq_crop(gt, spec, rng)
            lq, _ = with_holes(gt, rng)
        return {"gt": _tensor(gt), "lq": _tensor(lq)}


class StreamBatches(Sampler[list[int]]):
    """Batches of stream positions for iterations `first`..`last` (1-based) of one rank."""

    def __init__(self, first: int, last: int, batch_size: int, rank: int = 0, world: int = 1):
        self.first, self.last = first, last
        self.batch_size, self.rank, self.world = batch_size, rank, world

    def __iter__(self) -> Iterator[list[int]]:
        for iteration in range(self.first, self.last + 1):
            start = ((iteration - 1) * self.world + self.rank) * self.batch_size
            yield list(range(start, start + self.batch_size))

    def __len__(self) -> int:
        return max(0, self.last - self.first + 1)


def make_loader(
    dataset: TrainingImages, sampler: StreamBatches, workers: int, pin_memory: bool
) -> DataLoader:
    """A DataLoader over the stream; worker processes only change speed, never the samples."""
    return DataLoader(
        dataset, batch_sampler=sampler, num_workers=workers, pin_memory=pin_memory,
        persistent_workers=False, worker_init_fn=_leave_stops_to_the_trainer,
    )


def _leave_stops_to_the_trainer(worker: int) -> None:
    """A Ctrl-C or SIGTERM reaches the loader's workers too (the terminal's process group;
    torchrun signals each worker's group): a worker that died of it would fail the batch the
    trainer fetches next, before the trainer could save the run. The trainer stops them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


@dataclass
class ValidationSample:
    """One held-out image: the network input (1, 3, h, w), the 8-bit reference, and the 8-bit
    result of the task's baseline method (see `train.baselines`) on the same input."""

    name: str
    lq: torch.Tensor
    reference: np.ndarray
    baseline: np.ndarray


def load_validation(
    root: Path, paths: list[Path], kind: SampleKind, scale: int, seed: int,
    lq_paths: list[Path] | None = None,
) -> list[ValidationSample]:
    """Validation inputs, synthesised once with seeds fixed per image so every run sees the same
    (or read from `lq_paths`, the partners of `paths`), each with its baseline result."""
    samples = []
    for index, path in enumerate(paths):
        reference = read_rgb(path)
        rng = np.random.default_rng((seed, 2_000_003, index))
        holes = None
        if lq_paths is not None:
            lq = to_float(read_rgb(lq_paths[index]))
            reference = aligned_pair(reference, lq, scale)
            holes = white_holes(lq) if kind == "inpaint" else None
        elif kind == "sr":
            lq, hq = degrade_bsrgan(to_float(reference), scale, rng)
            reference = to_bit_depth(hq, 8)
        elif kind == "inpaint":
            lq, holes = with_holes(to_float(reference), rng)
        else:
            lq = to_float(reference)
        baseline = (bicubic_upscale(lq, scale) if kind == "sr"
                    else mean_fill(lq, holes) if holes is not None else reference)
        name = path.relative_to(root).with_suffix("").as_posix()
        samples.append(ValidationSample(name, _tensor(lq)[None], reference, baseline))
    return samples


def baseline_name(kind: SampleKind) -> str:
    """How the validation baseline of a sample kind is made, for logs and the console."""
    return BASELINE_NAMES[kind]
