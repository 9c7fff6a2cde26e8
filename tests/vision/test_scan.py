"""The pure selective scan against a plain per-position loop, and the dispatch to mamba_ssm's kernel."""

from __future__ import annotations

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from toonlab.vision.scan import pick_backend, selective_scan

INTERFACE = "mamba_ssm.ops.selective_scan_interface"


def naive_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False):
    """The S6 recurrence written out position by position, in the inputs' dtype."""
    if delta_bias is not None:
        delta = delta + delta_bias[None, :, None]
    if delta_softplus:
        delta = F.softplus(delta)
    batch, dim, length = u.shape
    h = u.new_zeros(batch, dim, A.shape[1])
    ys = []
    for t in range(length):
        dt = delta[:, :, t, None]  # (b, d, 1)
        h = torch.exp(dt * A) * h + dt * B[:, None, :, t] * u[:, :, t, None]
        ys.append((h * C[:, None, :, t]).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D[None, :, None] * u
    if z is not None:
        y = y * F.silu(z)
    return y


def make_inputs(batch=2, dim=5, state=4, length=9, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype).requires_grad_()

    A = (-torch.exp(torch.randn(dim, state, generator=g, dtype=dtype))).requires_grad_()
    return dict(
        u=rand(batch, dim, length),
        delta=rand(batch, dim, length),
        A=A,
        B=rand(batch, state, length),
        C=rand(batch, state, length),
        D=rand(dim),
        z=rand(batch, dim, length),
        delta_bias=rand(dim),
    )


@pytest.mark.parametrize("backend", ["loop", "parallel"])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 2e-5)])
@pytest.mark.parametrize("length", [1, 2, 9, 33])
def test_scan_matches_naive_loop_forward_and_gradients(backend, dtype, tol, length):
    inputs = make_inputs(length=length, dtype=dtype)
    ours = selective_scan(**inputs, delta_softplus=True, backend=backend)
    ref = naive_scan(**inputs, delta_softplus=True)
    assert ours.dtype == dtype and ours.shape == inputs["u"].shape
    torch.testing.assert_close(ours, ref, rtol=tol, atol=tol)
    weights = torch.randn_like(ref)
    names = list(inputs)
    # At length 1 the decay multiplies the zero initial state: A's gradient is zero (unused by the doubling scan).
    grads_ours = torch.autograd.grad((ours * weights).sum(), [inputs[k] for k in names], materialize_grads=True)
    grads_ref = torch.autograd.grad((ref * weights).sum(), [inputs[k] for k in names], materialize_grads=True)
    for name, a, b in zip(names, grads_ours, grads_ref, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=f"gradient of {name}")


def test_scan_optional_terms_and_last_state():
    inputs = make_inputs(length=6)
    plain = {k: inputs[k] for k in ("u", "delta", "A", "B", "C")}
    y, last = selective_scan(**plain, return_last_state=True, backend="parallel")
    torch.testing.assert_close(y, naive_scan(**plain))
    # The last state alone reproduces the last output: y_l = C_l . h_l.
    torch.testing.assert_close(y[:, :, -1], (last * plain["C"][:, None, :, -1]).sum(-1))


def test_scan_fp32_stays_finite_with_large_decays():
    """Steps with delta * A ~ -80 overflow a scan over cumulative sums of logs; the doubling scan multiplies decays."""
    inputs = make_inputs(length=64, dtype=torch.float32)
    with torch.no_grad():
        inputs["delta"].fill_(5.0)
    y = selective_scan(**inputs, backend="parallel")
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, naive_scan(**inputs), rtol=1e-4, atol=1e-4)


def test_scan_is_causal():
    inputs = make_inputs(length=12)
    base = selective_scan(**inputs, backend="parallel").detach()
    with torch.no_grad():
        inputs["u"][:, :, 7] += 1.0
    moved = selective_scan(**inputs, backend="parallel").detach()
    assert torch.equal(moved[:, :, :7], base[:, :, :7])
    assert (moved[:, :, 7:] - base[:, :, 7:]).abs().max() > 1e-3


def test_scan_rejects_bad_shapes_and_backends():
    inputs = make_inputs()
    with pytest.raises(ValueError, match="shapes"):
        selective_scan(inputs["u"], inputs["delta"][:, :, :-1], inputs["A"], inputs["B"], inputs["C"])
    with pytest.raises(ValueError, match="unknown scan backend"):
        pick_backend("cpu", "fast")


@pytest.fixture
def fake_mamba_ssm(monkeypatch):
    """A stand-in ``mamba_ssm`` package whose kernel records its arguments."""
    calls = []

    def selective_scan_fn(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False, last=False):
        calls.append((u, delta, A, B, C, D, z, delta_bias, delta_softplus, last))
        return torch.full_like(u, 7.0)

    package, ops, interface = (types.ModuleType(n) for n in ("mamba_ssm", "mamba_ssm.ops", INTERFACE))
    interface.selective_scan_fn = selective_scan_fn
    package.ops, ops.selective_scan_interface = ops, interface
    for module in (package, ops, interface):
        monkeypatch.setitem(sys.modules, module.__name__, module)
    return calls


def test_dispatcher_takes_the_kernel_on_cuda_when_it_imports(fake_mamba_ssm, monkeypatch):
    assert pick_backend("cuda") == "kernel"
    assert pick_backend("cpu") == "loop"  # the kernel is CUDA-only: CPU tensors keep the pure scan
    assert pick_backend("cuda", "parallel") == "parallel"
    inputs = make_inputs()
    out = selective_scan(**inputs, delta_softplus=True, backend="kernel")
    assert torch.equal(out, torch.full_like(inputs["u"], 7.0))
    (call,) = fake_mamba_ssm
    assert call[0] is inputs["u"] and call[7] is inputs["delta_bias"] and call[8] is True
    monkeypatch.setitem(sys.modules, INTERFACE, None)  # the package is absent: import fails
    assert pick_backend("cuda") == "parallel"
    with pytest.raises(RuntimeError, match="mamba-ssm"):
        selective_scan(**inputs, backend="kernel")
