"""Utterance manifests with per-utterance style attributes, and the corpus folder that holds them.

Corpus folder layout (written by `toonlab tts corpus`, readable for any corpus laid out the same way):

    OUT/manifest.jsonl    one JSON object per utterance (fields below)
    OUT/wavs/<id>.wav     mono PCM16 at the corpus sample rate, silence trimmed
    OUT/corpus.json       {"attributes": [...], "values": {attr: [...]}, "sample_rate": int, "splits": ...}

Manifest row fields: `id` (str, no dots), `text`, `audio` (path relative to the corpus folder, or
absolute), `duration` (s), `sample_rate`, `sentence_id`, `split` ("train" | "test"; the split is by sentence,
so a held-out sentence is test for every speaker and style), and one string field per attribute (e.g.
`speaker`, `style`).

A user's own manifest (jsonl or csv with the same columns; `duration`, `sample_rate`, `sentence_id` and
`split` optional) loads with `load_manifest(path, attributes)`.
"""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.jsonl"
INFO = "corpus.json"
WAVS = "wavs"
SPLITS = ("train", "test")
REQUIRED = ("id", "text", "audio")


class ManifestError(ValueError):
    """A manifest or corpus folder is missing, malformed, or points at audio that does not exist."""


@dataclass(frozen=True)
class Utterance:
    """One recording: its text, absolute audio path and one label per style attribute."""

    id: str
    text: str
    audio: Path
    duration: float
    sentence_id: str
    split: str
    attrs: dict[str, str] = field(default_factory=dict, hash=False, compare=True)

    def __getitem__(self, attr: str) -> str:
        return self.attrs[attr]


@dataclass
class Corpus:
    """A set of utterances labelled with `attributes` (e.g. ["speaker", "style"]), rooted at `root`."""

    root: Path
    attributes: list[str]
    utterances: list[Utterance]
    info: dict[str, Any] = field(default_factory=dict)

    def split(self, name: str) -> list[Utterance]:
        if name not in SPLITS:
            raise ValueError(f"unknown split {name!r}; expected one of {SPLITS}")
        return [u for u in self.utterances if u.split == name]

    def labels(self, attr: str) -> list[str]:
        """Sorted distinct values of `attr` over the whole corpus (stable class indices for classifiers)."""
        if attr not in self.attributes:
            raise KeyError(f"{attr!r} is not an attribute of this corpus ({self.attributes})")
        return sorted({u.attrs[attr] for u in self.utterances})

    @property
    def sample_rate(self) -> int | None:
        return self.info.get("sample_rate")

    def __len__(self) -> int:
        return len(self.utterances)

    @classmethod
    def load(cls, root: str | Path, attributes: list[str] | None = None) -> Corpus:
        """Load `root/manifest.jsonl` (attributes from `root/corpus.json` unless given)."""
        root = Path(root)
        if not root.is_dir():
            raise ManifestError(f"corpus folder {root} does not exist (build one with `toonlab tts corpus {root}`)")
        info: dict[str, Any] = {}
        info_path = root / INFO
        if info_path.exists():
            try:
                info = json.loads(info_path.read_text())
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{info_path}: not valid JSON ({exc})") from exc
        if attributes is None:
            attributes = info.get("attributes")
            if not attributes:
                raise ManifestError(f"{info_path} is missing or lists no 'attributes'; pass attributes explicitly")
        manifest = root / MANIFEST
        if not manifest.exists():
            raise ManifestError(f"{manifest} does not exist: not a corpus folder (or the build did not finish)")
        utterances = load_manifest(manifest, list(attributes))
        return cls(root=root, attributes=list(attributes), utterances=utterances, info=info)


def _read_rows(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    """Yield (line number, row) from a .jsonl or .csv manifest."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="") as f:
            for lineno, row in enumerate(csv.DictReader(f), start=2):
                yield lineno, dict(row)
        return
    with path.open() as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ManifestError(f"{path}:{lineno}: corrupt JSON line ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise ManifestError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
            yield lineno, row


def _duration(audio: Path) -> float:
    from toonlab.extras import require

    sf = require("soundfile")
    return float(sf.info(str(audio)).duration)


def load_manifest(path: str | Path, attributes: list[str], check_audio: bool = True) -> list[Utterance]:
    """Read a jsonl or csv manifest with columns id, text, audio and one column per attribute.

    Relative audio paths resolve against the manifest's folder. Optional columns: duration (read from the file
    when absent), sentence_id (defaults to the text), split (defaults to "train").
    """
    path = Path(path)
    if not path.exists():
        raise ManifestError(f"manifest {path} does not exist")
    base = path.parent.resolve()
    out: list[Utterance] = []
    seen: set[str] = set()
    for lineno, row in _read_rows(path):
        where = f"{path}:{lineno}"
        missing = [k for k in (*REQUIRED, *attributes) if row.get(k) in (None, "")]
        if missing:
            raise ManifestError(f"{where}: missing field(s) {missing}")
        uid = str(row["id"])
        if uid in seen:
            raise ManifestError(f"{where}: duplicate id {uid!r}")
        seen.add(uid)
        audio = Path(row["audio"])
        audio = audio if audio.is_absolute() else base / audio
        if check_audio and not audio.exists():
            raise ManifestError(f"{where}: audio file {audio} for utterance {uid!r} does not exist")
        split = str(row.get("split") or "train")
        if split not in SPLITS:
            raise ManifestError(f"{where}: split {split!r} is not one of {SPLITS}")
        duration = row.get("duration")
        try:
            duration = float(duration) if duration not in (None, "") else _duration(audio)
        except (TypeError, ValueError) as exc:
            raise ManifestError(f"{where}: bad duration {row.get('duration')!r}") from exc
        out.append(
            Utterance(
                id=uid,
                text=str(row["text"]),
                audio=audio,
                duration=duration,
                sentence_id=str(row.get("sentence_id") or row["text"]),
                split=split,
                attrs={a: str(row[a]) for a in attributes},
            )
        )
    if not out:
        raise ManifestError(f"manifest {path} has no utterances")
    return out


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_manifest(
    root: str | Path,
    rows: Iterable[Mapping[str, Any]],
    attributes: list[str],
    extra_info: Mapping[str, Any] | None = None,
) -> Path:
    """Write `root/manifest.jsonl` and `root/corpus.json` atomically (temp file + rename).

    corpus.json gets the attributes, the sorted values of each, the sample rate, the per-split utterance and
    sentence counts, and whatever `extra_info` holds (e.g. per-style acoustic statistics).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rows = sorted((dict(r) for r in rows), key=lambda r: r["id"])
    for r in rows:
        missing = [k for k in (*REQUIRED, *attributes) if k not in r]
        if missing:
            raise ManifestError(f"row {r.get('id')!r} lacks field(s) {missing}")
        if "." in str(r["id"]):
            raise ManifestError(f"utterance id {r['id']!r} contains a dot")
    _atomic_write(root / MANIFEST, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    splits = {
        s: {
            "utterances": sum(r.get("split") == s for r in rows),
            "sentences": len({r.get("sentence_id") for r in rows if r.get("split") == s}),
        }
        for s in SPLITS
    }
    rates = sorted({int(r["sample_rate"]) for r in rows if "sample_rate" in r})
    info: dict[str, Any] = {
        "attributes": list(attributes),
        "values": {a: sorted({str(r[a]) for r in rows}) for a in attributes},
        "sample_rate": rates[0] if len(rates) == 1 else rates,
        "utterances": len(rows),
        "hours": round(sum(float(r.get("duration", 0.0)) for r in rows) / 3600, 4),
        "splits": splits,
    }
    info.update(extra_info or {})
    _atomic_write(root / INFO, json.dumps(info, indent=2) + "\n")
    return root / MANIFEST
