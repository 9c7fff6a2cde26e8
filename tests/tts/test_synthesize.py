"""`toonlab tts say` on hostile input: non-finite references and token weights, an output path that cannot take a
wav, and texts too long for one decoder pass."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("librosa")

from toonlab.cli import app  # noqa: E402
from toonlab.tts.synthesize import MAX_CHUNK_CHARS, Synthesizer, check_output, split_text  # noqa: E402


def _say(run, *args: str):
    return CliRunner().invoke(app, ["tts", "say", str(run), *args])


def test_nan_reference_is_refused(micro_run, tmp_path):
    import soundfile as sf

    bad = tmp_path / "nan.wav"
    sf.write(bad, np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    out = tmp_path / "out.wav"
    result = _say(micro_run, "The cat sat down.", "-o", str(out), "--ref", f"style={bad}")
    assert result.exit_code == 2
    assert "non-finite" in result.output and "nan.wav" in result.output
    assert not out.exists()


@pytest.mark.parametrize("weights", ["0:nan", "0:inf", "0:-inf,1:0.5", "x:0.5", "0:abc"])
def test_bad_token_weights_are_refused(micro_run, tmp_path, weights):
    out = tmp_path / "out.wav"
    result = _say(micro_run, "The cat sat down.", "-o", str(out), "--tokens", f"style={weights}")
    assert result.exit_code == 2, result.output
    assert "--tokens" in result.output
    assert not out.exists()


def test_nan_interpolation_factor_is_refused(micro_run, tone_corpus, tmp_path):
    a, b = sorted((tone_corpus / "wavs").glob("*.wav"))[:2]
    result = _say(micro_run, "Hi.", "-o", str(tmp_path / "o.wav"), "--interp", f"style={a},{b},nan")
    assert result.exit_code == 2 and "finite" in result.output


def test_output_is_checked_before_synthesis(micro_run, tmp_path, monkeypatch):
    def never(*_a, **_k):
        raise AssertionError("synthesis ran before the output path was checked")

    monkeypatch.setattr(Synthesizer, "say", never)
    for bad, why in [
        (tmp_path, "is a folder"),
        (tmp_path / "out.mp3", "must end in"),
        (tmp_path / "f.wav" / "x.wav", "not a folder"),
    ]:
        (tmp_path / "f.wav").write_bytes(b"")
        result = _say(micro_run, "The cat sat down.", "-o", str(bad))
        assert result.exit_code == 2, result.output
        assert why in result.output
    assert (tmp_path / "f.wav").read_bytes() == b""  # nothing overwritten


def test_check_output_accepts_a_new_file_in_a_new_folder(tmp_path):
    assert check_output(tmp_path / "a" / "b.wav") == tmp_path / "a" / "b.wav"


def test_long_text_is_split_into_sentences():
    text = "First one. Second, with a comma! " + "word " * 120 + "\nLast line"
    pieces = split_text(text)
    assert pieces[:2] == ["First one.", "Second, with a comma!"]
    assert pieces[-1] == "Last line"
    assert all(len(p) <= MAX_CHUNK_CHARS for p in pieces)
    assert " ".join(pieces).split() == text.split()  # nothing dropped


def test_text_over_the_limit_is_refused_at_once(micro_run, tmp_path, monkeypatch):
    monkeypatch.setattr(Synthesizer, "load", lambda *a, **k: pytest.fail("loaded the model for a refused text"))
    result = _say(micro_run, "Hello there. " * 8000, "-o", str(tmp_path / "o.wav"))
    assert result.exit_code == 2 and "104,000 characters" in result.output and "5,000" in result.output


def test_several_sentences_are_spoken_in_pieces(micro_run, tmp_path):
    out = tmp_path / "o.wav"
    result = _say(micro_run, "The cat sat down. We like green tea. Rain falls.", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "in 3 pieces" in result.output
    import soundfile as sf

    wav, _ = sf.read(out)
    assert np.isfinite(wav).all() and np.abs(wav).max() > 0
