"""Text front end: normalisation, phonemes from espeak-ng (or characters) and a saved symbol table.

The symbol table is built once from the training texts plus a fixed base set, saved in every checkpoint, and
never rebuilt at synthesis time, so ids stay stable. Symbols the table does not know are dropped and reported.
"""

from __future__ import annotations

import logging
import re
import shutil
import subprocess
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Protocol

import torch

log = logging.getLogger(__name__)

PAD = "_"
EOS = "~"
PUNCTUATION = list(",.;:!?-'\"() ")
LETTERS = list("abcdefghijklmnopqrstuvwxyz")
# English IPA as espeak-ng writes it (`--ipa`), one symbol per code point; stress and length marks included.
IPA = list("aæɐɑɒbdðeəɚɛɜfɡhiɪjklmnŋoɔprɹɾsʃtθuʊʌvwxzʒʔˈˌːᵻɬʲ̩")

_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-", "…": "."})
_CLAUSE = re.compile(r"([,.;:!?]+)")


class EmptyTextError(ValueError):
    """The text is empty (or only whitespace/unknown symbols) after normalisation."""


def normalize_text(text: str) -> str:
    """Unicode NFKC, plain quotes and dashes, lower case, collapsed whitespace; raise on empty text."""
    out = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    out = re.sub(r"\s+", " ", out).strip()
    if not out or not re.search(r"\w", out):
        raise EmptyTextError(f"nothing to say in {text!r}: the text is empty after normalisation")
    return out


class Phonemizer(Protocol):
    """Turns normalised text into a list of symbols."""

    kind: str

    def __call__(self, text: str) -> list[str]: ...


class CharacterPhonemizer:
    """Fallback front end: the normalised characters themselves."""

    kind = "characters"

    def __call__(self, text: str) -> list[str]:
        return list(text)


class EspeakPhonemizer:
    """IPA phonemes from `espeak-ng -q -x --ipa`, clause by clause so punctuation (pauses) survives; cached."""

    kind = "espeak"

    def __init__(self, voice: str = "en-us", executable: str | None = None) -> None:
        self.voice = voice
        self.executable = executable or shutil.which("espeak-ng")
        if self.executable is None:
            raise FileNotFoundError(
                "espeak-ng is not installed (apt-get install espeak-ng), or use the character front end"
            )
        self.cache: dict[str, list[str]] = {}

    def _ipa(self, chunk: str) -> str:
        out = subprocess.run(
            [self.executable, "-q", "-x", "--ipa", "-v", self.voice, chunk],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return " ".join(out.split())

    def __call__(self, text: str) -> list[str]:
        if text not in self.cache:
            symbols: list[str] = []
            for part in _CLAUSE.split(text):
                if not part.strip():
                    continue
                if _CLAUSE.fullmatch(part):
                    symbols.extend(part)
                    symbols.append(" ")
                else:
                    symbols.extend(self._ipa(part))
                    symbols.append(" ")
            self.cache[text] = [s for s in symbols[:-1] if s != "\n"]
        return self.cache[text]


def make_phonemizer(kind: str, voice: str = "en-us") -> Phonemizer:
    """`espeak` (IPA) or `characters`."""
    if kind == "espeak":
        return EspeakPhonemizer(voice)
    if kind == "characters":
        return CharacterPhonemizer()
    raise ValueError(f"unknown text front end {kind!r}; expected 'espeak' or 'characters'")


class SymbolTable:
    """Symbol <-> id map; id 0 is padding, id 1 end of sentence."""

    def __init__(self, symbols: Sequence[str]) -> None:
        if list(symbols[:2]) != [PAD, EOS]:
            raise ValueError(f"a symbol table starts with {PAD!r}, {EOS!r}")
        self.symbols = list(symbols)
        self.index = {s: i for i, s in enumerate(self.symbols)}
        if len(self.index) != len(self.symbols):
            raise ValueError("duplicate symbols in the table")

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], kind: str) -> SymbolTable:
        """Base set for the front end `kind` plus every symbol seen in `sequences`, in a stable order."""
        base = PUNCTUATION + (IPA if kind == "espeak" else LETTERS + list("0123456789"))
        seen = dict.fromkeys(base)
        for seq in sequences:
            seen.update(dict.fromkeys(seq))
        seen.pop(PAD, None)
        seen.pop(EOS, None)
        return cls([PAD, EOS, *sorted(seen)])

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, symbols: Sequence[str], unknown: set[str] | None = None) -> list[int]:
        """Ids of `symbols` plus EOS; unknown symbols are dropped and added to `unknown`."""
        ids, missing = [], set()
        for s in symbols:
            if s in self.index and s not in (PAD, EOS):
                ids.append(self.index[s])
            else:
                missing.add(s)
        if missing:
            if unknown is not None:
                unknown.update(missing)
            else:
                log.warning("dropped symbols unknown to the symbol table: %s", "".join(sorted(missing)))
        return [*ids, self.index[EOS]]


class TextFrontEnd:
    """Normalise -> phonemize -> ids, with the symbol table saved alongside the model."""

    def __init__(self, phonemizer: Phonemizer, symbols: SymbolTable) -> None:
        self.phonemizer = phonemizer
        self.symbols = symbols

    def symbols_of(self, text: str) -> list[str]:
        return self.phonemizer(normalize_text(text))

    def encode(self, text: str, unknown: set[str] | None = None) -> torch.Tensor:
        """(L,) long tensor of symbol ids ending with EOS; raises EmptyTextError when nothing remains."""
        ids = self.symbols.encode(self.symbols_of(text), unknown)
        if len(ids) < 2:
            raise EmptyTextError(f"no known symbols in {text!r}")
        return torch.tensor(ids, dtype=torch.long)
