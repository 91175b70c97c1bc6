"""Data-parallel training through torch.distributed, and the same code path for one process.

Under `torchrun --nproc-per-node N -m adacode_cli train ...` every process trains a replica on
its share of each batch; gradients are averaged by DistributedDataParallel (nccl between GPUs,
gloo on CPUs). Without torchrun there is one process and nothing is wrapped. Only rank 0 writes
files and prints.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from adacode_cli.engine import device as engine_device

# A validation pass on rank 0 holds the other ranks at their next collective for its duration.
COLLECTIVE_TIMEOUT = timedelta(hours=2)


@dataclass
class DistContext:
    """Where this process sits: rank, world size and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def wrap(self, module: nn.Module) -> nn.Module:
        """DistributedDataParallel around `module` when there are replicas to keep in step."""
        if not self.distributed or not any(p.requires_grad for p in module.parameters()):
            return module
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=device_ids)

    def mean(self, values: dict[str, float]) -> dict[str, float]:
        """Average scalars over all processes (for logging)."""
        if not self.distributed or not values:
            return values
        tensor = torch.tensor(list(values.values()), dtype=torch.float64, device=self.device)
        dist.all_reduce(tensor)
        return dict(zip(values, (tensor / self.world_size).tolist(), strict=True))

    def gather(self, text: str) -> list[str]:
        """Every process's `text`, in rank order."""
        if not self.distributed:
            return [text]
        out: list[str] = [""] * self.world_size
        dist.all_gather_object(out, text)
        return out

    def anyone(self, flag: bool) -> bool:
        """Whether `flag` holds on any process: a stop that every rank must take at the same
        iteration (a rank stopping alone would leave the others waiting in a collective)."""
        if not self.distributed:
            return flag
        tensor = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return bool(tensor.item())

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """`auto` is this process's GPU when there is one, else the CPU (never MPS unasked)."""
    return engine_device.resolve_device(spec, auto_mps=False, cuda_index=local_rank)


def start(device_spec: str) -> DistContext:
    """Join the torchrun process group if there is one (WORLD_SIZE > 1), else run alone."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        if device.type == "cuda":
            torch.cuda.set_device(device)
        dist.init_process_group(backend, timeout=COLLECTIVE_TIMEOUT)
    return DistContext(rank=rank, world_size=world, local_rank=local_rank, device=device)


def stop(context: DistContext) -> None:
    if context.distributed and dist.is_initialized():
        dist.destroy_process_group()


def bare(module: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (or the network itself)."""
    return module.module if hasattr(module, "module") else module


def digest(module: nn.Module) -> str:
    """A short hash of every tensor of `module`: equal replicas give equal digests."""
    hasher = hashlib.sha256()
    for key, tensor in sorted(module.state_dict().items()):
        hasher.update(key.encode())
        hasher.update(tensor.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return hasher.hexdigest()[:16]
