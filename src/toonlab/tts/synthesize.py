"""Synthesis behind `toonlab tts say`: a checkpoint, text and one style control per attribute -> waveform.

Controls (see `toonlab.tts.style`): `--ref ATTR=a.wav` (reference), `--tokens ATTR=0:0.5,3:0.5` (token weights),
`--interp ATTR=a.wav,b.wav,0.3` (interpolation), `--random ATTR` (seeded random token weights). Attributes left
unset use the mean of their tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from toonlab.tts.audio import AudioParams, GriffinLimVocoder, Vocoder, load_wav, mel_spectrogram, save_wav
from toonlab.tts.checkpoint import load_checkpoint
from toonlab.tts.device import autocast, resolve_device
from toonlab.tts.model import MultiReferenceTTS, build_model, load_weights
from toonlab.tts.style import InterpolatedStyle, RandomTokens, ReferenceStyle, StyleControl, TokenWeights
from toonlab.tts.text import SymbolTable, TextFrontEnd, make_phonemizer


def reference_mel(path: str | Path, params: AudioParams) -> torch.Tensor:
    """A reference wav -> (T, n_mels) log-mel with the model's audio parameters."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"reference audio {path} does not exist")
    return mel_spectrogram(load_wav(path, params.sample_rate), params)


def _split(spec: str, option: str) -> tuple[str, str]:
    attr, sep, value = spec.partition("=")
    if not sep or not attr or not value:
        raise ValueError(f"{option} expects ATTR=VALUE, got {spec!r}")
    return attr.strip(), value.strip()


def parse_controls(
    refs: Sequence[str],
    tokens: Sequence[str],
    interps: Sequence[str],
    randoms: Sequence[str],
    params: AudioParams,
    seed: int = 0,
) -> dict[str, StyleControl]:
    """Command-line style options -> {attribute: control}; an attribute set twice is an error."""
    controls: dict[str, StyleControl] = {}

    def put(attr: str, control: StyleControl) -> None:
        if attr in controls:
            raise ValueError(f"style attribute {attr!r} is set more than once")
        controls[attr] = control

    for spec in refs:
        attr, path = _split(spec, "--ref")
        put(attr, ReferenceStyle(reference_mel(path, params)))
    for spec in tokens:
        attr, value = _split(spec, "--tokens")
        weights = {}
        for item in value.split(","):
            k, sep, w = item.partition(":")
            if not sep:
                raise ValueError(f"--tokens expects TOKEN:WEIGHT pairs, got {item!r}")
            weights[int(k)] = float(w)
        put(attr, TokenWeights(weights))
    for spec in interps:
        attr, value = _split(spec, "--interp")
        parts = value.split(",")
        if len(parts) != 3:
            raise ValueError(f"--interp expects ATTR=a.wav,b.wav,ALPHA, got {spec!r}")
        put(attr, InterpolatedStyle(reference_mel(parts[0], params), reference_mel(parts[1], params), float(parts[2])))
    for attr in randoms:
        put(attr.strip(), RandomTokens(seed))
    return controls


@dataclass
class Synthesis:
    wav: torch.Tensor  # (samples,)
    mel: torch.Tensor  # (T, n_mels)
    alignment: torch.Tensor  # (T / r, L)
    sample_rate: int

    @property
    def seconds(self) -> float:
        return self.wav.shape[0] / self.sample_rate

    @property
    def steps(self) -> int:
        return self.alignment.shape[0]


class Synthesizer:
    """A trained model with its own text front end, symbol table, audio parameters and a vocoder."""

    def __init__(
        self,
        model: MultiReferenceTTS,
        front: TextFrontEnd,
        params: AudioParams,
        vocoder: Vocoder,
        device: torch.device | None = None,
    ) -> None:
        self.device = device or torch.device("cpu")
        self.model = model.to(self.device).eval()
        self.front = front
        self.params = params
        self.vocoder = vocoder

    @classmethod
    def load(
        cls, path: str | Path, vocoder: Vocoder | None = None, griffin_lim_iters: int = 32, device: str = "cpu"
    ) -> Synthesizer:
        """A checkpoint (file or run folder) on `device` ("cpu", "cuda", "cuda:N", "auto")."""
        where = resolve_device(device)
        ckpt = load_checkpoint(path)
        cfg = ckpt.config
        model = build_model(cfg, len(ckpt.symbols), ckpt.classes)
        load_weights(model, ckpt.model)
        phonemizer = make_phonemizer(cfg.train.text_frontend, cfg.train.espeak_voice)
        front = TextFrontEnd(phonemizer, SymbolTable(ckpt.symbols))
        return cls(model, front, cfg.audio, vocoder or GriffinLimVocoder(cfg.audio, n_iter=griffin_lim_iters), where)

    @property
    def attributes(self) -> list[str]:
        return self.model.style.attributes

    @torch.no_grad()
    def say(self, text: str, controls: dict[str, StyleControl], seed: int = 0) -> Synthesis:
        ids = self.front.encode(text)  # unknown symbols are dropped with a warning
        torch.manual_seed(seed)  # pre-net dropout stays on at inference
        with autocast(self.device):
            out = self.model.synthesize(ids, controls)
        mel = out.mels_post[0].float().cpu()  # the vocoder runs on the CPU
        return Synthesis(self.vocoder(mel), mel, out.alignments[0].float().cpu(), self.params.sample_rate)

    def write(self, result: Synthesis, path: str | Path) -> Path:
        return save_wav(path, result.wav, result.sample_rate)
