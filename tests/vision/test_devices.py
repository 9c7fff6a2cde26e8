"""Device paths: bf16 autocast on CPU keeps the loss and gradients finite; CUDA training behind the gpu marker."""

from __future__ import annotations

import pytest
import torch

from toonlab.vision.models import build_videoclip, get_config
from toonlab.vision.train import TrainConfig, train
from toonlab.vision.videoclip import contrastive_loss


def test_bf16_autocast_on_cpu_gives_finite_loss_and_gradients():
    torch.manual_seed(0)
    model = build_videoclip(get_config("tiny-seq"))
    frames = torch.randint(0, 256, (4 * 4, 3, 32, 32), dtype=torch.uint8)
    h = model.video.prefix(frames).view(4, 4, 3, 32, 32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        video, text, scale = model(h, torch.ones(4, 4, dtype=torch.bool), model.text.prefix(["a", "b", "c", "d"]))
        loss = contrastive_loss(video, text, torch.arange(4), scale)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.gpu
def test_training_on_cuda_with_bf16(labelled, tmp_path):
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    tc = TrainConfig(steps=4, batch_size=4, eval_every=4)
    metrics = train(labelled, tmp_path / "run", get_config("tiny-seq"), tc, device="cuda")
    assert 0 <= metrics["t2v_r1"] <= 100


def test_cuda_without_a_device_is_a_clear_error(labelled, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ValueError, match="no CUDA device"):
        train(labelled, tmp_path / "run", get_config("tiny-seq"), TrainConfig(steps=1), device="cuda")
