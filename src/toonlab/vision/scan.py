"""Selective scan (the S6 recurrence of Mamba, Gu & Dao 2023) in pure PyTorch, with mamba_ssm's kernel as fast path.

    h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t        y_t = C_t . h_t + D * u_t      (y *= silu(z))

Shapes follow ``mamba_ssm.ops.selective_scan_interface.selective_scan_fn``: u, delta, z (b, d, l); A (d, n);
B, C (b, n, l); D, delta_bias (d,). Two pure forms compute the same recurrence:

- ``"loop"``: one step per position (the reference; l small kernels, little memory).
- ``"parallel"``: a Hillis-Steele doubling scan over the whole sequence, ceil(log2 l) vectorised steps. It multiplies
  decays (all <= 1) and never divides by them, so it stays exact in fp32 (a cumulative-sum-of-logs scan does not).

``"auto"`` takes mamba_ssm's CUDA kernel when the inputs are on a GPU and the package imports. Otherwise it takes
``"loop"`` on CPU, where it measured 3-5x faster than ``"parallel"`` (``benchmarks/vision_bench.py``: the doubling
scan moves ~log2(l) times more memory), and ``"parallel"`` on a GPU, where 9 launches beat 393.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
import torch.nn.functional as F

BACKENDS = ("auto", "kernel", "parallel", "loop")
_KERNEL_MODULE = "mamba_ssm.ops.selective_scan_interface"


def _kernel() -> Callable | None:
    """mamba_ssm's ``selective_scan_fn`` if the package imports, else None."""
    try:
        return importlib.import_module(_KERNEL_MODULE).selective_scan_fn
    except (ImportError, AttributeError):
        return None


def pick_backend(device_type: str, backend: str = "auto") -> str:
    """The backend a call on ``device_type`` runs with: the kernel only on CUDA, and only where it imports."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown scan backend {backend!r}; choose one of {BACKENDS}")
    if backend != "auto":
        return backend
    if device_type != "cuda":
        return "loop"
    return "kernel" if _kernel() is not None else "parallel"


def _discretise(u, delta, A, B, delta_bias, delta_softplus):
    """Decays and inputs of the recurrence, in fp32 or wider: both (b, d, l, n)."""
    dtype = torch.promote_types(u.dtype, torch.float32)
    delta = delta.to(dtype)
    if delta_bias is not None:
        delta = delta + delta_bias.to(dtype)[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    decay = torch.exp(delta.unsqueeze(-1) * A.to(dtype)[None, :, None, :])  # (b, d, l, n)
    drive = (delta * u.to(dtype)).unsqueeze(-1) * B.to(dtype).transpose(1, 2).unsqueeze(1)  # (b, d, l, n)
    return decay, drive


def _states_loop(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """All states h_1..h_l, one step at a time: (b, d, l, n)."""
    h = torch.zeros_like(drive[:, :, 0])  # (b, d, n)
    states = []
    for decay_t, drive_t in zip(decay.unbind(2), drive.unbind(2), strict=True):  # views: cheap backward
        h = decay_t * h + drive_t
        states.append(h)
    return torch.stack(states, dim=2)


def _states_parallel(decay: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
    """All states by doubling: after the step with offset k, position t holds the scan over (t - 2k, t]."""
    length, k = drive.shape[2], 1
    while k < length:
        drive = torch.cat([drive[:, :, :k], drive[:, :, k:] + decay[:, :, k:] * drive[:, :, :-k]], dim=2)
        decay = torch.cat([decay[:, :, :k], decay[:, :, k:] * decay[:, :, :-k]], dim=2)
        k *= 2
    return drive


def selective_scan(
    u: torch.Tensor,
    delta: torch.Tensor,
    A: torch.Tensor,
    B: torch.Tensor,
    C: torch.Tensor,
    D: torch.Tensor | None = None,
    z: torch.Tensor | None = None,
    delta_bias: torch.Tensor | None = None,
    delta_softplus: bool = False,
    return_last_state: bool = False,
    backend: str = "auto",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """y (b, d, l) in u's dtype (and the last state (b, d, n) if ``return_last_state``), as ``selective_scan_fn``."""
    if u.dim() != 3 or delta.shape != u.shape or B.dim() != 3 or C.shape != B.shape:
        raise ValueError(f"shapes: u, delta (b, d, l), B, C (b, n, l); got {tuple(u.shape)}, {tuple(B.shape)}")
    chosen = pick_backend(u.device.type, backend)
    if chosen == "kernel":
        kernel = _kernel()
        if kernel is None:
            raise RuntimeError("the 'kernel' scan backend needs mamba_ssm: pip install mamba-ssm (CUDA only)")
        return kernel(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)
    decay, drive = _discretise(u, delta, A, B, delta_bias, delta_softplus)
    states = (_states_loop if chosen == "loop" else _states_parallel)(decay, drive)  # (b, d, l, n)
    y = torch.einsum("bdln,bnl->bdl", states, C.to(states.dtype))
    if D is not None:
        y = y + D.to(y.dtype)[None, :, None] * u.to(y.dtype)
    if z is not None:
        y = y * F.silu(z.to(y.dtype))
    y = y.to(u.dtype)
    return (y, states[:, :, -1]) if return_last_state else y
