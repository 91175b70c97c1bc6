"""Training data: samples depend on seed and position only, ranks share epochs without overlap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from adacode_cli.errors import AdaCodeError
from adacode_cli.images.depth import to_bit_depth
from adacode_cli.images.encode import write_image
from adacode_cli.train.data import (
    SampleSpec,
    StreamBatches,
    TrainingImages,
    load_validation,
    make_loader,
)
from adacode_cli.train.data_check import DataCheck, check_training_images, partners
from adacode_cli.train.image_files import list_images, read_rgb
from train_helpers import make_images


def _batches(dataset: TrainingImages, first: int, last: int, workers: int) -> list[torch.Tensor]:
    loader = make_loader(dataset, StreamBatches(first, last, 2), workers, pin_memory=False)
    return [batch["lq"] for batch in loader]


def test_batches_do_not_depend_on_workers_or_on_where_a_run_resumes(tmp_path) -> None:
    images = list_images(make_images(tmp_path / "hq", count=3))
    dataset = TrainingImages(images, SampleSpec("sr", 2, gt_size=64), seed=5)
    straight = _batches(dataset, 1, 4, workers=0)
    resumed = _batches(dataset, 3, 4, workers=2)
    assert all(torch.equal(a, b) for a, b in zip(straight[2:], resumed, strict=True))
    assert straight[0].shape == (2, 3, 32, 32)
    other_seed = TrainingImages(images, SampleSpec("sr", 2, gt_size=64), seed=6)
    assert not torch.equal(_batches(other_seed, 1, 1, workers=0)[0], straight[0])


def test_ranks_split_every_epoch_without_overlap(tmp_path) -> None:
    images = list_images(make_images(tmp_path / "hq", count=8))
    dataset = TrainingImages(images, SampleSpec("hq", gt_size=64), seed=0)
    seen = []
    for rank in range(2):
        for positions in StreamBatches(1, 2, batch_size=2, rank=rank, world=2):
            seen += [int(dataset.order(p // 8)[p % 8]) for p in positions]
    assert sorted(seen) == list(range(8))  # 2 iterations x 2 ranks x 2 = one epoch, each once


def test_inpainting_input_has_white_holes_over_the_crop(tmp_path) -> None:
    images = list_images(make_images(tmp_path / "hq", count=2))
    sample = TrainingImages(images, SampleSpec("inpaint", gt_size=64), seed=1)[0]
    lq, gt = sample["lq"], sample["gt"]
    assert lq.shape == gt.shape == (3, 64, 64)
    holes = (lq != gt).any(dim=0)
    assert holes.any() and torch.all(lq[:, holes] == 1.0)


@pytest.mark.parametrize(("kind", "scale"), [("sr", 4), ("inpaint", 1), ("hq", 1)])
def test_validation_inputs_are_the_same_every_time(tmp_path, kind: str, scale: int) -> None:
    root = make_images(tmp_path / "val", count=2, size=70)
    paths = list_images(root)
    first = load_validation(root, paths, kind, scale, seed=3)  # type: ignore[arg-type]
    again = load_validation(root, paths, kind, scale, seed=3)  # type: ignore[arg-type]
    for a, b in zip(first, again, strict=True):
        assert torch.equal(a.lq, b.lq) and np.array_equal(a.reference, b.reference)
        assert a.reference.shape[0] == a.lq.shape[2] * scale


def test_paired_low_quality_folders_are_matched_by_name_and_scale(tmp_path) -> None:
    hq_root = make_images(tmp_path / "hq", count=2)
    lq_root = tmp_path / "lq"
    lq_root.mkdir()
    for path in sorted(hq_root.iterdir()):
        with Image.open(path) as image:
            image.resize((36, 36), Image.BICUBIC).save(lq_root / f"{path.stem}.jpg")
    hq = list_images(hq_root)
    check = DataCheck()
    lq = partners(check, hq_root, hq, lq_root, 2, "--lq")
    assert [p.stem for p in lq] == [p.stem for p in hq] and check.problems == []
    partners(check, hq_root, hq, lq_root, 4, "--lq")
    assert len(check.problems) == 2 and "36x36 is not 1/4 of" in check.problems[0]
    sample = TrainingImages(hq, SampleSpec("sr", 2, gt_size=64), seed=0, lq=lq)[0]
    assert sample["lq"].shape == (3, 32, 32) and sample["gt"].shape == (3, 64, 64)


def test_any_image_file_is_read_as_8_bit_rgb(tmp_path) -> None:
    rng = np.random.default_rng(0)
    deep = rng.integers(0, 65536, (6, 5, 3), dtype=np.uint16)
    write_image(tmp_path / "deep.png", deep, bit_depth=16)
    grey = rng.integers(0, 256, (6, 5), dtype=np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    rgba = rng.integers(0, 256, (6, 5, 4), dtype=np.uint8)
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    Image.fromarray(grey).convert("P").save(tmp_path / "palette.gif")
    (tmp_path / ".adacode-tmp-x.png").write_bytes((tmp_path / "grey.png").read_bytes())
    (tmp_path / "notes.txt").write_text("not an image")

    paths = list_images(tmp_path)
    assert [p.name for p in paths] == ["alpha.png", "deep.png", "grey.png", "palette.gif"]
    pixels = {p.stem: read_rgb(p) for p in paths}
    assert all(a.dtype == np.uint8 and a.shape == (6, 5, 3) for a in pixels.values())
    np.testing.assert_array_equal(pixels["deep"], to_bit_depth(deep, 8))
    np.testing.assert_array_equal(pixels["alpha"], rgba[..., :3])
    for name in ("grey", "palette"):
        np.testing.assert_array_equal(pixels[name], np.repeat(grey[..., None], 3, axis=2))


def test_folders_without_images_are_refused(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(AdaCodeError, match="no images found"):
        list_images(tmp_path)
    with pytest.raises(AdaCodeError, match="not a folder"):
        list_images(tmp_path / "notes.txt")


def test_size_checks_see_photos_upright_as_training_reads_them(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 80 wide x 64 high, shown (and trained on) 64 wide x 80 high
    Image.new("RGB", (80, 64)).save(tmp_path / "photo.jpg", exif=exif.tobytes())
    Image.new("RGB", (32, 40)).save(tmp_path / "photo.png")
    hq = [tmp_path / "photo.jpg"]
    assert read_rgb(hq[0]).shape == (80, 64, 3)
    lq_root = tmp_path / "lq"
    lq_root.mkdir()
    (tmp_path / "photo.png").rename(lq_root / "photo.png")
    check = DataCheck()
    partners(check, tmp_path, hq, lq_root, 2, "--lq")
    check_training_images(check, hq, 64)
    assert check.problems == []
    check_training_images(check, hq, 72)
    assert check.problems == [f"{hq[0]}: 64x80 is smaller than the 72px training crop "
                              "(data.gt_size)"]


def test_inpainting_validation_baseline_fills_the_holes_with_the_mean_colour(tmp_path) -> None:
    root = make_images(tmp_path / "val", count=1, size=48)
    [sample] = load_validation(root, list_images(root), "inpaint", 1, seed=0)
    lq = sample.lq[0].permute(1, 2, 0).numpy()
    holes = np.all(lq == 1.0, axis=2)
    assert holes.any() and not holes.all()
    expected = np.where(holes[..., None], lq[~holes].mean(axis=0), lq)
    np.testing.assert_array_equal(sample.baseline, to_bit_depth(expected.astype(np.float32), 8))
    [identity] = load_validation(root, list_images(root), "hq", 1, seed=0)
    np.testing.assert_array_equal(identity.baseline, identity.reference)
