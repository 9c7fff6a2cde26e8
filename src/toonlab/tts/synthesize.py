"""Synthesis behind `toonlab tts say`: a checkpoint, text and one style control per attribute -> waveform.

Controls (see `toonlab.tts.style`): `--ref ATTR=a.wav` (reference), `--tokens ATTR=0:0.5,3:0.5` (token weights),
`--interp ATTR=a.wav,b.wav,0.3` (interpolation), `--random ATTR` (seeded random token weights). Attributes left
unset use the mean of their tokens. Token weights and interpolation factors must be finite numbers; a reference
with non-finite samples is refused when it is read.

Text longer than one sentence is spoken sentence by sentence (`split_text`: at . ! ? ; and line breaks, a
sentence over `MAX_CHUNK_CHARS` again at commas and spaces) with `PAUSE_SECONDS` of silence between the pieces,
so no piece runs into the decoder's step limit; a text over `MAX_TEXT_CHARS` characters is refused before any
synthesis (`max_chars` raises or lowers the limit).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from toonlab.tts.audio import AudioParams, Vocoder, load_wav, mel_spectrogram, save_wav
from toonlab.tts.checkpoint import load_checkpoint
from toonlab.tts.device import autocast, resolve_device
from toonlab.tts.model import MultiReferenceTTS, build_model, load_weights
from toonlab.tts.style import InterpolatedStyle, RandomTokens, ReferenceStyle, StyleControl, TokenWeights
from toonlab.tts.text import EmptyTextError, SymbolTable, TextFrontEnd, make_phonemizer

MAX_TEXT_CHARS = 5000  # about five minutes of speech; longer texts are refused before synthesis
MAX_CHUNK_CHARS = 200  # one decoder pass; a sentence longer than this is split at commas, then spaces
PAUSE_SECONDS = 0.25  # silence between sentences
WAV_SUFFIXES = (".wav", ".flac", ".ogg")


def reference_mel(path: str | Path, params: AudioParams) -> torch.Tensor:
    """A reference wav -> (T, n_mels) log-mel with the model's audio parameters."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"reference audio {path} does not exist")
    return mel_spectrogram(load_wav(path, params.sample_rate), params)


def _finite(value: str, what: str) -> float:
    try:
        x = float(value)
    except ValueError as exc:
        raise ValueError(f"{what} must be a number, got {value!r}") from exc
    if not math.isfinite(x):
        raise ValueError(f"{what} must be a finite number, got {value!r}")
    return x


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
            try:
                token = int(k)
            except ValueError as exc:
                raise ValueError(f"--tokens expects an integer token index, got {k!r}") from exc
            weights[token] = _finite(w, f"--tokens weight of token {token}")
        put(attr, TokenWeights(weights))
    for spec in interps:
        attr, value = _split(spec, "--interp")
        parts = value.split(",")
        if len(parts) != 3:
            raise ValueError(f"--interp expects ATTR=a.wav,b.wav,ALPHA, got {spec!r}")
        alpha = _finite(parts[2], "--interp ALPHA")
        put(attr, InterpolatedStyle(reference_mel(parts[0], params), reference_mel(parts[1], params), alpha))
    for attr in randoms:
        put(attr.strip(), RandomTokens(seed))
    return controls


def check_output(path: str | Path) -> Path:
    """Refuse an output path that cannot take a wav before any synthesis is spent on it."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"output {path} is a folder; give a file name such as {path / 'out.wav'}")
    if path.suffix.lower() not in WAV_SUFFIXES:
        raise ValueError(f"output {path}: the name must end in one of {', '.join(WAV_SUFFIXES)}")
    ancestor = next(p for p in path.absolute().parents if p.exists())  # the folder save_wav creates from
    if not ancestor.is_dir():
        raise ValueError(f"output {path}: {ancestor} is not a folder")
    if not os.access(ancestor, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ValueError(f"output {path} is not writable")
    return path


_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def _wrap(sentence: str, limit: int) -> list[str]:
    """One sentence -> pieces of at most `limit` characters, cut after commas where possible, else at spaces."""
    pieces: list[str] = []
    for part in re.split(r"(?<=,)\s+", sentence):
        words = part.split()
        while words:
            line = words.pop(0)[:limit]
            while words and len(line) + 1 + len(words[0]) <= limit:
                line += " " + words.pop(0)
            if pieces and len(pieces[-1]) + 1 + len(line) <= limit:
                pieces[-1] += " " + line
            else:
                pieces.append(line)
    return pieces


def split_text(text: str, max_chars: int = MAX_TEXT_CHARS, chunk_chars: int = MAX_CHUNK_CHARS) -> list[str]:
    """Text -> sentence-sized pieces of at most `chunk_chars` characters; over `max_chars` is a ValueError."""
    if len(text) > max_chars:
        raise ValueError(
            f"the text has {len(text):,} characters; the limit is {max_chars:,} (about five minutes of speech): "
            "split it into several files or raise the limit with --max-chars"
        )
    return [p for s in _SENTENCE_END.split(text) if s.strip() for p in _wrap(s.strip(), chunk_chars)]


@dataclass
class Synthesis:
    wav: torch.Tensor  # (samples,)
    mel: torch.Tensor  # (T, n_mels), all pieces and pauses
    alignments: list[torch.Tensor]  # one (T_k / r, L_k) per piece of text
    sample_rate: int
    hit_step_limit: bool = False  # some piece ran to the decoder's step limit (cut short)
    compute_seconds: float = float("nan")  # wall time of the synthesis, when the caller measured it

    @property
    def seconds(self) -> float:
        return self.wav.shape[0] / self.sample_rate

    @property
    def steps(self) -> int:
        return sum(a.shape[0] for a in self.alignments)


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
        cls, path: str | Path, vocoder: str = "griffin-lim", griffin_lim_iters: int = 32, device: str = "cpu"
    ) -> Synthesizer:
        """A checkpoint (file or run folder) on `device` ("cpu", "cuda", "cuda:N", "auto") with its vocoder:
        `griffin-lim`, `world` or a mel-to-linear file (`vocoders.make_vocoder`)."""
        from toonlab.tts.vocoders import make_vocoder

        where = resolve_device(device)
        ckpt = load_checkpoint(path)
        cfg = ckpt.config
        model = build_model(cfg, len(ckpt.symbols), ckpt.classes)
        load_weights(model, ckpt.model)
        phonemizer = make_phonemizer(cfg.train.text_frontend, cfg.train.espeak_voice)
        front = TextFrontEnd(phonemizer, SymbolTable(ckpt.symbols))
        return cls(model, front, cfg.audio, make_vocoder(vocoder, cfg.audio, griffin_lim_iters), where)

    @property
    def attributes(self) -> list[str]:
        return self.model.style.attributes

    @torch.no_grad()
    def say(
        self, text: str, controls: dict[str, StyleControl], seed: int = 0, max_chars: int = MAX_TEXT_CHARS
    ) -> Synthesis:
        """Speak `text` piece by piece (see `split_text`); each piece is vocoded on its own, pauses in between."""
        pieces = split_text(text, max_chars)
        if not pieces:
            raise EmptyTextError(f"nothing to say in {text!r}")
        encoded = [self.front.encode(p) for p in pieces]  # every piece checked before any synthesis
        limit = self.model.max_steps  # decoder steps (Tacotron) or frames (FastSpeech)
        pause = torch.zeros(round(PAUSE_SECONDS * self.params.sample_rate))
        pause_mel = torch.full(
            (round(PAUSE_SECONDS / self.params.frame_seconds), self.params.n_mels), self.params.pad_value
        )
        torch.manual_seed(seed)  # pre-net dropout stays on at inference
        wavs, mels, alignments = [], [], []
        for k, ids in enumerate(encoded):
            with autocast(self.device):
                out = self.model.synthesize(ids, controls)
            mel = out.mels_post[0].float().cpu()  # (T, n_mels); the vocoder runs on the CPU
            if not torch.isfinite(mel).all():
                raise ValueError("the model produced non-finite output (a corrupt checkpoint or style control)")
            if k:
                wavs.append(pause)
                mels.append(pause_mel)
            wavs.append(self.vocoder(mel))
            mels.append(mel)
            alignments.append(out.alignments[0].float().cpu())
        hit = any(a.shape[0] >= limit for a in alignments)
        return Synthesis(torch.cat(wavs), torch.cat(mels), alignments, self.params.sample_rate, hit)

    def write(self, result: Synthesis, path: str | Path) -> Path:
        return save_wav(path, result.wav, result.sample_rate)
