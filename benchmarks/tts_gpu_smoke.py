"""GPU smoke run of the TTS training and synthesis path: one short script for a machine with CUDA.

On a synthetic tone corpus (or `--corpus DIR`): trains `micro-fs` and `micro` (Tacotron) for a few steps with
`--device cuda` (bf16 autocast), checks every loss is finite and the checkpoint reloads on the CPU, synthesises
on the GPU, times `tiny-fs` training steps on CUDA against the CPU side by side, and, with two or more GPUs,
trains under `torchrun` with NCCL. Prints one table; exits non-zero on the first failure.

    python benchmarks/tts_gpu_smoke.py [--corpus DIR] [--steps 20] [--out runs/gpu-smoke]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch


def _train(corpus: Path, config: str, out: Path, steps: int, device: str) -> dict:
    from toonlab.tts.configs import get_config
    from toonlab.tts.train import PrintMonitor, train

    cfg = get_config(config).with_overrides(train={"text_frontend": "characters", "val_every": steps})
    t = time.perf_counter()
    summary = train(corpus, cfg, out, steps=steps, device=device, monitor=PrintMonitor(every=max(1, steps // 4)))
    summary["seconds_per_step"] = (time.perf_counter() - t) / max(1, summary["steps_this_run"])
    if not math.isfinite(summary["val_mel"]):
        raise SystemExit(f"{config} on {device}: non-finite validation loss {summary['val_mel']}")
    return summary


def _say(run: Path, device: str) -> float:
    from toonlab.tts.synthesize import Synthesizer

    synth = Synthesizer.load(run, device=device)
    t = time.perf_counter()
    result = synth.say("Rain falls on the roof.", {})
    if not bool(torch.isfinite(result.wav).all()) or result.wav.numel() == 0:
        raise SystemExit(f"synthesis on {device} produced no finite audio")
    return (time.perf_counter() - t) / result.seconds


def _ddp(corpus: Path, out: Path, gpus: int) -> str:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(gpus), "-m", "toonlab.cli",
           "tts", "train", "--corpus", str(corpus), "--config", "micro-fs", "--out", str(out), "--steps", "4",
           "--device", "cuda"]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise SystemExit(f"torchrun NCCL failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return f"{gpus} ranks, {json.loads((out / 'summary.json').read_text())['steps']} steps"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpus", type=Path, default=None, help="Corpus folder (default: a synthetic tone corpus).")
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("runs/gpu-smoke"))
    ap.add_argument("--device", default="cuda", help="cuda (the point of it) or cpu (to check the script itself)")
    args = ap.parse_args()
    dev = args.device
    if dev.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("no CUDA device visible: this smoke run needs a GPU (torch.cuda.is_available() is False)")
    from toonlab.tts.checkpoint import load_checkpoint
    from toonlab.tts.tone_corpus import write_tone_corpus

    corpus = args.corpus or write_tone_corpus(Path(tempfile.mkdtemp()) / "tones")
    name = torch.cuda.get_device_name(0) if dev.startswith("cuda") else "cpu"
    rows: list[tuple[str, str]] = [("device", name), ("torch", torch.__version__)]
    for config in ("micro-fs", "micro"):
        run = args.out / config
        s = _train(corpus, config, run, args.steps, dev)
        ckpt = load_checkpoint(run)  # weights saved on the CPU: loads without a GPU
        assert all(v.device.type == "cpu" for v in ckpt.model.values())
        figures = f"{s['steps']} steps, val mel {s['val_mel']:.3f}, {s['seconds_per_step']:.3f} s/step"
        rows.append((f"{config} train on {dev}", figures))
        rows.append((f"{config} say on {dev} (RTF incl. Griffin-Lim on CPU)", f"{_say(run, dev):.3f}"))
    gpu = _train(corpus, "tiny-fs", args.out / f"tiny-fs-{dev}", 10, dev)["seconds_per_step"]
    torch.set_num_threads(os.cpu_count() or 1)
    cpu = _train(corpus, "tiny-fs", args.out / "tiny-fs-cpu", 3, "cpu")["seconds_per_step"]
    rows.append((f"tiny-fs s/step {dev} / cpu (ratio)", f"{gpu:.3f} / {cpu:.3f} ({cpu / gpu:.1f}x)"))
    gpus = torch.cuda.device_count() if dev.startswith("cuda") else 0
    rows.append(("torchrun NCCL", _ddp(corpus, args.out / "ddp", gpus) if gpus >= 2 else f"skipped: {gpus} GPU"))
    width = max(len(k) for k, _ in rows)
    print("\n".join(f"{k:<{width}}  {v}" for k, v in rows))


if __name__ == "__main__":
    main()
