"""Side-by-side CPU benchmark: training step time and synthesis real-time factor (Griffin-Lim vocoder).

toonlab's multi-reference Tacotron (`tiny` by default) against Coqui TTS's Tacotron2 + GST at the same batch size,
mel settings (16 kHz, hop 200, win 800, n_fft 1024, 80 mels) and text/mel lengths, plus the physical floor of
synthesis: Griffin-Lim alone on the same number of frames. Coqui runs in its own venv (`.venv-coqui`, it needs
torch + torchaudio); when that venv is missing or fails, the Coqui rows say why and no number is printed.

    python benchmarks/tts_bench.py [--config tiny] [--batch 16] [--text-len 60] [--frames 240] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
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


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


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
    )

    def step() -> None:
        _, _, losses = model(b, 10_000)
        opt.zero_grad()
        losses["total"].backward()
        opt.step()

    step_s = _median_time(step, repeats)
    model.eval()
    text = torch.randint(2, N_SYMBOLS, (text_len,), generator=g)
    controls = {a: RandomTokens(0) for a in cfg.style.attributes}
    vocoder = GriffinLimVocoder(cfg.audio, n_iter=32)
    seconds = frames * cfg.audio.frame_seconds
    mel = model.synthesize(text, controls).mels_post[0]
    acoustic_s = _median_time(lambda: model.synthesize(text, controls), repeats)
    vocoder_s = _median_time(lambda: vocoder(mel), repeats)
    return {
        "parameters": num_parameters(model),
        "step_s": step_s,
        "acoustic_rtf": acoustic_s / seconds,
        "griffin_lim_rtf": vocoder_s / seconds,
        "synthesis_rtf": (acoustic_s + vocoder_s) / seconds,
    }


COQUI_SCRIPT = r"""
import json, statistics, sys, time, torch
from TTS.tts.configs.shared_configs import GSTConfig
from TTS.tts.configs.tacotron2_config import Tacotron2Config
from TTS.tts.models.tacotron2 import Tacotron2
from TTS.tts.layers.losses import TacotronLoss
a = json.loads(sys.argv[1])
torch.set_num_threads(a["threads"])
B, L, T = a["batch"], a["text_len"], a["frames"]
cfg = Tacotron2Config(num_chars=64, use_gst=True, gst=GSTConfig(), r=a["r"], max_decoder_steps=T // a["r"],
                      stopnet=True, separate_stopnet=True, ga_alpha=5.0, decoder_ssim_alpha=0.0,
                      postnet_ssim_alpha=0.0, postnet_diff_spec_alpha=0.0, decoder_diff_spec_alpha=0.0,
                      use_phonemes=False, characters=None)
cfg.audio.num_mels = 80; cfg.audio.sample_rate = 16000; cfg.audio.hop_length = 200; cfg.audio.win_length = 800
cfg.audio.fft_size = 1024; cfg.audio.mel_fmax = 8000.0
model = Tacotron2(cfg); crit = TacotronLoss(cfg)
opt = torch.optim.Adam(model.parameters(), lr=1e-4)
g = torch.Generator().manual_seed(0)
text = torch.randint(1, 60, (B, L), generator=g); tl = torch.full((B,), L)
mel = torch.randn(B, T, 80, generator=g); ml = torch.full((B,), T)
stop = torch.zeros(B, T); stop[:, -1] = 1
def step():
    out = model.forward(text, tl, mel, ml, aux_input={"style_mel": mel})
    align = out["alignments"]
    loss = crit(out["model_outputs"], out["decoder_outputs"], mel, None, out["stop_tokens"], stop,
                (stop.view(B, T // a["r"], a["r"]).sum(2) > 0).float(), ml, None, out["decoder_outputs_backward"],
                align, None, None, tl)
    opt.zero_grad(); loss["loss"].backward(); opt.step()
def med(fn):
    fn(); ts = []
    for _ in range(a["repeats"]):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return statistics.median(ts)
model.train(); step_s = med(step)
model.eval(); model.decoder.stop_threshold = 2.0
with torch.no_grad():
    acoustic_s = med(lambda: model.inference(text[:1], aux_input={"style_mel": mel[:1]}))
print(json.dumps({"parameters": sum(p.numel() for p in model.parameters()), "step_s": step_s,
                  "acoustic_s": acoustic_s}))
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
    ap.add_argument("--config", default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--text-len", type=int, default=60)
    ap.add_argument("--frames", type=int, default=240, help="target mel frames (3 s at 12.5 ms)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = get_config(args.config)
    r = cfg.tacotron.reduction
    frames = args.frames // r * r
    seconds = frames * AudioParams().frame_seconds
    ours = toonlab_figures(args.config, args.batch, args.text_len, frames, args.repeats)
    coqui = coqui_figures(args, r, frames)
    print(
        f"CPU, {args.threads} threads; batch {args.batch}, {args.text_len} symbols, {frames} frames ({seconds:.1f} s), "
        f"r = {r}, 80 mels, Griffin-Lim 32 iterations"
    )
    print(f"{'':34}{'toonlab ' + args.config:>18}{'Coqui Tacotron2+GST':>22}{'ratio':>10}")
    print(f"{'parameters (M)':34}{ours['parameters'] / 1e6:>18.2f}", end="")
    if isinstance(coqui, dict):
        print(f"{coqui['parameters'] / 1e6:>22.2f}")
        coqui_rtf = (coqui["acoustic_s"] / seconds) + ours["griffin_lim_rtf"]
        speedup = coqui["step_s"] / ours["step_s"]
        print(f"{'training step (s)':34}{ours['step_s']:>18.3f}{coqui['step_s']:>22.3f}{speedup:>9.2f}x")
        print(f"{'synthesis RTF (acoustic + GL)':34}{ours['synthesis_rtf']:>18.3f}{coqui_rtf:>22.3f}", end="")
        print(f"{coqui_rtf / ours['synthesis_rtf']:>9.2f}x")
    else:
        print(f"{'n/a':>22}")
        print(f"{'training step (s)':34}{ours['step_s']:>18.3f}{'n/a':>22}")
        print(f"{'synthesis RTF (acoustic + GL)':34}{ours['synthesis_rtf']:>18.3f}{'n/a':>22}")
        print(f"Coqui missing: {coqui}")
    print(f"{'acoustic model RTF':34}{ours['acoustic_rtf']:>18.3f}")
    floor = ours["griffin_lim_rtf"]
    ratio = ours["synthesis_rtf"] / floor
    print(f"{'Griffin-Lim alone RTF (the floor)':34}{floor:>18.3f}   synthesis / floor = {ratio:.2f}x")
    if args.json:
        args.json.write_text(
            json.dumps({"toonlab": ours, "coqui": coqui, "args": vars(args) | {"json": None}}, indent=2)
        )


if __name__ == "__main__":
    sys.exit(main())
