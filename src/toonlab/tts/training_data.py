"""A corpus turned into training and held-out examples: symbols, cached features, unusable audio skipped and
counted, and the length limit applied per sentence so that it never removes one style more than another."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from toonlab.tts.batching import Example
from toonlab.tts.checkpoint import Checkpoint
from toonlab.tts.configs import Config
from toonlab.tts.device import Dist
from toonlab.tts.features import cached_f0, cached_mels, cached_phonemes, pitch_energy_statistics
from toonlab.tts.manifest import Corpus, Utterance
from toonlab.tts.text import SymbolTable, TextFrontEnd, make_phonemizer


@dataclass
class TrainingData:
    train: list[Example]
    test: list[Example]
    table: SymbolTable
    classes: dict[str, list[str]]
    pitch_energy: tuple[tuple[float, float], tuple[float, float]] | None = None
    report: dict[str, Any] = field(default_factory=dict)


def make_examples(
    utterances: Sequence[Utterance],
    mels: dict[str, torch.Tensor],
    symbols: dict[str, list[str]],
    table: SymbolTable,
    classes: dict[str, list[str]],
    unknown: set[str],
    f0: dict[str, torch.Tensor] | None = None,
) -> list[Example]:
    """Examples for the utterances that have features (the others were skipped)."""
    return [
        Example(
            u.id,
            torch.tensor(table.encode(symbols[u.text], unknown), dtype=torch.long),
            mels[u.id],
            {a: classes[a].index(v) for a, v in u.attrs.items() if a in classes},
            u.sentence_id,
            None if f0 is None else f0[u.id][: mels[u.id].shape[0]],
        )
        for u in utterances
        if u.id in mels and (f0 is None or u.id in f0)
    ]


def limit_length(
    examples: Sequence[Example], utterances: Sequence[Utterance], max_frames: float, attributes: Sequence[str]
) -> tuple[list[Example], dict[str, Any]]:
    """Drop every clip of a sentence whose longest clip passes `max_frames`: a slow style then never loses
    more clips than a fast one (the sentence goes for all of them). Returns kept examples and per-value drops."""
    longest: dict[str, int] = {}
    for e in examples:
        longest[e.sentence] = max(longest.get(e.sentence, 0), e.mel.shape[0])
    too_long = {s for s, n in longest.items() if n > max_frames}
    by_id = {u.id: u for u in utterances}
    dropped = [e for e in examples if e.sentence in too_long]
    report = {
        "length_dropped_sentences": len(too_long),
        "length_dropped_clips": len(dropped),
        "length_dropped_by_value": {a: dict(Counter(by_id[e.id].attrs[a] for e in dropped)) for a in attributes},
    }
    return [e for e in examples if e.sentence not in too_long], report


def _features(
    corpus: Corpus, config: Config, front: TextFrontEnd, cache_dir: Path, d: Dist, workers: int,
    log: Callable[[str], None],
) -> tuple[dict, dict, dict | None, dict[str, str]]:  # fmt: skip
    """Symbols, mels (and F0 for the duration-based backbone) of every utterance; rank 0 fills the caches, then
    the other ranks read them."""

    def compute() -> tuple[dict, dict, dict | None, dict[str, str]]:
        symbols = cached_phonemes([u.text for u in corpus.utterances], front, cache_dir)
        mels = cached_mels(corpus.utterances, config.audio, cache_dir, workers, log)
        f0 = (
            cached_f0(corpus.utterances, config.audio, cache_dir, workers, log)
            if config.backbone == "fastspeech"
            else None
        )
        return symbols, mels.values, (f0.values if f0 else None), {**mels.skipped, **(f0.skipped if f0 else {})}

    result = compute() if d.main else None
    d.barrier()
    return result or compute()


def load_training_data(
    corpus_dir: Path,
    config: Config,
    ckpt: Checkpoint | None,
    cache_dir: Path | None,
    d: Dist,
    workers: int,
    log: Callable[[str], None],
) -> TrainingData:
    """Train and held-out examples of `corpus_dir` for `config` (the symbol table and classes of `ckpt` when
    resuming). Unusable audio is skipped and named; no usable training clip is a ValueError."""
    corpus = Corpus.load(corpus_dir)
    cache_dir = cache_dir or corpus.root / "features"
    classes = ckpt.classes if ckpt else {a: corpus.labels(a) for a in corpus.attributes}
    front = TextFrontEnd(
        make_phonemizer(config.train.text_frontend, config.train.espeak_voice), SymbolTable(["_", "~"])
    )
    train_utts, test_utts = corpus.split("train"), corpus.split("test")
    if not train_utts or not test_utts:
        raise ValueError(f"{corpus_dir}: training needs both train and test (held-out) utterances")
    symbols, mels, f0, skipped = _features(corpus, config, front, cache_dir, d, workers, log)
    if skipped and d.main:
        names = "; ".join(f"{k}: {v}" for k, v in list(skipped.items())[:5])
        log(f"skipped {len(skipped)} of {len(corpus)} utterances with unusable audio ({names})")
    usable_train = [u for u in train_utts if u.id not in skipped]
    table = SymbolTable(ckpt.symbols) if ckpt else SymbolTable.build([symbols[u.text] for u in usable_train],
                                                                        config.train.text_frontend)  # fmt: skip
    unknown: set[str] = set()
    train_ex = make_examples(train_utts, mels, symbols, table, classes, unknown, f0)
    test_ex = make_examples(test_utts, mels, symbols, table, classes, unknown, f0)
    if unknown and d.main:
        log(f"symbols unknown to the table were dropped: {''.join(sorted(unknown))!r}")
    max_frames = config.train.max_seconds / config.audio.frame_seconds
    train_ex, report = limit_length(train_ex, train_utts, max_frames, corpus.attributes)
    if not train_ex:
        raise ValueError(
            f"{corpus_dir}: no usable training utterance ({len(skipped)} unusable, "
            f"{report['length_dropped_clips']} longer than max_seconds={config.train.max_seconds})"
        )
    if not test_ex:
        raise ValueError(f"{corpus_dir}: no usable held-out utterance")
    if report["length_dropped_clips"] and d.main:
        log(f"length limit {config.train.max_seconds} s: dropped {report['length_dropped_sentences']} sentences "
            f"({report['length_dropped_clips']} clips: {report['length_dropped_by_value']})")  # fmt: skip
    stats = pitch_energy_statistics([e.f0 for e in train_ex], [e.mel for e in train_ex]) if f0 else None
    report.update(skipped_unusable=len(skipped), skipped_ids=sorted(skipped)[:20])
    return TrainingData(train_ex, test_ex, table, classes, stats, report)  # type: ignore[arg-type]
