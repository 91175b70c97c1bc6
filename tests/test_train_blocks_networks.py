"""Discriminator key layout, and VGG / LPIPS loading from random-weight files in both formats."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import torch

from adacode_cli.errors import CheckpointError
from adacode_cli.train.discriminator import UNetDiscriminatorSN
from adacode_cli.train.losses import LPIPS
from adacode_cli.train.vgg import VGGFeatures, layer_names
from process_helpers import FIXTURES
from train_fakes import lin_state, vgg_state, write

LAYOUT = FIXTURES / "official_layout.json.gz"


def layout(module: torch.nn.Module) -> dict[str, list[int]]:
    return {key: list(value.shape) for key, value in module.state_dict().items()}


def test_discriminator_state_dict_matches_official_layout() -> None:
    official = json.loads(gzip.decompress(LAYOUT.read_bytes()))["models"]["discriminator"]
    assert layout(UNetDiscriminatorSN(3)) == official


def test_discriminator_gives_per_pixel_logits_and_loads_strictly() -> None:
    torch.manual_seed(0)
    net = UNetDiscriminatorSN(3)
    assert net(torch.rand(2, 3, 16, 24)).shape == (2, 1, 16, 24)
    other = UNetDiscriminatorSN(3)
    other.load_state_dict(net.state_dict())  # strict round trip through the official keys
    net.eval()
    other.eval()
    x = torch.rand(1, 3, 16, 16)
    torch.testing.assert_close(net(x), other(x))


def test_layer_names_follow_torchvision_indices() -> None:
    names = layer_names("vgg19")
    assert len(names) == 37 and names.index("relu4_4") == 26 and names[-1] == "pool5"
    assert layer_names("vgg16").index("relu5_3") == 29


def test_vgg19_loads_torchvision_keys_up_to_the_deepest_layer(tmp_path: Path) -> None:
    state = vgg_state("vgg19")  # the whole feature stack: deeper layers are ignored
    vgg = VGGFeatures("vgg19", ["relu4_4"], write(state, tmp_path / "vgg19.safetensors"))
    assert set(vgg.state_dict()) == {k for k in state if k.startswith("features.")
                                     and int(k.split(".")[1]) <= 25}
    assert not any(p.requires_grad for p in vgg.parameters())
    out = vgg(torch.rand(1, 3, 16, 16))
    assert list(out) == ["relu4_4"] and out["relu4_4"].shape == (1, 512, 2, 2)
    assert (out["relu4_4"] >= 0).all()
    torch.testing.assert_close(vgg.features[25].weight, state["features.25.weight"])


def test_vgg_loads_pth_files_and_returns_every_requested_layer(tmp_path: Path) -> None:
    state = vgg_state("vgg16", up_to=7)
    vgg = VGGFeatures("vgg16", ["relu2_2", "relu1_2"], write(state, tmp_path / "vgg16.pth"))
    out = vgg(torch.rand(1, 3, 8, 8))
    assert out["relu1_2"].shape == (1, 64, 8, 8) and out["relu2_2"].shape == (1, 128, 4, 4)
    torch.testing.assert_close(vgg.features[7].bias, state["features.7.bias"])


def test_vgg_normalises_with_imagenet_statistics(tmp_path: Path) -> None:
    path = write(vgg_state("vgg16", up_to=2), tmp_path / "vgg16.safetensors")
    with_norm = VGGFeatures("vgg16", ["conv1_1"], path)
    without = VGGFeatures("vgg16", ["conv1_1"], path, imagenet_norm=False)
    image = torch.rand(1, 3, 8, 8)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    expected = without((image - mean) / std)["conv1_1"]
    torch.testing.assert_close(with_norm(image)["conv1_1"], expected)


def test_vgg_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="not found"):
        VGGFeatures("vgg19", ["relu4_4"], tmp_path / "absent.pth")


def test_vgg_wrong_architecture_file_is_refused(tmp_path: Path) -> None:
    vgg16 = write(vgg_state("vgg16", up_to=28), tmp_path / "vgg16.safetensors")
    with pytest.raises(CheckpointError, match=r"missing .*features\.16\."):
        VGGFeatures("vgg19", ["relu4_4"], vgg16)
    renamed = {key.replace("features", "body"): v for key, v in vgg_state("vgg16", up_to=2).items()}
    with pytest.raises(CheckpointError, match="missing"):
        VGGFeatures("vgg16", ["relu1_2"], write(renamed, tmp_path / "renamed.safetensors"))


def test_vgg_misshaped_tensor_and_unknown_key_are_refused(tmp_path: Path) -> None:
    state = vgg_state("vgg16", up_to=2)
    state["features.2.weight"] = torch.zeros(64, 64, 1, 1)
    with pytest.raises(CheckpointError, match="shape"):
        VGGFeatures("vgg16", ["relu1_2"], write(state, tmp_path / "bad.safetensors"))
    state = {**vgg_state("vgg16", up_to=2), "lin0.model.1.weight": torch.zeros(1, 64, 1, 1)}
    with pytest.raises(CheckpointError, match="unexpected"):
        VGGFeatures("vgg16", ["relu1_2"], write(state, tmp_path / "extra.safetensors"))


def test_vgg_truncated_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write(vgg_state("vgg16", up_to=2), tmp_path / "cut.pth")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="unreadable or truncated"):
        VGGFeatures("vgg16", ["relu1_2"], path)


def test_vgg_unknown_layer_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="relu9_9"):
        VGGFeatures("vgg16", ["relu9_9"], tmp_path / "unused.pth")


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("lpips")
    return (write(vgg_state("vgg16"), folder / "vgg16.safetensors"),
            write(lin_state(), folder / "vgg.pth"))


@pytest.fixture(scope="module")
def lpips(lpips_files: tuple[Path, Path]) -> LPIPS:
    return LPIPS(*lpips_files)


def test_lpips_is_zero_for_identical_and_positive_for_different(lpips: LPIPS) -> None:
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)  # 16 px still reaches relu5_3 (1x1)
    same = lpips(x, x)
    assert same.shape == (2,) and torch.equal(same, torch.zeros(2))
    different = lpips(x, torch.rand(2, 3, 16, 16))
    assert (different > 0).all()
    assert (lpips(x, x * 0.9 + 0.05) < different).all()  # a closer image is nearer


def test_lpips_keys_are_torchvision_vgg16_plus_original_lin_layers(lpips: LPIPS) -> None:
    keys = set(lpips.state_dict())
    assert {f"lin{i}.model.1.weight" for i in range(5)} <= keys
    vgg_keys = {f"net.{key}" for key in vgg_state("vgg16", up_to=28)}
    assert vgg_keys - {"net.classifier.6.bias"} <= keys
    torch.testing.assert_close(lpips.lin3.model[1].weight, lin_state()["lin3.model.1.weight"])


def test_lpips_gradients_flow_to_the_input(lpips: LPIPS) -> None:
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    lpips(x, torch.rand(1, 3, 16, 16)).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_lpips_refuses_missing_or_mismatched_lin_file(
    lpips_files: tuple[Path, Path], tmp_path: Path,
) -> None:
    vgg16, _ = lpips_files
    with pytest.raises(CheckpointError, match="not found"):
        LPIPS(vgg16, tmp_path / "absent.pth")
    wrong = {key.replace(".model.1.", ".model.0."): v for key, v in lin_state().items()}
    with pytest.raises(CheckpointError, match=r"missing .*lin0\.model\.1\.weight"):
        LPIPS(vgg16, write(wrong, tmp_path / "wrong.pth"))
