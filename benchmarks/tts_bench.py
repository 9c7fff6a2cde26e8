"""Side-by-side CPU benchmark: training step time and synthesis real-time factor (Griffin-Lim vocoder).

toonlab's multi-reference Tacotron (`tiny` by default) against Coqui TTS's Tacotron2 + GST at the same batch size,
mel settings (16 kHz, hop 200, win 800, n_fft 1024, 80 mels) and text/mel lengths, plus the physical floor of
synthesis: Griffin-Lim alone on the same number of frames. Coqui runs in its own venv (`.venv-coqui`, it needs
torch + torchaudio); when that venv is missing or fails, the Coqui rows say why and no number is printed.

    python benchmarks/tts_bench.py [--configs base-gst,tiny] [--batch 16] [--text-len 60] [--frames 240]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from toonlab.tts.audio import AudioParams, GriffinLimVocoder
from toonlab.tts.configs import get_config
from toonlab.tts.model import Batch, build_model
from toonlab.tts.style import RandomTokens
from toonlab.tts.tacotron import num_parameters

ROOT = Path(__file__).resolve().parents[1]
COQUI_PYTHON = ROOT / ".venv-coqui" / "bin" / "python"
N_SYMBOLS = 64


def _best_time(fn, repeats: int) -> float:
    """Fastest of `repeats` timed calls after a warm-up (the least disturbed by other load on a shared CPU)."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def _reduction(cfg) -> int:  # noqa: ANN001
    return cfg.tacotron.reduction if cfg.backbone == "tacotron" else cfg.fastspeech.decoder_reduction


def toonlab_figures(config_name: str, batch: int, text_len: int, frames: int, repeats: int) -> dict:
    cfg = get_config(config_name)
    r, n_mels = cfg.tacotron.reduction, cfg.audio.n_mels
    frames = frames // r * r
    # synthesis runs a fixed number of decoder steps (no stop) so output lengths match across models
    cfg = cfg.with_overrides(tacotron={"max_decoder_steps": frames // r, "stop_threshold": 2.0})
    classes = {"speaker": [str(i) for i in range(8)], "style": [str(i) for i in range(4)]}
    model = build_model(cfg, N_SYMBOLS, classes)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    g = torch.Generator().manual_seed(0)
    refs = [
        (torch.randn(batch, frames, n_mels, generator=g), torch.full((batch,), frames)) for _ in cfg.style.attributes
    ]
    b = Batch(
        torch.randint(2, N_SYMBOLS, (batch, text_len), generator=g),
        torch.full((batch,), text_len),
        torch.randn(batch, frames, n_mels, generator=g),
        torch.full((batch,), frames),
        refs,
        [{a: torch.randint(0, len(classes[a]), (batch,), generator=g) for a in classes} for _ in cfg.style.attributes],
        [],
        120 + 40 * torch.rand(batch, frames, generator=g) if cfg.backbone == "fastspeech" else None,
    )

    def step() -> None:
        _, _, losses = model(b, 10_000)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()

    step_s = _best_time(step, repeats)
    model.eval()
    text = torch.randint(2, N_SYMBOLS, (text_len,), generator=g)
    controls = {a: RandomTokens(0) for a in cfg.style.attributes}
    vocoder = GriffinLimVocoder(cfg.audio, n_iter=32)
    mel = model.synthesize(text, controls).mels_post[0]
    seconds = mel.shape[0] * cfg.audio.frame_seconds  # fixed for the Tacotron; predicted for FastSpeech
    acoustic_s = _best_time(lambda: model.synthesize(text, controls), repeats)
    vocoder_s = _best_time(lambda: vocoder(mel), repeats)
    return {
        "parameters": num_parameters(model),
        "step_s": step_s,
        "acoustic_rtf": acoustic_s / seconds,
        "griffin_lim_rtf": vocoder_s / seconds,
        "synthesis_rtf": (acoustic_s + vocoder_s) / seconds,
    }


COQUI_SCRIPT = r"""
import json, logging, sys, time, torch
from TTS.tts.configs.shared_configs import GSTConfig
from TTS.tts.configs.tacotron2_config import Tacotron2Config
from TTS.tts.layers.losses import TacotronLoss
from TTS.tts.models.tacotron2 import Tacotron2
logging.disable(logging.WARNING)
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
B, L, T, r = a["batch"], a["text_len"], a["frames"], a["r"]
cfg = Tacotron2Config(num_chars=64, use_gst=True, gst=GSTConfig(), r=r, max_decoder_steps=T // r, ga_alpha=5.0,
                      decoder_ssim_alpha=0.0, postnet_ssim_alpha=0.0, postnet_diff_spec_alpha=0.0,
                      decoder_diff_spec_alpha=0.0)
cfg.audio.num_mels = 80
model = Tacotron2(cfg)
model.decoder.stop_threshold = 2.0  # fixed-length synthesis, as on the toonlab side
criterion = TacotronLoss(cfg)
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
g = torch.Generator().manual_seed(0)
mel = torch.randn(B, T, 80, generator=g)
stop = torch.zeros(B, T // r); stop[:, -1] = 1
batch = {"text_input": torch.randint(1, 60, (B, L), generator=g), "text_lengths": torch.full((B,), L),
         "mel_input": mel, "mel_lengths": torch.full((B,), T), "stop_targets": stop,
         "stop_target_lengths": torch.full((B,), T // r), "speaker_ids": None, "d_vectors": None}
def step():
    _, losses = model.train_step(batch, criterion)
    opt.zero_grad(); losses["loss"].backward(); opt.step()
def best(fn):
    fn(); ts = []
    for _ in range(a["repeats"]):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return min(ts)
model.train(); step_s = best(step)
model.eval()
text, style = batch["text_input"][:1], mel[:1]
acoustic_s = best(lambda: model.inference(text, aux_input={"style_mel": style}))
frames = model.inference(text, aux_input={"style_mel": style})["model_outputs"].shape[1]
print(json.dumps({"parameters": sum(p.numel() for p in model.parameters()), "step_s": step_s,
                  "acoustic_s": acoustic_s, "frames": frames}))
"""


def coqui_figures(args: argparse.Namespace, r: int, frames: int) -> dict | str:
    """Coqui's figures, or the reason there are none."""
    if not COQUI_PYTHON.exists():
        return f"{COQUI_PYTHON} does not exist (create it: python -m venv .venv-coqui; pip install coqui-tts)"
    payload = {
        "batch": args.batch,
        "text_len": args.text_len,
        "frames": frames,
        "r": r,
        "threads": args.threads,
        "repeats": args.repeats,
    }
    proc = subprocess.run(
        [str(COQUI_PYTHON), "-c", COQUI_SCRIPT, json.dumps(payload)], capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        return f"Coqui run failed: {tail[0][:300]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default="base-gst,tiny", help="toonlab configs; the first sets Coqui's r")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--text-len", type=int, default=60)
    ap.add_argument("--frames", type=int, default=240, help="target mel frames (3 s at 12.5 ms)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = [c.strip() for c in args.configs.split(",") if c.strip()]
    r = get_config(names[0]).tacotron.reduction
    frames = args.frames // 6 * 6  # a multiple of every r in use
    seconds = frames * AudioParams().frame_seconds
    rows = {f"toonlab {n}": toonlab_figures(n, args.batch, args.text_len, frames, args.repeats) for n in names}
    rows = {k: v | {"r": _reduction(get_config(k.split()[1]))} for k, v in rows.items()}
    floor = next(iter(rows.values()))["griffin_lim_rtf"]
    coqui = coqui_figures(args, r, frames)
    if isinstance(coqui, dict):
        acoustic = coqui["acoustic_s"] / (coqui["frames"] * AudioParams().frame_seconds)
        rows["Coqui Tacotron2+GST"] = {
            "parameters": coqui["parameters"],
            "r": r,
            "step_s": coqui["step_s"],
            "acoustic_rtf": acoustic,
            "griffin_lim_rtf": floor,
            "synthesis_rtf": acoustic + floor,
        }
    print(
        f"CPU, {args.threads} threads; batch {args.batch}, {args.text_len} symbols, {frames} frames ({seconds:.1f} s),"
        f" 80 mels, hop 200; synthesis = acoustic model + Griffin-Lim (32 iterations, torch); best of --repeats"
    )
    print(f"{'system':24}{'params M':>10}{'r':>4}{'step s':>10}{'acoustic RTF':>14}{'synthesis RTF':>15}")
    for name, f in rows.items():
        print(
            f"{name:24}{f['parameters'] / 1e6:>10.2f}{f['r']:>4}{f['step_s']:>10.3f}{f['acoustic_rtf']:>14.3f}"
            f"{f['synthesis_rtf']:>15.3f}"
        )
    print(f"{'Griffin-Lim alone':24}{'':>10}{'':>4}{'':>10}{'':>14}{floor:>15.3f}   (the floor)")
    if isinstance(coqui, dict):
        c = rows["Coqui Tacotron2+GST"]
        for name in list(rows)[:-1]:
            f = rows[name]
            print(
                f"{name} vs Coqui: training step {c['step_s'] / f['step_s']:.2f}x faster, synthesis RTF "
                f"{c['synthesis_rtf'] / f['synthesis_rtf']:.2f}x lower (sizes {f['parameters'] / 1e6:.1f} M vs "
                f"{c['parameters'] / 1e6:.1f} M, r {f['r']} vs {c['r']})"
            )
    else:
        print(f"Coqui TTS: no figures: {coqui}")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "coqui": coqui, "args": vars(args) | {"json": None}}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
