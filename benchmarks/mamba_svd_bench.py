"""Side-by-side throughput of the selective scan, VideoMamba and the tiny SVD training step (CPU default, or cuda).

1. Selective scan at VideoMamba-Ti's shape on 112^2 x 8 frames (batch 4, d_inner 384, state 16, length 393):
   forward and forward+backward seconds of the pure ``loop`` and ``parallel`` forms, and of mamba_ssm's kernel when
   it imports on a GPU (null otherwise).
2. VideoMamba clips/s, inference and one AdamW training step (cross-entropy on a linear head), per size and scan
   form, on the same random clips.
3. The tiny SVD (real architecture, ~2.3 M parameters): clips/s of a training step (whole UNet and temporal layers
   only) and of a 2-step sampling call.

    python benchmarks/mamba_svd_bench.py [--device cpu] [--batch 2] [--repeats 2] [--sizes tiny,micro,ti]
Results: a table on stdout and benchmarks/results/mamba_svd_bench.json.
"""

from __future__ import annotations

import argparse
import json
from functools import partial
from pathlib import Path

import torch
from vision_bench import _best as best  # fastest of N timed calls after a warm-up (this folder is on sys.path)

from toonlab.vision.mamba import VideoMambaClassifier, videomamba_config
from toonlab.vision.scan import _kernel, selective_scan


def _scan_forward(tensors: list, backend: str) -> None:
    with torch.no_grad():
        selective_scan(*tensors, delta_softplus=True, backend=backend)


def _scan_backward(leaves: list, backend: str) -> None:
    selective_scan(*leaves, delta_softplus=True, backend=backend).sum().backward()


def bench_scan(device: torch.device, repeats: int) -> dict:
    b, d, n, length = 4, 384, 16, 393
    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(*s, generator=g).to(device) for s in ((b, d, length), (b, d, length))]
    A = -torch.exp(torch.randn(d, n, generator=g)).to(device)
    B, C = (torch.randn(b, n, length, generator=g).to(device) for _ in range(2))
    tensors = [*inputs, A, B, C]
    backends = ["loop", "parallel"] + (["kernel"] if device.type == "cuda" and _kernel() is not None else [])
    out = {}
    for backend in backends:
        leaves = [t.clone().requires_grad_() for t in tensors]
        forward = partial(_scan_forward, tensors, backend)
        both = partial(_scan_backward, leaves, backend)
        out[backend] = {"forward_s": best(forward, repeats), "forward_backward_s": best(both, repeats)}
    out.setdefault("kernel", None)
    return out


def bench_mamba(size: str, backend: str, batch: int, device: torch.device, repeats: int) -> dict:
    overrides = {} if size == "tiny" else {"img_size": 112, "num_frames": 8}
    config = videomamba_config(size, scan_backend=backend, **overrides)
    torch.manual_seed(0)
    model = VideoMambaClassifier(config, num_classes=10).to(device)
    clips = torch.randn(batch, config.num_frames, 3, config.img_size, config.img_size, device=device)
    labels = torch.arange(batch, device=device) % 10
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def infer():
        model.eval()
        with torch.no_grad(), autocast:
            model(clips)

    def step():
        model.train()
        with autocast:
            loss = torch.nn.functional.cross_entropy(model(clips), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return {
        "tokens": config.num_tokens,
        "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
        "infer_clips_s": batch / best(infer, repeats),
        "train_clips_s": batch / best(step, repeats),
    }


def _svd_step(parts, batch, opt, generator, loss_fn) -> None:
    opt.zero_grad()
    loss_fn(parts, batch, generator).backward()
    opt.step()


def bench_svd(device: torch.device, repeats: int) -> dict:
    import numpy as np
    from PIL import Image

    from toonlab.vision.svd import SVDBatch, generate, select_trainable, tiny_svd, training_loss

    parts = tiny_svd().to(device)
    g = torch.Generator().manual_seed(0)
    batch = SVDBatch(
        (torch.rand(2, 4, 3, 32, 32, generator=g) * 2 - 1).to(device),
        torch.full((2,), 12.0, device=device),
        torch.full((2,), 127, device=device),
    )
    out = {}
    for name, temporal in (("train_full_clips_s", False), ("train_temporal_clips_s", True)):
        opt = torch.optim.AdamW(select_trainable(parts.unet, temporal), lr=1e-4)
        out[name] = 2 / best(partial(_svd_step, parts, batch, opt, g, training_loss), repeats)
    image = Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8))
    sample = lambda: generate(parts, image, 4, (32, 32), 12, 127, steps=2)  # noqa: E731
    out["sample_2step_clips_s"] = 1 / best(sample, repeats)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--sizes", default="tiny,micro,ti")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    scan = bench_scan(device, args.repeats)
    print("selective scan, b4 d384 n16 l393 (seconds)")
    print(f"{'form':10} {'forward':>10} {'fwd+bwd':>10} {'fwd+bwd / loop':>15}")
    for backend, r in scan.items():
        if r is None:
            print(f"{backend:10} {'null (needs mamba_ssm on CUDA)':>37}")
            continue
        ratio = r["forward_backward_s"] / scan["loop"]["forward_backward_s"]
        print(f"{backend:10} {r['forward_s']:10.3f} {r['forward_backward_s']:10.3f} {ratio:15.2f}")
    mamba = {}
    print(f"\nVideoMamba clips/s (batch {args.batch})")
    print(f"{'size':6} {'scan':9} {'tokens':>6} {'params M':>9} {'infer':>8} {'train':>8}")
    for size in args.sizes.split(","):
        for backend in ("loop", "parallel"):
            r = mamba[f"{size}/{backend}"] = bench_mamba(size, backend, args.batch, device, args.repeats)
            print(
                f"{size:6} {backend:9} {r['tokens']:6d} {r['params_M']:9.2f} "
                f"{r['infer_clips_s']:8.2f} {r['train_clips_s']:8.2f}"
            )
    svd = bench_svd(device, args.repeats)
    print("\ntiny SVD (2 clips x 4 frames x 32^2), clips/s")
    for name, value in svd.items():
        print(f"{name:24} {value:8.2f}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    payload = {"device": str(device), "threads": args.threads, "scan": scan, "videomamba": mamba, "svd": svd}
    (results / "mamba_svd_bench.json").write_text(json.dumps(payload, indent=2))


if __name__ == "__main__":
    main()
