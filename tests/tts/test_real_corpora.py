"""Real-corpus loaders on tiny fake layouts built here (LJSpeech, VCTK, ESD, hedgewars, fillets-ng), the
sentence-level split, and, behind the realmedia marker, the Debian voice packs fetched by scripts/fetch_speech.sh."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

sf = pytest.importorskip("soundfile")

from toonlab.cli import app  # noqa: E402
from toonlab.tts.manifest import Corpus, ManifestError  # noqa: E402
from toonlab.tts.real_corpora import held_out_sentences, import_corpus  # noqa: E402


def audio(path: Path, seconds: float = 0.3, rate: int = 22050, channels: int = 1) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = 0.1 * np.sin(np.arange(int(seconds * rate)) / 10.0)
    sf.write(str(path), np.stack([data] * channels, 1) if channels > 1 else data, rate)


def test_held_out_sentences_are_a_stable_share():
    ids = [f"s{i}" for i in range(50)]
    test = held_out_sentences(ids + ids, 0.1)
    assert len(test) == 5 and test == held_out_sentences(list(reversed(ids)), 0.1)
    assert held_out_sentences(ids[:3], 0.1) and not held_out_sentences(ids, 0.0)


def test_ljspeech(tmp_path):
    src = tmp_path / "LJSpeech-1.1"
    lines = [f"LJ001-000{i}|Raw text {i}.|Normalised text {i}." for i in range(1, 4)]
    (src / "wavs").mkdir(parents=True)
    (src / "metadata.csv").write_text("\n".join(lines) + "\n")
    for i in range(1, 4):
        audio(src / "wavs" / f"LJ001-000{i}.wav")
    corpus = Corpus.load(import_corpus("ljspeech", src, tmp_path / "out").parent)
    assert corpus.attributes == ["speaker"] and len(corpus) == 3
    u = corpus.utterances[0]
    assert u.text == "Normalised text 1." and u.audio.is_absolute() and u.duration == pytest.approx(0.3, abs=0.01)
    assert len(corpus.split("test")) == 1  # one of three sentences held out


def test_vctk_both_audio_layouts(tmp_path):
    src = tmp_path / "VCTK"
    for spk in ("p225", "p226"):
        for n in ("001", "002"):
            (src / "txt" / spk).mkdir(parents=True, exist_ok=True)
            (src / "txt" / spk / f"{spk}_{n}.txt").write_text("Please call Stella." if n == "001" else f"{spk} own.")
    audio(src / "wav48" / "p225" / "p225_001.wav")
    audio(src / "wav48" / "p225" / "p225_002.wav")
    audio(src / "wav48_silence_trimmed" / "p226" / "p226_001_mic1.flac")  # 0.92 layout; p226_002 has no audio
    corpus = Corpus.load(import_corpus("vctk", src, tmp_path / "out", test_frac=0.0).parent)
    assert sorted(u.id for u in corpus.utterances) == ["p225_001", "p225_002", "p226_001"]
    shared = {u.sentence_id for u in corpus.utterances if u.text == "Please call Stella."}
    assert len(shared) == 1  # the same text is the same sentence for every speaker


def test_esd_parallel_sentences_and_emotions(tmp_path):
    src = tmp_path / "ESD"
    rows = []
    for emotion, offset in (("Neutral", 0), ("Angry", 350)):
        for n in (1, 2):
            uid = f"0011_{offset + n:06d}"
            audio(src / "0011" / emotion / "train" / f"{uid}.wav", rate=16000)
            rows.append(f"{uid}\tSentence {n}.\t{emotion}")
    (src / "0011" / "0011.txt").write_text("\n".join(rows) + "\n", encoding="utf-16")
    corpus = Corpus.load(import_corpus("esd", src, tmp_path / "out", test_frac=0.5).parent)
    assert corpus.attributes == ["speaker", "style"] and corpus.labels("style") == ["angry", "neutral"]
    pairs = {(u.sentence_id, u.attrs["style"]) for u in corpus.utterances}
    assert pairs == {("000", "neutral"), ("001", "neutral"), ("000", "angry"), ("001", "angry")}
    assert len({u.sentence_id for u in corpus.split("test")}) == 1  # held out for both emotions


def test_hedgewars_voice_packs(tmp_path):
    voices = tmp_path / "usr/share/games/hedgewars/Data/Sounds/voices"
    for voice in ("Default", "Pirate", "Default_es"):
        for phrase in ("Hello", "Ouch", "Victory", "Strange"):
            audio(voices / voice / f"{phrase}.ogg", rate=44100, channels=2)
    corpus = Corpus.load(import_corpus("hedgewars", tmp_path, tmp_path / "out").parent)
    assert corpus.labels("speaker") == ["Default", "Pirate"]  # Spanish pack left out by default
    styles = {u.sentence_id: (u.text, u.attrs["style"]) for u in corpus.utterances}
    assert styles["Hello"] == ("Hello!", "neutral") and styles["Ouch"][1] == "pain"
    assert styles["Strange"] == ("Strange", "other")


def test_fillets_dialogue(tmp_path):
    base = tmp_path / "fillets-ng"
    (base / "script" / "lvl").mkdir(parents=True)
    (base / "script" / "lvl" / "dialogs_cs.lua").write_text(
        '\ndialogId("l-m-a", "font_small", "What is that?")\ndialogStr("Co je to?")\n\n'
        'dialogId("l-v-b", "font_big", "A \\"ship\\".")\ndialogStr("Lod\'.")\n\n'
        'dialogId("l-v-c", "font_big", "No sound.")\ndialogStr("Bez zvuku.")\n'
    )
    audio(base / "sound" / "lvl" / "cs" / "l-m-a.ogg")
    audio(base / "sound" / "lvl" / "cs" / "l-v-b.ogg")
    result = CliRunner().invoke(app, ["tts", "import-corpus", "fillets", str(tmp_path), str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    corpus = Corpus.load(tmp_path / "out")
    assert {u.attrs["speaker"]: u.text for u in corpus.utterances} == {"cs-small": "Co je to?", "cs-big": "Lod'."}


def test_unknown_kind_and_empty_layout(tmp_path):
    with pytest.raises(ValueError, match="unknown corpus kind"):
        import_corpus("nope", tmp_path, tmp_path / "out")
    with pytest.raises(ManifestError):
        import_corpus("hedgewars", tmp_path, tmp_path / "out")
    result = CliRunner().invoke(app, ["tts", "import-corpus", "ljspeech", str(tmp_path / "missing"), str(tmp_path)])
    assert result.exit_code == 2 and "error" in result.output


@pytest.mark.realmedia
@pytest.mark.parametrize(("kind", "folder", "minimum"), [("hedgewars", "hedgewars", 550), ("fillets", "fillets", 1600)])
def test_debian_speech_packages(kind, folder, minimum, speech_dir, tmp_path):
    corpus = Corpus.load(import_corpus(kind, speech_dir / folder, tmp_path / "out").parent)
    assert len(corpus) >= minimum and corpus.split("test") and corpus.split("train")
    assert len(corpus.labels("speaker")) >= 10
    assert all(u.duration > 0 and u.text for u in corpus.utterances)
