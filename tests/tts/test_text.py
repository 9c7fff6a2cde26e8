"""Text normalisation, the symbol table, the character and espeak-ng front ends."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from toonlab.tts.text import (
    EOS,
    PAD,
    CharacterPhonemizer,
    EmptyTextError,
    EspeakPhonemizer,
    SymbolTable,
    TextFrontEnd,
    normalize_text,
)


def need_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is required in CI (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")


def test_normalize() -> None:
    assert normalize_text("  “Hello”\tWorld — it’s  fine… ") == '"hello" world - it\'s fine...'


@pytest.mark.parametrize("text", ["", "   ", "...", "?!"])
def test_empty_text_is_a_clear_error(text: str) -> None:
    with pytest.raises(EmptyTextError, match="nothing to say"):
        normalize_text(text)


def test_symbol_table_build_encode_and_unknown() -> None:
    table = SymbolTable.build([list("abc"), list("xyz!")], kind="characters")
    assert table.symbols[:2] == [PAD, EOS]
    assert SymbolTable(table.symbols).symbols == table.symbols  # round trip through a saved list
    unknown: set[str] = set()
    ids = table.encode(list("ab ж"), unknown)
    assert unknown == {"ж"}
    assert ids[-1] == table.index[EOS] and len(ids) == 4
    with pytest.raises(ValueError):
        SymbolTable(["a", "b"])


def test_character_front_end() -> None:
    table = SymbolTable.build([], kind="characters")
    front = TextFrontEnd(CharacterPhonemizer(), table)
    ids = front.encode("Hi, Bob!")
    assert [table.symbols[i] for i in ids.tolist()] == [*"hi, bob!", EOS]
    with pytest.raises(EmptyTextError):
        front.encode("жжж")  # nothing known remains


def test_espeak_phonemes_keep_punctuation_and_are_cached(monkeypatch) -> None:
    need_espeak()
    ph = EspeakPhonemizer("en-us")
    symbols = ph(normalize_text("Hello, world."))
    text = "".join(symbols)
    assert "ˈ" in text and "," in text and text.endswith(".")
    assert "h" in text and "w" in text

    def boom(*args, **kwargs):
        raise AssertionError("espeak-ng called again for a cached text")

    monkeypatch.setattr(subprocess, "run", boom)
    assert ph(normalize_text("Hello, world.")) == symbols


def test_espeak_symbols_are_in_the_base_table() -> None:
    need_espeak()
    ph = EspeakPhonemizer("en-us")
    table = SymbolTable.build([], kind="espeak")
    unknown: set[str] = set()
    table.encode(ph(normalize_text("The quick brown fox jumps over the lazy dog, thinking of pleasure.")), unknown)
    assert unknown == set()
