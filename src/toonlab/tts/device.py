"""Where training and synthesis run: the `--device` choice, bf16 autocast on GPU, and torch.distributed
(NCCL on GPU, gloo on CPU) when launched by `torchrun` (WORLD_SIZE set)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist


def resolve_device(name: str = "cpu") -> torch.device:
    """ "cpu", "cuda", "cuda:N" or "auto" (cuda when available) -> a device; asking for CUDA without one is a
    clear ValueError."""
    name = (name or "cpu").strip().lower()
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as exc:
        raise ValueError(f"unknown device {name!r}; expected cpu, cuda, cuda:N or auto") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"--device {name} asked for, but CUDA is not available (torch {torch.__version__}, "
                f"{torch.cuda.device_count()} GPUs visible); use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} GPU(s) visible")
    elif device.type != "cpu":
        raise ValueError(f"unsupported device {name!r}; expected cpu, cuda, cuda:N or auto")
    return device


@contextlib.contextmanager
def autocast(device: torch.device) -> Iterator[None]:
    """bf16 autocast on CUDA; full precision on CPU."""
    if device.type == "cuda":
        with torch.autocast("cuda", dtype=torch.bfloat16):
            yield
    else:
        yield


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def all_true(self, flag: bool) -> bool:
        """True when `flag` holds on every rank (one small all-reduce)."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device if dist.get_backend() == "nccl" else "cpu")
        dist.all_reduce(t, op=dist.ReduceOp.MIN)
        return bool(t.item())

    def broadcast_flag(self, flag: bool) -> bool:
        """Rank 0's `flag` on every rank."""
        if self.world == 1:
            return flag
        t = torch.tensor([int(flag)], device=self.device if dist.get_backend() == "nccl" else "cpu")
        dist.broadcast(t, 0)
        return bool(t.item())


def init_distributed(device: torch.device) -> Dist:
    """Initialise torch.distributed under torchrun (WORLD_SIZE > 1): NCCL with one GPU per local rank on CUDA,
    gloo on CPU. Returns the rank, world size and this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist(device=device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_WORLD_SIZE", world)), device)
