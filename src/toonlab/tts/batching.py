"""Training examples, the length-bucketing batch sampler and the collate function that adds intercross references.

`BucketBatchSampler(lengths, batch_size, rank, world, seed)`: each epoch (`set_epoch`) sorts the utterances by
length with a seeded jitter, cuts batches of similar length and shuffles them; every rank computes the same
epoch and takes every `world`-th batch, so ranks see disjoint batches of one shared order, and a resumed run
(`set_epoch(epoch, start=k)`) continues with the same batches. `Collator` pads a batch and draws each
sub-encoder's reference by the sampler's rule, seeded by the batch itself, so DataLoader workers reproduce it.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch
from torch.utils.data import Sampler

from toonlab.tts.configs import Config
from toonlab.tts.intercross import IntercrossSampler, ReferenceSampler, SelfReference, crop_bounds
from toonlab.tts.model import Batch


@dataclass
class Example:
    id: str
    text: torch.Tensor  # (L,) symbol ids
    mel: torch.Tensor  # (T, n_mels) float16
    labels: dict[str, int]
    sentence: str
    f0: torch.Tensor | None = None  # (T,) Hz, 0 where unvoiced


def bucket_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (sorted with jitter), in shuffled batch order; one epoch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] * (1 + 0.1 * rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


class BucketBatchSampler(Sampler[list[int]]):
    """One rank's share of an epoch of length-bucketed batches (see the module docstring). Batches of a single
    utterance are dropped (BatchNorm needs two), and each rank gets the same number of batches."""

    def __init__(self, lengths: Sequence[int], batch_size: int, rank: int = 0, world: int = 1, seed: int = 0) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} outside world {world}")
        self.lengths, self.batch_size = list(lengths), batch_size
        self.rank, self.world, self.seed = rank, world, seed
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Select the epoch and skip its first `start` batches of this rank (resuming mid-epoch)."""
        self.epoch, self.start = epoch, start

    def _epoch_batches(self) -> list[list[int]]:
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        batches = [b for b in bucket_batches(self.lengths, self.batch_size, rng) if len(b) > 1]
        usable = len(batches) // self.world * self.world
        return batches[self.rank : usable : self.world]

    def batches_per_epoch(self) -> int:
        rng = random.Random(self.seed * 1_000_003)  # the count does not depend on the epoch's shuffle
        n = sum(len(b) > 1 for b in bucket_batches(self.lengths, self.batch_size, rng))
        return n // self.world

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._epoch_batches()[self.start :]

    def __len__(self) -> int:
        return max(0, self.batches_per_epoch() - self.start)


def build_sampler(config: Config, examples: Sequence[Example], classes: dict[str, list[str]]) -> ReferenceSampler:
    """The reference sampler named by `config.train.sampler` over `examples`."""
    if config.train.sampler == "self":
        return SelfReference()
    if config.train.sampler == "intercross":
        missing = [a for a in config.style.attributes if a not in classes]
        if missing:
            raise ValueError(
                f"config {config.name!r} needs corpus attribute(s) {missing}; the corpus has {sorted(classes)}"
            )
        return IntercrossSampler(
            [{a: str(v) for a, v in e.labels.items()} for e in examples],
            [e.sentence for e in examples],
            config.style.attributes,
        )
    raise ValueError(f"unknown sampler {config.train.sampler!r}; expected 'intercross' or 'self'")


def _pad(seqs: Sequence[torch.Tensor], value: float, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([s.shape[0] for s in seqs])
    size = math.ceil(int(lengths.max()) / multiple) * multiple
    out = seqs[0].new_full((len(seqs), size, *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


class Collator:
    """indices -> Batch: padded text, mels (to a multiple of r for the Tacotron), F0, and per sub-encoder a
    (cropped) reference drawn by `sampler`, seeded from `seed` and the indices."""

    def __init__(self, examples: Sequence[Example], sampler: ReferenceSampler, config: Config, seed: int = 0) -> None:
        self.examples, self.sampler, self.config, self.seed = examples, sampler, config, seed

    def __call__(self, indices: Sequence[int], rng: random.Random | None = None) -> Batch:
        cfg = self.config
        rng = rng or random.Random(hash((self.seed, *indices)))
        items = [self.examples[i] for i in indices]
        pad = cfg.audio.pad_value
        multiple = cfg.tacotron.reduction if cfg.backbone == "tacotron" else 1
        text, text_lengths = _pad([e.text for e in items], 0)
        mels, mel_lengths = _pad([e.mel.float() for e in items], pad, multiple)
        f0 = None
        if all(e.f0 is not None for e in items):
            f0 = _pad([e.f0 for e in items], 0.0, multiple)[0]  # type: ignore[misc]
        crop = cfg.train.crop_seconds
        references, labels = [], []
        for n in range(len(cfg.style.attributes)):
            refs = [self.examples[self.sampler.sample(i, n, rng)] for i in indices]
            ref_mels = []
            for e in refs:
                mel = e.mel.float()
                if crop is not None:
                    lo, hi = (round(s / cfg.audio.frame_seconds) for s in crop)
                    start, end = crop_bounds(mel.shape[0], lo, hi, rng)
                    mel = mel[start:end]
                ref_mels.append(mel)
            references.append(_pad(ref_mels, pad))
            labels.append({a: torch.tensor([e.labels[a] for e in refs]) for a in refs[0].labels})
        return Batch(text, text_lengths, mels, mel_lengths, references, labels, [e.id for e in items], f0)


def collate(
    indices: Sequence[int], examples: Sequence[Example], sampler: ReferenceSampler, config: Config, rng: random.Random
) -> Batch:
    """One batch with an explicit reference RNG (validation batches, tests)."""
    return Collator(examples, sampler, config)(indices, rng)
