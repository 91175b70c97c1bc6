"""One dataclass holds every hyper-parameter of the AdaCode networks.

The defaults are the official ones (gt resolution 256 with a 32x32 latent, five basis codebooks of
512/256/512/256/256 entries x 256 dims, GroupNorm 32 groups eps 1e-6, SiLU, Swin 4 RSTB x 6 blocks,
dim 256, 8 heads, window 8). Smaller variants (tests, the `tiny` training preset) only change knobs.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Literal

Stage = Literal["vqgan", "recon", "restore"]
Task = Literal["vqgan", "recon", "sr", "inpaint"]

OFFICIAL_CODEBOOK_SIZES = (512, 256, 512, 256, 256)


@dataclass(frozen=True)
class AdaCodeConfig:
    """Architecture of one AdaCode network.

    `stage` picks the network family: "vqgan" (stage 1, one codebook and its semantic head),
    "recon" (stage 2, HQ encoder + N frozen codebooks + weight predictor + decoder) or
    "restore" (stage 3, the LQ encoder with Swin layers and residual links into the decoder).
    `channels[i]` is the feature width at 2**i times the latent resolution (the official
    channel table 32->256, 64->256, 128->128, 256->64), so `len(channels) - 1` is the number of
    2x steps between image and latent.
    """

    stage: Stage = "restore"
    scale: int = 4
    codebook_sizes: tuple[int, ...] = OFFICIAL_CODEBOOK_SIZES
    codebook_dims: tuple[int, ...] = (256,) * 5
    channels: tuple[int, ...] = (256, 256, 128, 64)
    in_channels: int = 3
    norm_groups: int = 32
    norm_eps: float = 1e-6
    swin_layers: int = 4
    swin_depth: int = 6
    swin_heads: int = 8
    window_size: int = 8
    mlp_ratio: float = 4.0
    use_residual: bool = True
    weight_softmax: bool = False
    semantic_channels: int = 512

    def __post_init__(self) -> None:
        if len(self.codebook_sizes) != len(self.codebook_dims) or not self.codebook_sizes:
            raise ValueError("codebook_sizes and codebook_dims must be non-empty and equally long")
        if self.stage != "restore" and self.scale != 1:
            object.__setattr__(self, "scale", 1)
        if self.scale not in (1, 2, 4) or self.scale >= 2**self.levels:
            raise ValueError(f"unsupported scale {self.scale} for {self.levels} levels")
        if self.stage == "vqgan" and len(self.codebook_sizes) != 1:
            raise ValueError("a stage-1 VQGAN has exactly one codebook")
        for width in self.channels:
            if width % self.norm_groups:
                raise ValueError(f"width {width} is not divisible by {self.norm_groups} groups")
        if self.channels[0] % self.swin_heads:
            raise ValueError("the latent width must be divisible by the number of Swin heads")

    @property
    def levels(self) -> int:
        """Number of 2x resolution steps between the HQ image and the latent grid."""
        return len(self.channels) - 1

    @property
    def task(self) -> Task:
        """The user-facing task this network performs."""
        if self.stage == "restore":
            return "sr" if self.scale > 1 else "inpaint"
        return self.stage

    @property
    def num_codebooks(self) -> int:
        return len(self.codebook_sizes)

    @property
    def input_levels(self) -> int:
        """Resolution level of the network input (the LQ image sits `log2(scale)` levels lower)."""
        return self.levels - (self.scale.bit_length() - 1)

    @property
    def pad_multiple(self) -> int:
        """Input size multiple of the official inference padding (32 for x2, 16 for x4, 64 else).

        The official rule is `8 // scale * 8`: the image-to-latent factor divided by the scale,
        times the Swin window, so that the latent grid is a whole number of windows.
        """
        return (2**self.levels // self.scale) * self.window_size

    @property
    def latent_factor(self) -> int:
        """Input pixels per latent pixel along one axis."""
        return 2**self.levels // self.scale

    @classmethod
    def official(cls, task: Task, scale: int = 1) -> AdaCodeConfig:
        """The configuration of the released networks for `task`."""
        if task == "sr":
            return cls(stage="restore", scale=scale)
        if task == "inpaint":
            return cls(stage="restore", scale=1)
        if task == "recon":
            return cls(stage="recon", scale=1)
        return cls(stage="vqgan", scale=1, codebook_sizes=(512,), codebook_dims=(256,))

    @classmethod
    def tiny(cls, task: Task, scale: int = 1, codebooks: int = 2) -> AdaCodeConfig:
        """A few-hundred-kilobyte variant with the same structure, for tests and CPU training."""
        sizes = (32,) if task == "vqgan" else tuple(16 + 8 * i for i in range(codebooks))
        base = cls.official(task, scale)
        return dataclasses.replace(
            base,
            codebook_sizes=sizes,
            codebook_dims=(16,) * len(sizes),
            channels=(32, 32, 32, 32),
            swin_layers=1,
            swin_depth=2,
            swin_heads=2,
            mlp_ratio=2.0,
            semantic_channels=32 if task == "vqgan" else base.semantic_channels,
        )

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["task"] = self.task
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaCodeConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("codebook_sizes", "codebook_dims", "channels"):
            if key in values:
                values[key] = tuple(int(v) for v in values[key])
        return cls(**values)
