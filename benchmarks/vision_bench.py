"""Side-by-side throughput of the video models (clips/s), on CPU by default or `--device cuda`.

Per model config, on the same random clips (B clips x N keyframes x size^2):
- inference: raw frames -> video embedding (every tower stage runs);
- training from cache: one optimizer step of the retrieval loss on cached frozen-prefix outputs, as the training
  loop runs it (the frozen layers ran once per dataset);
- training from frames: the same step with the frozen layers run every step (what caching saves).
Peer: the package's own EfficientNet-Lite0 forward (`extract_features` + pooling) on the same frames, beside our
staged tower, so any cost of the stage split shows as a ratio.

    python benchmarks/vision_bench.py [--configs frozen-mean,frozen-seq,partial-seq,scratch-seq] [--batch 8]
        [--frames 8] [--size 112] [--repeats 3] [--device cpu]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from toonlab.vision.models import build_videoclip, get_config
from toonlab.vision.videoclip import contrastive_loss


def _best(fn, repeats: int) -> float:
    """Fastest of `repeats` timed calls after a warm-up (least disturbed by other load)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_config(name: str, args, device: torch.device) -> dict[str, float]:
    config = replace(get_config(name), n_frames=args.frames, size=args.size)
    torch.manual_seed(0)
    model = build_videoclip(config).to(device)
    b, n = args.batch, args.frames
    frames = torch.randint(0, 256, (b, n, 3, args.size, args.size), dtype=torch.uint8, device=device)
    mask = torch.ones(b, n, dtype=torch.bool, device=device)
    captions = [f"a small knight number {i} swings a sword" for i in range(b)]
    text_h = model.text.prefix(captions)
    text_h = tuple(t.to(device) for t in text_h) if isinstance(text_h, tuple) else text_h.to(device)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def prefix():
        h = model.video.prefix(frames.flatten(0, 1))
        return h.view(b, n, *h.shape[1:])

    cached = prefix()

    def infer():
        model.eval()
        with torch.no_grad(), autocast:
            model.embed_video(prefix(), mask)

    def step(from_frames: bool):
        model.train()
        with autocast:
            video, text, scale = model(prefix() if from_frames else cached, mask, text_h)
            loss = contrastive_loss(video, text, torch.arange(b, device=device), scale)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    return {
        "infer": b / _best(infer, args.repeats),
        "train_cached": b / _best(lambda: step(False), args.repeats),
        "train_frames": b / _best(lambda: step(True), args.repeats),
        "trainable_M": sum(p.numel() for p in model.parameters() if p.requires_grad) / 1e6,
    }


def bench_peer(args, device: torch.device) -> tuple[float, float]:
    """Frames/s of the package's Lite0 forward and of our staged tower, on the same frames."""
    from efficientnet_lite_pytorch import EfficientNet

    from toonlab.vision.towers import lite0

    net = EfficientNet.from_name("efficientnet-lite0").to(device).eval()
    ours = lite0("frozen", pretrained=False).to(device).eval()
    x = torch.rand(args.batch * args.frames, 3, args.size, args.size, device=device)
    with torch.no_grad():
        peer = _best(lambda: net.extract_features((x * 255 - 127) / 128).mean((2, 3)), args.repeats)
        staged = _best(lambda: ours(x), args.repeats)
    return len(x) / peer, len(x) / staged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="frozen-mean,frozen-seq,partial-seq,scratch-seq")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device}, {args.batch} clips x {args.frames} keyframes x {args.size}^2, threads {args.threads}")
    print(
        f"{'config':<22}{'trainable M':>12}{'infer clips/s':>15}{'train cached':>14}{'train frames':>14}{'cache x':>9}"
    )
    for name in args.configs.split(","):
        r = bench_config(name, args, device)
        ratio = r["train_cached"] / r["train_frames"]
        print(
            f"{name:<22}{r['trainable_M']:>12.2f}{r['infer']:>15.2f}{r['train_cached']:>14.2f}"
            f"{r['train_frames']:>14.2f}{ratio:>9.1f}"
        )
    peer, staged = bench_peer(args, device)
    print(f"Lite0 frames/s: package forward {peer:.1f}, toonlab staged tower {staged:.1f} (ratio {staged / peer:.2f})")


if __name__ == "__main__":
    main()
