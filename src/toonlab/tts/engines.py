"""Debian speech engines as voices that speak a sentence in a prosodic style.

A `Voice` renders `text` in a `Style` to a wav file with its engine's own prosody controls:

- `EspeakVoice`   espeak-ng voices and variants (e.g. `en-us+f3`): SSML `<prosody pitch range rate volume>`;
- `MbrolaVoice`   mbrola diphone voices: espeak-ng makes the phoneme/pitch-target file (`--pho`), the style
                  rewrites its pitch targets (shift + range around the utterance median), mbrola renders it with
                  its time (`-t`) and volume (`-v`) ratios (espeak-ng ignores SSML pitch/range for mbrola voices);
- `FliteVoice`    flite voices: `duration_stretch`, `int_f0_target_mean`/`_stddev`; level applied as a gain;
- `FestivalVoice` festival diphone voices: SABLE `<PITCH BASE RANGE>`, `<RATE SPEED>`; level applied as a gain
                  (SABLE `<VOLUME>` saturates instead of scaling);
- `PicoVoice`     SVOX pico: `<pitch level>`, `<speed level>`, `<volume level>` (no range control).

Engines are found on PATH; a missing one raises `EngineMissing` naming `scripts/install_tts_engines.sh`.
`VOICES` names every voice the corpus builder knows; `STYLES` the prosodic styles.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import escape as xml_escape

import numpy as np

INSTALL_HINT = "install the speech engines with `sudo bash scripts/install_tts_engines.sh`"
TIMEOUT_S = 120


class EngineMissing(RuntimeError):
    """A speech engine (or one of its voices) is not installed."""


class RenderError(RuntimeError):
    """An engine failed to render one utterance."""


@dataclass(frozen=True)
class Style:
    """Prosody targets relative to a voice's neutral speech.

    pitch: F0 ratio (1.3 = 30% higher); range: ratio of F0 excursions around the median;
    rate: speaking-rate ratio (1.2 = 20% faster); gain_db: loudness change.
    """

    name: str
    pitch: float = 1.0
    range: float = 1.0
    rate: float = 1.0
    gain_db: float = 0.0


# happy: higher, livelier, faster; sad: lower, flat, slow, quiet; angry: loud, fast, tense (moderately raised F0).
STYLES: dict[str, Style] = {
    s.name: s
    for s in (
        Style("neutral"),
        Style("happy", pitch=1.3, range=1.7, rate=1.2, gain_db=2.0),
        Style("sad", pitch=0.8, range=0.4, rate=0.72, gain_db=-8.0),
        Style("angry", pitch=1.12, range=1.3, rate=1.12, gain_db=7.0),
    )
}


class Voice(Protocol):
    """A speaker: `render` writes `text` spoken in `style` to `wav_path` (any rate; the builder resamples)."""

    name: str
    engine: str
    level_db: float  # loudness offset: neutral speech near -24 dB RMS, so +7 dB (angry) does not clip

    def check(self) -> None:
        """Raise EngineMissing unless the engine and this voice are installed."""
        ...

    def render(self, text: str, style: Style, wav_path: Path) -> None: ...


def require_engine(binary: str) -> str:
    path = shutil.which(binary)
    if path is None:
        raise EngineMissing(f"`{binary}` is not on PATH: {INSTALL_HINT}")
    return path


def _run(cmd: list[str], stdin: str | None = None) -> str:
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise RenderError(f"{cmd[0]} timed out after {TIMEOUT_S} s") from exc
    if proc.returncode != 0:
        raise RenderError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return proc.stdout


def _check_wav(wav_path: Path) -> None:
    if not wav_path.exists() or wav_path.stat().st_size <= 44:
        raise RenderError(f"engine wrote no audio to {wav_path}")


def volume(style: Style, voice: Voice) -> float:
    """Amplitude ratio for `style` spoken by `voice` (style gain + the voice's level offset)."""
    return float(10 ** ((style.gain_db + voice.level_db) / 20))


def apply_gain(wav_path: Path, ratio: float) -> None:
    """Scale a wav in place, stored as float so nothing clips (for engines without a loudness control)."""
    import soundfile as sf

    y, sr = sf.read(str(wav_path), dtype="float32")
    sf.write(str(wav_path), y * np.float32(ratio), sr, subtype="FLOAT")


def _pct(ratio: float) -> str:
    return f"{(ratio - 1) * 100:+.0f}%"


@dataclass
class EspeakVoice:
    """An espeak-ng voice (`voice` as for `espeak-ng -v`, e.g. "en-us+f3"), styled with SSML prosody."""

    name: str
    voice: str
    engine: str = "espeak-ng"
    level_db: float = 0.0

    def check(self) -> None:
        require_engine("espeak-ng")

    def render(self, text: str, style: Style, wav_path: Path) -> None:
        # espeak-ng SSML: range is a percentage of the default excursion; volume a percentage of amplitude.
        prosody = (
            f'pitch="{_pct(style.pitch)}" range="{_pct(style.range)}" rate="{_pct(style.rate)}" '
            f'volume="{_pct(volume(style, self))}"'
        )
        ssml = f"<speak><prosody {prosody}>{xml_escape(text)}</prosody></speak>"
        _run(["espeak-ng", "-m", "-v", self.voice, "-w", str(wav_path), ssml])
        _check_wav(wav_path)


@dataclass
class MbrolaVoice:
    """An mbrola diphone voice (`db` = "us1", "us2", "us3", "en1") driven by espeak-ng's phoneme output."""

    name: str
    db: str
    engine: str = "mbrola"
    level_db: float = 0.0
    root: Path = Path("/usr/share/mbrola")

    @property
    def database(self) -> Path:
        return self.root / self.db / self.db

    def check(self) -> None:
        require_engine("espeak-ng")
        require_engine("mbrola")
        if not self.database.exists():
            raise EngineMissing(f"mbrola voice {self.db} not found at {self.database}: {INSTALL_HINT}")

    def render(self, text: str, style: Style, wav_path: Path) -> None:
        pho = _run(["espeak-ng", "-q", "-v", f"mb-{self.db}", "--pho", text])
        pho = restyle_pho(pho, style.pitch, style.range)
        with tempfile.NamedTemporaryFile("w", suffix=".pho", delete=False) as f:
            f.write(pho)
        try:
            cmd = ["mbrola", "-e", "-t", f"{1 / style.rate:.3f}", "-v", f"{volume(style, self):.3f}"]
            _run([*cmd, str(self.database), f.name, str(wav_path)])
        finally:
            Path(f.name).unlink(missing_ok=True)
        _check_wav(wav_path)


def restyle_pho(pho: str, pitch: float, range_: float) -> str:
    """Rewrite the pitch targets of an mbrola .pho file: f' = m * pitch * (f / m) ** range, m = median target.

    Lines are `phone duration [pos% f0]...`; comments (`;`) and other lines pass through unchanged.
    """
    lines = pho.splitlines()
    f0s = [float(v) for line in lines for v in line.split()[3::2] if not line.startswith(";")]
    if not f0s:
        return pho
    m = float(np.median(f0s))
    out = []
    for line in lines:
        parts = line.split()
        if line.startswith(";") or len(parts) < 4:
            out.append(line)
            continue
        for i in range(3, len(parts), 2):
            parts[i] = f"{m * pitch * (float(parts[i]) / m) ** range_:.0f}"
        out.append(" ".join(parts))
    return "\n".join(out) + "\n"


@dataclass
class FliteVoice:
    """A flite voice (`voice` as for `flite -voice`: awb, rms, slt, kal); F0 targets relative to `f0_mean`."""

    name: str
    voice: str
    f0_mean: float
    f0_std: float
    engine: str = "flite"
    level_db: float = 0.0

    def check(self) -> None:
        require_engine("flite")

    def render(self, text: str, style: Style, wav_path: Path) -> None:
        cmd = ["flite", "-voice", self.voice, "--setf", f"duration_stretch={1 / style.rate:.3f}"]
        cmd += ["--setf", f"int_f0_target_mean={self.f0_mean * style.pitch:.1f}"]
        cmd += ["--setf", f"int_f0_target_stddev={self.f0_std * style.pitch * style.range:.1f}"]
        _run([*cmd, "-t", text, "-o", str(wav_path)])
        _check_wav(wav_path)
        apply_gain(wav_path, volume(style, self))


_SABLE = (
    '<?xml version="1.0"?>\n<!DOCTYPE SABLE PUBLIC "-//SABLE//DTD SABLE speech mark up//EN" '
    '"Sable.v0_2.dtd" []>\n<SABLE><SPEAKER NAME="{voice}"><RATE SPEED="{rate}">'
    '<PITCH BASE="{base}" RANGE="{range}">{text}</PITCH></RATE></SPEAKER></SABLE>\n'
)


@dataclass
class FestivalVoice:
    """A festival voice (`voice` = "ked_diphone", "kal_diphone"), styled with SABLE markup."""

    name: str
    voice: str
    engine: str = "festival"
    level_db: float = 0.0

    def check(self) -> None:
        require_engine("text2wave")

    def render(self, text: str, style: Style, wav_path: Path) -> None:
        sable = _SABLE.format(
            voice=self.voice,
            rate=_pct(style.rate),
            base=_pct(style.pitch),
            range=_pct(style.range),
            text=xml_escape(text),
        )
        with tempfile.NamedTemporaryFile("w", suffix=".sable", delete=False) as f:
            f.write(sable)
        try:
            _run(["text2wave", "-mode", "sable", f.name, "-o", str(wav_path)])
        finally:
            Path(f.name).unlink(missing_ok=True)
        _check_wav(wav_path)
        apply_gain(wav_path, volume(style, self))


@dataclass
class PicoVoice:
    """SVOX pico (`lang` = "en-US" or "en-GB"); levels are percentages of the default (100)."""

    name: str
    lang: str
    engine: str = "pico2wave"
    level_db: float = 0.0

    def check(self) -> None:
        require_engine("pico2wave")

    def render(self, text: str, style: Style, wav_path: Path) -> None:
        body = (
            f'<pitch level="{style.pitch * 100:.0f}"><speed level="{style.rate * 100:.0f}">'
            f'<volume level="{min(500.0, volume(style, self) * 100):.0f}">{xml_escape(text)}'
            "</volume></speed></pitch>"
        )
        # pico2wave insists on a .wav suffix and writes the file itself.
        _run(["pico2wave", "-l", self.lang, "-w", str(wav_path), body])
        _check_wav(wav_path)


# Every voice the builder knows, in default order (the first 8 are the default speaker set). Left out because
# their engine ignores the style controls: flite `rms` (F0 targets have no effect) and festival's
# `cmu_us_slt_arctic_hts` (SABLE pitch and rate have no effect).
VOICES: dict[str, Voice] = {
    v.name: v
    for v in (
        MbrolaVoice("mbrola_us1", "us1", level_db=-2.0),
        MbrolaVoice("mbrola_us2", "us2", level_db=-3.0),
        MbrolaVoice("mbrola_us3", "us3", level_db=2.0),
        MbrolaVoice("mbrola_en1", "en1", level_db=2.5),
        FliteVoice("flite_awb", "awb", f0_mean=126.0, f0_std=15.0, level_db=-4.5),
        FliteVoice("flite_slt", "slt", f0_mean=169.0, f0_std=20.0, level_db=-10.0),
        EspeakVoice("espeak_f3", "en-us+f3", level_db=-5.0),
        PicoVoice("pico_us", "en-US", level_db=-13.0),
        FliteVoice("flite_kal", "kal", f0_mean=88.0, f0_std=10.0, level_db=-5.0),
        FestivalVoice("festival_ked", "ked_diphone", level_db=-6.5),
        PicoVoice("pico_gb", "en-GB", level_db=-13.0),
        EspeakVoice("espeak_m3", "en-us+m3", level_db=-5.0),
        FestivalVoice("festival_kal", "kal_diphone", level_db=-6.5),
    )
}
DEFAULT_VOICES = list(VOICES)[:8]


def get_voices(names: list[str]) -> list[Voice]:
    """Look up voices by name and check their engines are installed (EngineMissing otherwise)."""
    unknown = [n for n in names if n not in VOICES]
    if unknown:
        raise KeyError(f"unknown voice(s) {unknown}; known: {', '.join(VOICES)}")
    voices = [VOICES[n] for n in names]
    for v in voices:
        v.check()
    return voices


def get_styles(names: list[str]) -> list[Style]:
    unknown = [n for n in names if n not in STYLES]
    if unknown:
        raise KeyError(f"unknown style(s) {unknown}; known: {', '.join(STYLES)}")
    return [STYLES[n] for n in names]
