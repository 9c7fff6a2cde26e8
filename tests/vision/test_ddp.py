"""Two gloo processes on halves of a batch give the gradients of one process on the whole batch."""

from __future__ import annotations

import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from toonlab.vision.models import build_videoclip, get_config
from toonlab.vision.tasks import gather_plain, gather_with_grad
from toonlab.vision.train import leave
from toonlab.vision.videoclip import contrastive_loss

B, N, SIZE = 8, 4, 32


def _inputs(model):
    gen = torch.Generator().manual_seed(3)
    frames = torch.randint(0, 256, (B * N, 3, SIZE, SIZE), dtype=torch.uint8, generator=gen)
    h = model.video.prefix(frames).view(B, N, 3, SIZE, SIZE)
    tokens = model.text.prefix([f"caption {i % 6}" for i in range(B)])  # repeated captions: multi-positive
    return h, torch.ones(B, N, dtype=torch.bool), tokens, torch.tensor([i % 6 for i in range(B)])


def _model():
    torch.manual_seed(0)
    return build_videoclip(get_config("tiny-mean")).eval()  # eval: batch-norm statistics do not depend on the split


def _grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def _worker(rank, port, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=2)
    model = _model()
    ddp = torch.nn.parallel.DistributedDataParallel(model)
    h, mask, tokens, ids = _inputs(model)
    part = slice(rank * B // 2, (rank + 1) * B // 2)
    video, text, scale = ddp(h[part], mask[part], tuple(t[part] for t in tokens))
    loss = contrastive_loss(gather_with_grad(video), gather_with_grad(text), gather_plain(ids[part]), scale)
    loss.backward()
    if rank == 0:
        torch.save({"loss": loss.detach(), "grads": _grads(model)}, out)
    leave()
    os._exit(0)  # done: skip the interpreter's C++ teardown, where gloo's threads can abort a finished rank


def test_two_process_gloo_ddp_matches_one_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "rank0.pt"
    mp.spawn(_worker, args=(port, str(out)), nprocs=2, join=True)
    model = _model()
    h, mask, tokens, ids = _inputs(model)
    video, text, scale = model(h, mask, tokens)
    loss = contrastive_loss(video, text, ids, scale)
    loss.backward()
    result = torch.load(out, weights_only=True)
    assert torch.allclose(result["loss"], loss.detach(), atol=1e-5)
    reference = _grads(model)
    assert reference.keys() == result["grads"].keys() and reference
    for name, grad in reference.items():
        assert torch.allclose(result["grads"][name], grad, atol=1e-5, rtol=1e-4), name
