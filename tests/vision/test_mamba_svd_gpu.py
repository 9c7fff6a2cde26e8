"""CUDA paths of the scan, VideoMamba and SVD (gpu marker: run by benchmarks/vision_gpu_smoke.sh on a lent GPU)."""

from __future__ import annotations

import pytest
import torch

from toonlab.vision.mamba import VideoMambaClassifier, videomamba_config
from toonlab.vision.scan import _kernel, pick_backend, selective_scan

pytestmark = pytest.mark.gpu


@pytest.fixture
def cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device("cuda")


@pytest.mark.parametrize("length", [1, 64, 393])
def test_kernel_matches_the_pure_scan(cuda, length):
    if _kernel() is None:
        pytest.skip("mamba_ssm is not installed")
    assert pick_backend("cuda") == "kernel"
    g = torch.Generator().manual_seed(0)
    b, d, n = 2, 64, 16
    tensors = [torch.randn(*s, generator=g) for s in ((b, d, length), (b, d, length))]
    A = -torch.exp(torch.randn(d, n, generator=g))
    B, C, z = torch.randn(b, n, length, generator=g), torch.randn(b, n, length, generator=g), tensors[0].clone()
    D, bias = torch.randn(d, generator=g), torch.randn(d, generator=g)
    args = [t.to(cuda).requires_grad_() for t in (*tensors, A, B, C, D, z, bias)]
    outs, grads = [], []
    for backend in ("kernel", "parallel"):
        y = selective_scan(*args[:5], D=args[5], z=args[6], delta_bias=args[7], delta_softplus=True, backend=backend)
        outs.append(y)
        grads.append(torch.autograd.grad(y.square().sum(), args, materialize_grads=True))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-3, atol=1e-3)
    for a, c in zip(*grads, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-2, atol=1e-2)


def test_videomamba_trains_on_cuda_in_bf16(cuda):
    config = videomamba_config("tiny")
    torch.manual_seed(0)
    model = VideoMambaClassifier(config, num_classes=3).to(cuda)
    clips = torch.randn(4, config.num_frames, 3, config.img_size, config.img_size, device=cuda)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(clips), torch.arange(4, device=cuda) % 3)
    loss.backward()
    assert torch.isfinite(loss) and model.backbone.blocks[0].mixer.backward_scan.A_log.grad.abs().sum() > 0


def test_svd_training_step_on_cuda(cuda):
    pytest.importorskip("diffusers")
    from toonlab.vision.svd import SVDBatch, select_trainable, tiny_svd, training_loss

    parts = tiny_svd().to(cuda)
    batch = SVDBatch(torch.rand(2, 4, 3, 32, 32, device=cuda) * 2 - 1, torch.full((2,), 12.0, device=cuda),
                     torch.full((2,), 127, device=cuda))  # fmt: skip
    opt = torch.optim.AdamW(select_trainable(parts.unet, temporal_only=True), lr=1e-4)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = training_loss(parts, batch, torch.Generator().manual_seed(0))
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
