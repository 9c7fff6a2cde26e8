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
from toonlab.tts.evaluate import crossed_cases, style_sweeps  # noqa: E402
from toonlab.tts.judging import RealAudio, build_judges  # noqa: E402
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
    real = RealAudio(corpus, AudioParams(), SpeakerEncoder(), tmp_path / "features")
    judges = build_judges({"real": real}, 6, seed=0, vocoded=False)
    speaker = judges.per_attribute["speaker"]
    assert speaker.name != GE2E_JUDGE and speaker.cv[speaker.name] > speaker.cv[GE2E_JUDGE] + 0.15
    assert judges.held_out_accuracy["speaker"]["real"] >= 0.6
    assert judges.centroids is not None and judges.centroids.classes == corpus.labels("speaker")


def test_evaluate_end_to_end(tone_corpus, micro_run, tmp_path):
    out = tmp_path / "eval"
    args = ["tts", "evaluate", str(micro_run), "--corpus", str(tone_corpus), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--cases", "4", "--per-cell", "2", "--sweeps", "2"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["cases"] == 4 and len((out / "cases.jsonl").read_text().splitlines()) == 4
    assert report["vocoder"] == "Griffin-Lim (32 iterations, power 1.5)" and report["sweeps"]["style"]["sweeps"] == 2
    assert len((out / "sweeps.jsonl").read_text().splitlines()) == 2
    for attr in ("speaker", "style"):
        c = report["control"][attr]
        assert c["chance"] == pytest.approx(1 / (3 if attr == "speaker" else 2))
        assert set(c["classifier"]) == {"output", "real", "vocoded", "degraded"}  # the control rows
        for row in c["classifier"].values():
            lo, hi = row["interval"]
            assert row["n"] == 4 and 0 <= lo <= row["accuracy"] <= hi <= 1
        assert set(c["judge_held_out"]) == {"real", "vocoded", "degraded"}
        assert c["judge_held_out"]["vocoded"] >= 0.9  # the judges tell the vocoded tone voices and styles apart
        assert c["judge_cv_accuracy"][c["judge"]] == max(c["judge_cv_accuracy"].values())
        assert (out / c["confusion"]).read_bytes()[:4] == b"\x89PNG"
    style = report["control"]["style"]
    assert set(style["model_free"]) == {"output", "real", "vocoded", "degraded"} and "agreement" in style
    assert style["model_free"]["real"]["accuracy"] >= 0.75  # loudness, rate and pitch separate the tone styles
    assert "model_free" not in report["control"]["speaker"]
    assert {"cos_speaker_ref", "cos_other_ref", "cos_target_speaker_centroid"} <= set(report["control"]["speaker"])
    measures = report["style_measures"]["style"]
    assert set(measures["real"]) == {"calm", "lively"} and len(measures["spearman"]) == 4
    lively, calm = measures["real"]["lively"], measures["real"]["calm"]
    assert lively[0] > calm[0] and lively[2] > calm[2] and lively[3] > calm[3] + 3  # pitch, rate, gain (dB)
    assert report["fidelity"]["mcd_db"]["mean"] > 0 and report["fidelity"]["mcd_vocoder_floor_db"]["mean"] >= 0
    assert report["fidelity"]["rtf"]["mean"] > 0
    assert set(report["intelligibility"]) == {"output", "real", "vocoded", "degraded"}
    assert all(v["wer"] >= 0 for v in report["intelligibility"].values())
    assert set(report["length"]) == {"speaker", "style", "target"}
    assert set(report["probes"]) == {"speaker", "style"}  # one row per sub-encoder
    assert all(set(v) == {"speaker", "style"} for v in report["probes"].values())
    md = (out / "report.md").read_text()
    for heading in (
        "| judge | attribute |",
        "| control (95% interval) |",
        "degraded real",
        "| fidelity |",
        "| WER (pocketsphinx) [95%] |",
        "| output duration vs |",
        "| probe:",
        "speaker-normalised",
    ):
        assert heading in md and heading in result.output  # fmt: skip
    assert len(list((out / "audio").glob("case*.wav"))) == 4
    cached = {p.name.split("-")[1] for p in (tone_corpus / "features").glob("eval-*.pt")}
    assert cached == {"degraded", "real", "vocoded"}  # real-audio features are cached for the next evaluation


def test_evaluate_resumes_after_an_interruption(tone_corpus, micro_run, tmp_path, monkeypatch):
    from toonlab.tts import evaluate as ev

    out = tmp_path / "eval"
    calls = []
    real_case_row = ev.case_row

    class Killed(Exception):
        pass

    killed = []

    def flaky(ctx, k, case, seed):
        calls.append(k)
        if k == 2 and not killed:
            killed.append(k)
            raise Killed  # the first run is killed during its third case
        return real_case_row(ctx, k, case, seed)

    monkeypatch.setattr(ev, "case_row", flaky)
    with pytest.raises(Killed):
        ev.evaluate(micro_run, tone_corpus, out, n_cases=4, per_cell=2, asr=False, n_sweeps=0)
    with (out / "partial.jsonl").open("a") as f:
        f.write('{"id": "case2", "row": {"tor')  # a torn last line
    calls.clear()
    report = ev.evaluate(micro_run, tone_corpus, out, n_cases=4, per_cell=2, asr=False, n_sweeps=0)
    assert calls == [2, 3] and report["cases"] == 4  # the two finished cases were not redone
    calls.clear()
    ev.evaluate(micro_run, tone_corpus, out, n_cases=4, per_cell=3, asr=False, n_sweeps=0)
    assert calls == [0, 1, 2, 3]  # other settings: a fresh start


def test_style_sweeps_hold_sentence_and_voice(tone_corpus):
    corpus = Corpus.load(tone_corpus)
    sweeps = style_sweeps(corpus, 3, seed=1)
    assert len(sweeps) == 3
    for sw in sweeps:
        assert set(sw.references) == set(sw.real) == {"calm", "lively"}
        assert all(u.sentence_id != sw.real["calm"].sentence_id for u in sw.references.values())
        assert sw.speaker_reference.attrs["speaker"] == sw.speaker
        assert all(u.attrs["speaker"] == sw.speaker and u.text == sw.text for u in sw.real.values())


def test_evaluate_errors_cleanly(tone_corpus, micro_run, tmp_path):
    rows = [json.loads(line) for line in (tone_corpus / "manifest.jsonl").read_text().splitlines()]
    for r in rows:
        r["split"], r["audio"] = "train", str(tone_corpus / r["audio"])
    write_manifest(tmp_path / "no_test", rows, ["speaker", "style"])
    result = CliRunner().invoke(app, ["tts", "evaluate", str(micro_run), "--corpus", str(tmp_path / "no_test")])
    assert result.exit_code == 2 and "held-out" in result.output


def test_real_audio_cache_shared_by_two_evaluations(tone_corpus, tmp_path):
    """Two evaluations saving one real-audio cache: no clash of temporary files, and the entries of both stay."""
    from toonlab.tts.audio import AudioParams
    from toonlab.tts.judging import RealAudio
    from toonlab.tts.manifest import Corpus

    corpus = Corpus.load(tone_corpus)
    first, second = (RealAudio(corpus, AudioParams(), None, tmp_path) for _ in range(2))
    first.cache["a"], second.cache["b"] = {"seconds": 1.0}, {"seconds": 2.0}
    second.cache["a"] = {"seconds": 1.0, "asr": "hello"}  # the same clip, with a transcript only this one made
    first._dirty = second._dirty = True
    first.save()
    second.save()
    first._dirty = True
    first.save()  # saved again after the other: it must not drop what the other added
    merged = RealAudio(corpus, AudioParams(), None, tmp_path).cache
    assert merged == {"a": {"seconds": 1.0, "asr": "hello"}, "b": {"seconds": 2.0}}
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]  # no temporary file left behind
