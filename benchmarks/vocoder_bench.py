"""Vocoders side by side on real mels: Griffin-Lim (the default, magnitude sharpened by power 1.5, and
unsharpened), WORLD from the mel, a learned mel-to-linear network before Griffin-Lim, and WORLD analysis-synthesis
of the recording itself (the ceiling of a model that would predict WORLD features), each against the real
recordings, on the same held-out clips in one run.

    .venv/bin/python benchmarks/vocoder_bench.py --corpus .cache/tts/corpus --clips 32 --train-minutes 5

Per vocoder: pocketsphinx WER (a fresh decoder per clip), MCD (DTW) and F0 RMSE against the recording's mel,
level error (output RMS minus recording RMS, dB; mean and spread over clips), and real-time factor (compute
seconds per second of audio, on this machine, with the given threads). The mel-to-linear network is trained on the
training split for a bounded time and saved as OUT/mel-to-linear.pt (reused when present; `--vocoder PATH` of
`toonlab tts say/evaluate/demo` takes it). Results: OUT/vocoders.md and OUT/vocoders.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _rms_db(wav: np.ndarray) -> float:
    return float(20 * np.log10(max(np.sqrt(np.mean(np.asarray(wav, float) ** 2)), 1e-8)))


def measure(held: list, vocoders: dict[str, Any], params: Any) -> dict[str, dict[str, list]]:
    """Every vocoder on every held-out clip -> {vocoder: {asr, mcd, f0, level, rtf: per-clip lists}}."""
    from toonlab.tts.audio import load_wav, mel_spectrogram
    from toonlab.tts.classifiers import Recogniser
    from toonlab.tts.metrics import f0_rmse, f0_track, mcd
    from toonlab.tts.vocoders import world_copy_synthesis

    recogniser = Recogniser()
    acc: dict[str, dict[str, list]] = {name: {} for name in ["real recording", *vocoders]}
    for u in held:
        wav = load_wav(u.audio, params.sample_rate)
        mel = mel_spectrogram(wav, params)
        f0_real = f0_track(wav.numpy(), params.sample_rate, params.hop_length)
        outputs = {"real recording": (wav.numpy(), 0.0)}
        for name, vocoder in vocoders.items():
            t0 = time.perf_counter()
            if vocoder is None:
                out = world_copy_synthesis(wav.numpy(), params.sample_rate, params.hop_length)
            else:
                out = vocoder(mel).numpy()
            outputs[name] = (out, time.perf_counter() - t0)
        for name, (out, seconds) in outputs.items():
            a = acc[name]
            d, path = mcd(mel.numpy(), mel_spectrogram(torch.from_numpy(out), params).numpy())
            a.setdefault("asr", []).append(recogniser.transcribe(out, params.sample_rate))
            a.setdefault("mcd", []).append(d)
            a.setdefault("f0", []).append(f0_rmse(f0_real, f0_track(out, params.sample_rate, params.hop_length), path))
            a.setdefault("level", []).append(_rms_db(out) - _rms_db(wav.numpy()))
            a.setdefault("rtf", []).append(seconds / (len(wav) / params.sample_rate))
        print(f"{u.id}: done", flush=True)
    return acc


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/vocoders"))
    p.add_argument("--clips", type=int, default=32, help="Held-out clips (balanced over attribute combinations).")
    p.add_argument("--train-clips", type=int, default=256, help="Training clips for the mel-to-linear network.")
    p.add_argument("--train-minutes", type=float, default=5.0)
    p.add_argument("--gl-iters", type=int, default=32)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from toonlab.tts.audio import AudioParams, GriffinLimVocoder
    from toonlab.tts.judging import balanced_sample
    from toonlab.tts.manifest import Corpus
    from toonlab.tts.metrics import word_error_rate
    from toonlab.tts.vocoders import LearnedVocoder, WorldVocoder, load_mel_to_linear, train_vocoder_file

    params = AudioParams()
    corpus = Corpus.load(args.corpus)
    args.out.mkdir(parents=True, exist_ok=True)
    net_path = args.out / "mel-to-linear.pt"
    if not net_path.exists():
        info = train_vocoder_file(args.corpus, net_path, args.train_minutes, args.train_clips)
        print(f"mel-to-linear: {info}", flush=True)
    net = load_mel_to_linear(net_path)
    vocoders: dict[str, Any] = {
        "Griffin-Lim (default)": GriffinLimVocoder(params, n_iter=args.gl_iters),
        # = the learned network before training (its residual starts at zero): what the learning adds
        "Griffin-Lim, no sharpening (power 1)": GriffinLimVocoder(params, n_iter=args.gl_iters, power=1.0),
        "WORLD from the mel": WorldVocoder(params, n_iter=args.gl_iters),
        "learned mel-to-linear + Griffin-Lim": LearnedVocoder(net, n_iter=args.gl_iters),
        "WORLD copy synthesis of the recording": None,  # from the waveform's own WORLD features
    }
    held = balanced_sample(corpus.split("test"), corpus.attributes, 1, seed=0)
    held = held[:: max(1, len(held) // args.clips)][: args.clips]
    acc = measure(held, vocoders, params)
    texts = [u.text for u in held]
    rows = []
    for name, a in acc.items():
        rows.append(
            {
                "vocoder": name,
                "clips": len(held),
                "wer": word_error_rate(texts, a["asr"]),
                "mcd_db": float(np.mean(a["mcd"])),
                "f0_rmse_hz": float(np.nanmean(a["f0"])),
                "level_error_db": float(np.mean(a["level"])),
                "level_error_sd_db": float(np.std(a["level"])),
                "rtf": float(np.mean(a["rtf"])),
            }
        )
    lines = [
        "| vocoder | WER | MCD dB | F0 RMSE Hz | level error dB (sd) | RTF |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['vocoder']} | {100 * r['wer']:.1f}% | {r['mcd_db']:.2f} | {r['f0_rmse_hz']:.1f} | "
            f"{r['level_error_db']:+.1f} ({r['level_error_sd_db']:.1f}) | {r['rtf']:.3f} |"
        )
    table = "\n".join(lines)
    (args.out / "vocoders.md").write_text(table + "\n")
    (args.out / "vocoders.json").write_text(json.dumps({"corpus": str(corpus.root), "rows": rows}, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
