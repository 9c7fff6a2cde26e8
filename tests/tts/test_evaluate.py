"""`toonlab tts evaluate` on a micro model and a tone corpus: the crossed-case rule, every table of the report,
the judges' own accuracy on real audio, probes on separable and on random embeddings, and clean errors."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

pytest.importorskip("librosa")
pytest.importorskip("sklearn")

from toonlab.cli import app  # noqa: E402
from toonlab.tts.classifiers import GE2E_JUDGE, NearestCentroid, probe_accuracy, select_judge  # noqa: E402
from toonlab.tts.evaluate import RealAudio, build_judges, crossed_cases  # noqa: E402
from toonlab.tts.manifest import Corpus, write_manifest  # noqa: E402
from toonlab.tts.real_corpora import import_corpus  # noqa: E402


def test_crossed_cases_follow_the_intercross_rule(tone_corpus):
    corpus = Corpus.load(tone_corpus)
    cases = crossed_cases(corpus, 8, seed=3)
    assert len(cases) == 8 and cases == crossed_cases(corpus, 8, seed=3)
    for case in cases:
        t = case.target
        assert t.split == "test"
        for attr, ref in case.references.items():
            assert ref.attrs[attr] == t.attrs[attr]
            assert all(ref.attrs[o] != t.attrs[o] for o in corpus.attributes if o != attr)
            assert ref.sentence_id != t.sentence_id and ref.split == "test"


def test_probes_and_centroids_on_known_embeddings():
    rng = np.random.default_rng(0)
    labels = [f"c{i % 3}" for i in range(60)]
    centres = rng.normal(size=(3, 8)) * 4
    x = np.stack([centres[int(lab[1])] for lab in labels]) + rng.normal(size=(60, 8))
    assert probe_accuracy(x, labels)["accuracy"] > 0.95
    noise = probe_accuracy(rng.normal(size=(60, 8)), labels)
    assert noise["chance"] == pytest.approx(1 / 3) and noise["accuracy"] < 0.6
    nc = NearestCentroid(x, labels)
    assert nc.predict(centres) == ["c0", "c1", "c2"]


def test_judge_is_the_candidate_that_separates_the_training_clips():
    rng = np.random.default_rng(1)
    labels = [f"v{i % 3}" for i in range(60)]
    centres = rng.normal(size=(3, 12)) * 4
    separable = np.stack([centres[int(lab[1])] for lab in labels]) + rng.normal(size=(60, 12))
    noise = rng.normal(size=(60, 12))
    # voices told apart only by prosody/mel statistics (effect-laden game voices): logistic regression on them wins
    clips = [{"speaker": n, "style": f} for n, f in zip(noise, separable, strict=True)]
    judge = select_judge(clips, labels, [GE2E_JUDGE])
    assert "style" in judge.keys and judge.cv[judge.name] > 0.9 and judge.cv[GE2E_JUDGE] < 0.6
    assert judge.predict([{"speaker": noise[0], "style": centres[2]}]) == ["v2"]
    # voices told apart by the speaker embedding: GE2E centroids win (a tie with the combined model goes to them)
    clips = [{"speaker": f, "style": n} for n, f in zip(noise, separable, strict=True)]
    judge = select_judge(clips, labels, [GE2E_JUDGE])
    assert judge.name == GE2E_JUDGE and judge.keys == ("speaker",) and judge.cv[GE2E_JUDGE] > 0.9


@pytest.mark.realmedia
def test_judges_on_real_hedgewars_voices(speech_dir, tmp_path):
    """On the game voices GE2E centroids are weak; the judge picked on the training split must beat them there
    and tell held-out real clips of 10 voices apart far above chance (10%)."""
    pytest.importorskip("resemblyzer")
    from toonlab.tts.audio import AudioParams
    from toonlab.tts.classifiers import SpeakerEncoder

    corpus = Corpus.load(import_corpus("hedgewars", speech_dir / "hedgewars", tmp_path / "hw").parent)
    judges = build_judges(RealAudio(corpus, AudioParams(), SpeakerEncoder(), tmp_path / "features"), 6, seed=0)
    speaker = judges.per_attribute["speaker"]
    assert speaker.name != GE2E_JUDGE and speaker.cv[speaker.name] > speaker.cv[GE2E_JUDGE] + 0.15
    assert judges.held_out_accuracy["speaker"] >= 0.6
    assert judges.centroids is not None and judges.centroids.classes == corpus.labels("speaker")


def test_evaluate_end_to_end(tone_corpus, micro_run, tmp_path):
    out = tmp_path / "eval"
    args = ["tts", "evaluate", str(micro_run), "--corpus", str(tone_corpus), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--cases", "4", "--per-cell", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["cases"] == 4 and len((out / "cases.jsonl").read_text().splitlines()) == 4
    for attr in ("speaker", "style"):
        c = report["control"][attr]
        assert 0 <= c["accuracy"] <= 1 and c["chance"] == pytest.approx(1 / (3 if attr == "speaker" else 2))
        assert c["judge_held_out_accuracy"] >= 0.9  # the judges tell the real tone voices and styles apart
        assert c["judge_cv_accuracy"][c["judge"]] == max(c["judge_cv_accuracy"].values())
        assert (out / c["confusion"]).read_bytes()[:4] == b"\x89PNG"
    assert {"cos_speaker_ref", "cos_other_ref", "cos_target_speaker_centroid"} <= set(report["control"]["speaker"])
    assert report["fidelity"]["mcd_db"] > 0 and report["fidelity"]["mcd_vocoder_floor_db"] >= 0
    assert 0 <= report["intelligibility"]["wer"] and 0 <= report["intelligibility"]["wer_real"]
    assert set(report["length"]) == {"speaker", "style", "target"}
    assert set(report["probes"]) == {"speaker", "style"}  # one row per sub-encoder
    assert all(set(v) == {"speaker", "style"} for v in report["probes"].values())
    md = (out / "report.md").read_text()
    assert "judge (training-split CV accuracy)" in md
    for heading in ("| control |", "| fidelity |", "| WER (pocketsphinx) |", "| output duration vs |", "| probe:"):
        assert heading in md and heading in result.output
    assert len(list((out / "audio").glob("case*.wav"))) == 4
    cached = list((tone_corpus / "features").glob("eval-real-*.pt"))
    assert len(cached) == 1  # real-audio features are cached for the next evaluation


def test_evaluate_errors_cleanly(tone_corpus, micro_run, tmp_path):
    rows = [json.loads(line) for line in (tone_corpus / "manifest.jsonl").read_text().splitlines()]
    for r in rows:
        r["split"], r["audio"] = "train", str(tone_corpus / r["audio"])
    write_manifest(tmp_path / "no_test", rows, ["speaker", "style"])
    result = CliRunner().invoke(app, ["tts", "evaluate", str(micro_run), "--corpus", str(tmp_path / "no_test")])
    assert result.exit_code == 2 and "held-out" in result.output
