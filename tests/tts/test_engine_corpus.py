"""Crossed corpus builder: sentence selection, pho restyling, and a tiny real espeak-ng build."""

from __future__ import annotations

import os
import shutil
from collections import defaultdict

import pytest

from toonlab.tts import engines
from toonlab.tts.engine_corpus import build_corpus, is_plain, normalise, select_sentences
from toonlab.tts.engines import EngineMissing, get_voices, restyle_pho
from toonlab.tts.manifest import Corpus

SENTENCES = [
    "Never eat more than you can lift.",
    "It is much easier to be critical than to be correct.",
    "The wages of sin are high but you get your money's worth.",
]
VOICES = ["espeak_f3", "espeak_m3"]
STYLES = ["happy", "sad"]


def _need_espeak() -> None:
    if shutil.which("espeak-ng") is None:
        msg = "espeak-ng is not installed (run scripts/install_tts_engines.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def test_normalise_and_filter():
    assert normalise('  "Hello ,   world" ! ') == "Hello, world!"
    assert normalise("It\u2019s fine.") == "It's fine."
    assert is_plain("Never eat more than you can lift.")
    assert not is_plain("Too short.")
    assert not is_plain("Call 911 now, please, right away.")
    assert not is_plain("The NASA people are here today.")
    assert not is_plain(" ".join(["word"] * 16) + ".")


def test_select_sentences_is_deterministic_and_stable():
    pool = [f"This is sentence number {w} here." for w in "one two three four five six seven eight nine ten".split()]
    a = select_sentences(pool, 10, 0.2)
    assert a == select_sentences(list(reversed(pool)) + pool[:3], 10, 0.2)  # order and duplicates do not matter
    assert sum(s.split == "test" for s in a) == 2
    assert len({s.id for s in a}) == 10 and all("." not in s.id for s in a)
    small = select_sentences(pool, 5, 0.2)
    assert {s.id: s.text for s in small}.items() <= {s.id: s.text for s in a}.items()  # ids survive rescaling


def test_restyle_pho_scales_pitch_and_range():
    pho = "; comment\n_\t50\na\t100\t0 100 100 200\ne\t80\t50 150\n"
    out = restyle_pho(pho, pitch=2.0, range_=0.0).splitlines()
    assert out[0] == "; comment" and out[1].split() == ["_", "50"]
    assert out[2].split() == ["a", "100", "0", "300", "100", "300"]  # flat (range 0) at 2 x median 150
    same = restyle_pho(pho, 1.0, 1.0).splitlines()
    assert same[3].split() == ["e", "80", "50", "150"]


def test_missing_engine_names_install_script(monkeypatch):
    monkeypatch.setattr(engines.shutil, "which", lambda _: None)
    with pytest.raises(EngineMissing, match="install_tts_engines.sh"):
        get_voices(["flite_awb"])
    with pytest.raises(KeyError, match="unknown voice"):
        get_voices(["nobody"])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    _need_espeak()
    root = tmp_path_factory.mktemp("corpus")
    result = build_corpus(
        root, voices=VOICES, styles=STYLES, sentences=SENTENCES, n_sentences=3, test_frac=0.34, jobs=2
    )
    return root, result


def test_tiny_corpus_is_fully_crossed_with_sentence_split(tiny):
    root, result = tiny
    assert not result.errors and result.rendered == 12
    corpus = Corpus.load(root)
    assert corpus.attributes == ["speaker", "style"]
    assert corpus.labels("speaker") == sorted(VOICES) and corpus.labels("style") == sorted(STYLES)
    cells = {(u["speaker"], u["style"], u.sentence_id) for u in corpus.utterances}
    sentence_ids = {u.sentence_id for u in corpus.utterances}
    assert len(sentence_ids) == 3
    assert cells == {(v, s, i) for v in VOICES for s in STYLES for i in sentence_ids}
    split_of = defaultdict(set)
    for u in corpus.utterances:
        split_of[u.sentence_id].add(u.split)
        assert u.duration > 0.3 and u.audio.exists()
    assert all(len(s) == 1 for s in split_of.values())  # one split per sentence, for every speaker and style
    assert len(corpus.split("test")) == 4 and len(corpus.split("train")) == 8

    import soundfile as sf

    info = sf.info(str(corpus.utterances[0].audio))
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


def test_tiny_corpus_styles_are_distinct(tiny):
    _, result = tiny
    for voice, styles in result.info["voice_style_stats"].items():
        happy, sad = styles["happy"], styles["sad"]
        assert sad["rate_cps"] < 0.85 * happy["rate_cps"], voice
        assert sad["f0_mean_hz"] < 0.85 * happy["f0_mean_hz"], voice
        assert sad["rms_db"] < happy["rms_db"] - 3, voice
        assert sad["f0_range_st"] < happy["f0_range_st"], voice
    assert set(result.info["style_stats"]) == set(STYLES)


def test_rebuild_resumes_and_failures_are_counted(tiny):
    root, _ = tiny
    again = build_corpus(root, voices=VOICES, styles=STYLES, sentences=SENTENCES, n_sentences=3, test_frac=0.34, jobs=2)
    assert again.rendered == 0 and again.skipped == 12
    # An empty sentence renders no speech: a counted error, the rest of the build goes on.
    broken = build_corpus(
        root / "broken", voices=VOICES[:1], styles=STYLES[:1], sentences=["", SENTENCES[0]], n_sentences=2,
        test_frac=0.0, jobs=1, stats_per_cell=1,
    )  # fmt: skip
    assert len(broken.errors) == 1 and len(broken.rows) == 1
    assert (root / "broken" / "errors.jsonl").exists()


def test_cli_lists_voices_and_rejects_unknown(tmp_path):
    from typer.testing import CliRunner

    from toonlab.tts.cli import app

    runner = CliRunner()
    listed = runner.invoke(app, ["corpus", str(tmp_path), "--list-voices"])
    assert listed.exit_code == 0 and "mbrola_us1" in listed.output and "(default)" in listed.output
    bad = runner.invoke(app, ["corpus", str(tmp_path), "--voices", "nobody", "--text", __file__])
    assert bad.exit_code == 1 and "unknown voice" in bad.output


def test_balanced_design_renders_test_crossed_and_train_cells_evenly():
    from collections import Counter

    from toonlab.tts.engine_corpus import Sentence, design

    voices, styles = ["a", "b", "c", "d"], ["neutral", "happy", "sad"]
    chosen = [Sentence(f"s{i}", f"t{i}", "test" if i < 2 else "train") for i in range(50)]
    rows = design(chosen, voices, styles, train_cells=2)
    test = {(s.id, v, st) for s, v, st in rows if s.split == "test"}
    assert test == {(f"s{i}", v, st) for i in range(2) for v in voices for st in styles}  # fully crossed
    train = [(s.id, v, st) for s, v, st in rows if s.split == "train"]
    assert len(train) == 48 * 2 and len(set(train)) == len(train)
    per_sentence = Counter(i for i, _, _ in train)
    assert set(per_sentence.values()) == {2}
    cells = Counter((v, st) for _, v, st in train)
    assert len(cells) == 12 and max(cells.values()) - min(cells.values()) <= 1
    assert max(Counter(v for _, v, _ in train).values()) - min(Counter(v for _, v, _ in train).values()) <= 1
    assert max(Counter(st for *_, st in train).values()) - min(Counter(st for *_, st in train).values()) <= 1
    full = design(chosen, voices, styles)  # default: every cell for every sentence
    assert len(full) == 50 * 12
    with pytest.raises(ValueError, match="train_cells"):
        design(chosen, voices, styles, train_cells=13)
