"""Manifest contract: round trip, user manifests, and clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from toonlab.tts.manifest import Corpus, ManifestError, load_manifest, write_manifest

sf = pytest.importorskip("soundfile")

ATTRS = ["speaker", "style"]


def _tiny(root, n_sent: int = 2):
    (root / "wavs").mkdir(parents=True)
    rows = []
    for spk in ("a", "b"):
        for sty in ("neutral", "sad"):
            for s in range(n_sent):
                uid = f"{spk}-{sty}-s{s}"
                sf.write(root / "wavs" / f"{uid}.wav", np.zeros(1600, dtype=np.float32), 16000, subtype="PCM_16")
                rows.append(
                    {
                        "id": uid,
                        "text": f"sentence {s}",
                        "audio": f"wavs/{uid}.wav",
                        "duration": 0.1,
                        "sample_rate": 16000,
                        "sentence_id": f"s{s}",
                        "split": "test" if s == 0 else "train",
                        "speaker": spk,
                        "style": sty,
                    }
                )
    return rows


def test_round_trip(tmp_path):
    rows = _tiny(tmp_path)
    write_manifest(tmp_path, rows, ATTRS, {"style_stats": {"sad": {"f0_mean": 90.0}}})
    corpus = Corpus.load(tmp_path)
    assert corpus.attributes == ATTRS
    assert len(corpus) == 8
    assert corpus.labels("speaker") == ["a", "b"]
    assert corpus.labels("style") == ["neutral", "sad"]
    assert corpus.sample_rate == 16000
    assert corpus.info["style_stats"]["sad"]["f0_mean"] == 90.0
    assert corpus.info["splits"]["test"] == {"utterances": 4, "sentences": 1}
    test = corpus.split("test")
    assert {u.sentence_id for u in test} == {"s0"}
    u = test[0]
    assert u.audio.is_absolute() and u.audio.exists()
    assert u["speaker"] == u.attrs["speaker"]
    assert hash(u)  # frozen records are hashable despite the attrs dict
    with pytest.raises(KeyError):
        corpus.labels("emotion")


def test_missing_audio_is_clear(tmp_path):
    rows = _tiny(tmp_path)
    write_manifest(tmp_path, rows, ATTRS)
    (tmp_path / "wavs" / "b-sad-s1.wav").unlink()
    with pytest.raises(ManifestError, match=r"b-sad-s1\.wav.*does not exist"):
        Corpus.load(tmp_path)


def test_corrupt_line_names_line_number(tmp_path):
    rows = _tiny(tmp_path)
    write_manifest(tmp_path, rows, ATTRS)
    manifest = tmp_path / "manifest.jsonl"
    lines = manifest.read_text().splitlines()
    lines[2] = lines[2][:20]
    manifest.write_text("\n".join(lines) + "\n")
    with pytest.raises(ManifestError, match=r"manifest\.jsonl:3: corrupt JSON"):
        Corpus.load(tmp_path)


def test_missing_folder_manifest_and_fields(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        Corpus.load(tmp_path / "nope")
    tmp_path.joinpath("corpus.json").write_text(json.dumps({"attributes": ATTRS}))
    with pytest.raises(ManifestError, match="manifest.jsonl does not exist"):
        Corpus.load(tmp_path)
    bad = tmp_path / "m.jsonl"
    bad.write_text(json.dumps({"id": "x", "text": "hi", "audio": "x.wav"}) + "\n")
    with pytest.raises(ManifestError, match=r"m\.jsonl:1: missing field\(s\) \['speaker', 'style'\]"):
        load_manifest(bad, ATTRS)


def test_dotted_id_rejected(tmp_path):
    rows = _tiny(tmp_path)
    rows[0]["id"] = "a.b"
    with pytest.raises(ManifestError, match="dot"):
        write_manifest(tmp_path, rows, ATTRS)


def test_user_csv_manifest(tmp_path):
    rows = _tiny(tmp_path)
    path = tmp_path / "mine.csv"
    with path.open("w") as f:
        f.write("id,text,audio,speaker,style\n")
        for r in rows:
            f.write(f"{r['id']},{r['text']},{r['audio']},{r['speaker']},{r['style']}\n")
    utts = load_manifest(path, ATTRS)
    assert len(utts) == 8
    assert utts[0].split == "train"
    assert utts[0].duration == pytest.approx(0.1)  # read from the file
    assert utts[0].sentence_id == utts[0].text
