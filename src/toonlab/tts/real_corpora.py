"""Real speech corpora -> corpus folders with the `toonlab.tts.manifest` manifest (`toonlab tts import-corpus`).

Audio stays where it is (the manifest holds absolute paths; `load_wav` mixes to mono and resamples on load).
The held-out split is by sentence: the `test_frac` share of sentence ids whose hash is lowest, so a held-out
sentence is held out for every speaker and style, and reruns agree.

Layouts (attributes in brackets):
- ljspeech [speaker]: `metadata.csv` (`id|text|normalised text`), `wavs/<id>.wav`;
- vctk [speaker]: `txt/<spk>/<spk>_<n>.txt` + `wav48/<spk>/<spk>_<n>.wav`
  or `wav48_silence_trimmed/<spk>/<spk>_<n>_mic1.flac`;
- esd [speaker, style]: `<spk>/<spk>.txt` (`<utt> TAB <text> TAB <emotion>`), `<spk>/<Emotion>/[split/]<utt>.wav`;
  sentence = utterance number mod 350 (the 350 parallel sentences);
- hedgewars [speaker, style]: `.../Data/Sounds/voices/<Voice>/<Phrase>.ogg` (Debian `hedgewars-data`);
  sentence = phrase, style = our emotion-ish label of the phrase;
- fillets [speaker]: `.../fillets-ng/sound/<level>/<lang>/<id>.ogg` + `script/<level>/dialogs_<lang>.lua`
  (Debian `fillets-ng-data`, `-cs`, `-nl`); speaker = language + the line's font.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from toonlab.extras import require
from toonlab.tts.manifest import ManifestError, write_manifest

Row = dict[str, Any]

# Hedgewars phrases: file stem -> (spoken text, emotion-ish label). Labels are ours, from the phrase's meaning.
HEDGEWARS_PHRASES: dict[str, tuple[str, str]] = {
    "Amazing": ("Amazing!", "happy"),
    "Brilliant": ("Brilliant!", "happy"),
    "Excellent": ("Excellent!", "happy"),
    "Flawless": ("Flawless!", "happy"),
    "Victory": ("Victory!", "happy"),
    "Laugh": ("Ha ha ha!", "happy"),
    "Firstblood": ("First blood!", "happy"),
    "Enemydown": ("Enemy down!", "happy"),
    "Melon": ("Melon!", "happy"),
    "Bugger": ("Bugger!", "angry"),
    "Comeonthen": ("Come on then!", "angry"),
    "Coward": ("Coward!", "angry"),
    "Cutitout": ("Cut it out!", "angry"),
    "Drat": ("Drat!", "angry"),
    "Gonnagetyou": ("Gonna get you!", "angry"),
    "Illgetyou": ("I'll get you!", "angry"),
    "Justyouwait": ("Just you wait!", "angry"),
    "Nutter": ("Nutter!", "angry"),
    "Revenge": ("Revenge!", "angry"),
    "Stupid": ("Stupid!", "angry"),
    "Traitor": ("Traitor!", "angry"),
    "Youllregretthat": ("You'll regret that!", "angry"),
    "Thisoneismine": ("This one is mine!", "angry"),
    "Watchthis": ("Watch this!", "angry"),
    "Leavemealone": ("Leave me alone!", "angry"),
    "Sameteam": ("Same team!", "angry"),
    "Incoming": ("Incoming!", "alarm"),
    "Takecover": ("Take cover!", "alarm"),
    "Runaway": ("Run away!", "alarm"),
    "Hurry": ("Hurry!", "alarm"),
    "Watchit": ("Watch it!", "alarm"),
    "Uh-oh": ("Uh oh!", "alarm"),
    "Oops": ("Oops!", "alarm"),
    "Ohdear": ("Oh dear!", "alarm"),
    "Missed": ("Missed!", "alarm"),
    "Nooo": ("Nooo!", "alarm"),
    "Whatthe": ("What the...", "alarm"),
    "Kamikaze": ("Kamikaze!", "alarm"),
    "Ouch": ("Ouch!", "pain"),
    "Ow1": ("Ow!", "pain"),
    "Ow2": ("Ow!", "pain"),
    "Ow3": ("Ow!", "pain"),
    "Ow4": ("Ow!", "pain"),
    "Ooff1": ("Oof!", "pain"),
    "Ooff2": ("Oof!", "pain"),
    "Ooff3": ("Oof!", "pain"),
    "PoisonCough": ("Cough cough!", "pain"),
    "PoisonMoan": ("Ohhh!", "pain"),
    "Hello": ("Hello!", "neutral"),
    "Byebye": ("Bye bye!", "neutral"),
    "Solong": ("So long!", "neutral"),
    "Yessir": ("Yes sir!", "neutral"),
    "Boring": ("Boring!", "neutral"),
    "Hmm": ("Hmm.", "neutral"),
    "Fire": ("Fire!", "neutral"),
    "Grenade": ("Grenade!", "neutral"),
    "Flyaway": ("Fly away!", "neutral"),
    "Reinforcements": ("Reinforcements!", "neutral"),
    **{f"Jump{i}": ("Hup!", "effort") for i in range(1, 4)},
    **{f"Firepunch{i}": ("Hyah!", "effort") for i in range(1, 7)},
}
# Voice packs whose phrases are not spoken in English (the rest are English with an accent or effect).
HEDGEWARS_LANGUAGES = {
    "Default_es": "es",
    "Default_pl": "pl",
    "Default_ru": "ru",
    "Default_uk": "uk",
    "Russian_pl": "pl",
}


def held_out_sentences(sentence_ids: list[str], test_frac: float) -> set[str]:
    """Deterministic sentence-level split: the round(test_frac * n) sentences (at least one) whose id hashes lowest."""
    distinct = sorted(set(sentence_ids), key=lambda s: hashlib.sha1(s.encode()).hexdigest())
    return set(distinct[: max(1, round(test_frac * len(distinct)))]) if test_frac > 0 else set()


def _safe_id(*parts: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", "-".join(parts))


def _audio_info(path: Path) -> tuple[float, int]:
    sf = require("soundfile")
    info = sf.info(str(path))
    return float(info.duration), int(info.samplerate)


def _row(uid: str, text: str, audio: Path, sentence_id: str, **attrs: str) -> Row:
    duration, rate = _audio_info(audio)
    return {
        "id": _safe_id(uid),
        "text": text.strip(),
        "audio": str(audio.resolve()),
        "duration": round(duration, 3),
        "sample_rate": rate,
        "sentence_id": sentence_id,
        **attrs,
    }


def _find(root: Path, marker: str) -> Path:
    """`root` itself or the one folder below it that contains `marker` (so an unpacked .deb root works)."""
    if (root / marker).exists():
        return root
    hits = sorted(p.parent for p in root.rglob(marker.split("/")[0]) if (p.parent / marker).exists())
    if not hits:
        raise ManifestError(f"{root}: no {marker} found (is this the right layout?)")
    return hits[0]


def _read_text(path: Path) -> str:
    for encoding in ("utf-8", "utf-16", "gb18030"):
        try:
            return path.read_text(encoding=encoding)
        except UnicodeError:
            continue
    raise ManifestError(f"{path}: not utf-8, utf-16 or gb18030 text")


def ljspeech(root: Path) -> Iterator[Row]:
    for rec in csv.reader((root / "metadata.csv").open(encoding="utf-8"), delimiter="|", quoting=csv.QUOTE_NONE):
        if len(rec) < 2:
            continue
        audio = root / "wavs" / f"{rec[0]}.wav"
        if audio.exists():
            yield _row(rec[0], rec[2] if len(rec) > 2 and rec[2] else rec[1], audio, rec[0], speaker="lj")


def vctk(root: Path) -> Iterator[Row]:
    for txt in sorted((root / "txt").glob("*/*.txt")):
        spk, stem = txt.parent.name, txt.stem
        candidates = [root / "wav48" / spk / f"{stem}.wav", root / "wav48_silence_trimmed" / spk / f"{stem}_mic1.flac"]
        audio = next((c for c in candidates if c.exists()), None)
        if audio is None:
            continue
        text = txt.read_text(encoding="utf-8").strip()
        sentence = _safe_id(*re.findall(r"[a-z']+", text.lower()))[:80]  # VCTK repeats some texts across speakers
        yield _row(stem, text, audio, sentence, speaker=spk)


def esd(root: Path) -> Iterator[Row]:
    for listing in sorted(root.glob("*/*.txt")):
        spk = listing.parent.name
        if listing.stem != spk:
            continue
        audio = {p.stem: p for p in listing.parent.rglob("*.wav")}
        for line in _read_text(listing).splitlines():
            parts = line.strip().split("\t")
            if len(parts) < 2 or parts[0] not in audio:
                continue
            wav = audio[parts[0]]
            emotion = wav.relative_to(listing.parent).parts[0].lower()
            number = int(parts[0].rsplit("_", 1)[-1])
            yield _row(parts[0], parts[1], wav, f"{(number - 1) % 350:03d}", speaker=spk, style=emotion)


def hedgewars(root: Path, languages: tuple[str, ...] = ("en",)) -> Iterator[Row]:
    voices = _find(root, "Data/Sounds/voices") / "Data" / "Sounds" / "voices"
    for voice in sorted(p for p in voices.iterdir() if p.is_dir()):
        language = HEDGEWARS_LANGUAGES.get(voice.name, "en")
        if language not in languages:
            continue
        for ogg in sorted(voice.glob("*.ogg")):
            text, label = HEDGEWARS_PHRASES.get(ogg.stem, (ogg.stem, "other"))
            row = _row(f"{voice.name}-{ogg.stem}", text, ogg, ogg.stem, speaker=voice.name, style=label)
            yield {**row, "language": language}


_DIALOG = re.compile(
    r'dialogId\(\s*"(?P<id>[^"]+)"\s*,\s*"(?P<font>[^"]*)"\s*,\s*"(?P<en>(?:[^"\\]|\\.)*)"\s*\)\s*'
    r'dialogStr\(\s*"(?P<text>(?:[^"\\]|\\.)*)"\s*\)'
)


def fillets(root: Path) -> Iterator[Row]:
    base = _find(root, "script")
    for lang_dir in sorted(base.glob("sound/*/*")):
        level, lang = lang_dir.parent.name, lang_dir.name
        script = base / "script" / level / f"dialogs_{lang}.lua"
        if not lang_dir.is_dir() or not script.exists():
            continue
        done: set[str] = set()  # a few scripts define an id twice; the first definition wins
        for m in _DIALOG.finditer(script.read_text(encoding="utf-8", errors="replace")):
            ogg = lang_dir / f"{m['id']}.ogg"
            if not ogg.exists() or m["id"] in done:
                continue
            done.add(m["id"])
            speaker = f"{lang}-{m['font'].removeprefix('font_') or 'unknown'}"
            row = _row(f"{lang}-{level}-{m['id']}", m["text"].replace('\\"', '"'), ogg, m["id"], speaker=speaker)
            yield {**row, "language": lang, "text_en": m["en"].replace('\\"', '"')}


LOADERS: dict[str, tuple[Callable[[Path], Iterator[Row]], list[str]]] = {
    "ljspeech": (ljspeech, ["speaker"]),
    "vctk": (vctk, ["speaker"]),
    "esd": (esd, ["speaker", "style"]),
    "hedgewars": (hedgewars, ["speaker", "style"]),
    "fillets": (fillets, ["speaker"]),
}


def import_corpus(kind: str, src: Path, out: Path, test_frac: float = 0.1) -> Path:
    """Read the `kind` layout under `src` and write `out/manifest.jsonl` + `out/corpus.json`."""
    if kind not in LOADERS:
        raise ValueError(f"unknown corpus kind {kind!r}; choose one of {sorted(LOADERS)}")
    src = Path(src)
    if not src.is_dir():
        raise ManifestError(f"{src} is not a folder")
    loader, attributes = LOADERS[kind]
    rows = [r for r in loader(src) if r["text"]]  # a few scripts hold empty lines
    if not rows:
        raise ManifestError(f"{src}: no utterance found for the {kind} layout")
    seen: set[str] = set()
    for r in rows:
        if r["id"] in seen:
            raise ManifestError(f"{src}: duplicate utterance id {r['id']!r}")
        seen.add(r["id"])
    test = held_out_sentences([r["sentence_id"] for r in rows], test_frac)
    for r in rows:
        r["split"] = "test" if r["sentence_id"] in test else "train"
    return write_manifest(out, rows, attributes, {"source": {"kind": kind, "path": str(src.resolve())}})
