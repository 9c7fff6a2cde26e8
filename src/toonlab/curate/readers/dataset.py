"""Read a curated dataset: a PyTorch `IterableDataset` of keyframe tensors, and Hugging Face `datasets` helpers.

`KeyframeDataset` streams `OUT/shards/*.tar` (WebDataset layout: `<key>.json`, `<key>.<frame:06d>.<ext>`,
`<key>.txt`) and yields, per shot, N keyframes chosen by a `FrameSampler`, resized and centre-cropped to a fixed
size. Rows come from `OUT/metadata/<shard>.parquet` joined with the sidecar columns of global steps
(`OUT/columns/*`: split, dup_cluster, ...), falling back to the shard's json. Work is split across DataLoader
workers and distributed ranks so that every shot is read by exactly one consumer.

Sampling rules (one class each): `UniformKeyframes` spreads N picks evenly over the unique drawings;
`FirstKeyframes` takes the first N; `HoldWeighted` samples N evenly spaced instants of screen time and takes the
drawing on screen at each, so a drawing held for three frames is three times as likely as one shown once.
All three repeat drawings when a shot has fewer than N.
"""

from __future__ import annotations

import bisect
import io
import json
import tarfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pyarrow.parquet as pq

from toonlab.curate.sidecar import read_shard
from toonlab.extras import require

_data = require("torch.utils.data")  # the module is a torch dataset; a missing torch names its extra

IMAGE_EXTS = ("jpg", "jpeg", "webp", "png")


class FrameSampler(Protocol):
    """Chooses N keyframes of a shot; returns positions into `keyframes` (length exactly `n`, repeats allowed)."""

    n: int

    def __call__(self, keyframes: Sequence[int], end: int) -> list[int]: ...


@dataclass(frozen=True)
class UniformKeyframes:
    """N positions evenly spaced over the unique drawings, first and last included (repeats when fewer)."""

    n: int

    def __call__(self, keyframes: Sequence[int], end: int) -> list[int]:
        return np.linspace(0, len(keyframes) - 1, self.n).round().astype(int).tolist()


@dataclass(frozen=True)
class FirstKeyframes:
    """The first N drawings; a shot with fewer is padded by repeating its last drawing."""

    n: int

    def __call__(self, keyframes: Sequence[int], end: int) -> list[int]:
        return [min(i, len(keyframes) - 1) for i in range(self.n)]


@dataclass(frozen=True)
class HoldWeighted:
    """The drawing on screen at N evenly spaced instants of the shot: weights drawings by how long they are held.

    Instant i is the middle of the i-th of N equal slices of [start, end); the drawing on screen is the last
    keyframe at or before it. A shot on twos behind a long hold gives the hold most of the N picks.
    """

    n: int

    def __call__(self, keyframes: Sequence[int], end: int) -> list[int]:
        start = keyframes[0]
        instants = start + (np.arange(self.n) + 0.5) * (end - start) / self.n
        return [bisect.bisect_right(keyframes, t) - 1 for t in instants]


SAMPLERS: dict[str, type] = {"uniform": UniformKeyframes, "first": FirstKeyframes, "hold": HoldWeighted}


def shard_paths(out: Path) -> list[Path]:
    """The dataset's shards in name order (the order every consumer agrees on)."""
    return sorted((Path(out) / "shards").glob("*.tar"))


def _distributed(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world) from the arguments, else from torch.distributed when it is initialised, else (0, 1)."""
    if rank is not None or world_size is not None:
        if rank is None or world_size is None or not 0 <= rank < world_size:
            raise ValueError(f"give both rank and world_size with 0 <= rank < world_size, got {rank}, {world_size}")
        return rank, world_size
    dist = require("torch.distributed")
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def iter_samples(shard: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream one tar: (key, {extension: bytes}) per sample; members of a sample are consecutive."""
    key, members = None, {}
    with tarfile.open(shard, "r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            name = info.name.rsplit("/", 1)[-1]
            this_key, _, ext = name.partition(".")  # keys are dot-free; extensions may hold dots (000012.jpg)
            if this_key != key and key is not None:
                yield key, members
                members = {}
            key = this_key
            members[ext] = tar.extractfile(info).read()
    if key is not None:
        yield key, members


def _shard_rows(out: Path, shard: Path) -> dict[str, dict]:
    """key -> metadata row (with sidecar columns such as `split`), or {} when the shard has no metadata file."""
    meta = out / "metadata" / f"{shard.name.split('.')[0]}.parquet"
    if not meta.exists():
        return {}
    return {row["key"]: row for row in read_shard(out, meta).to_pylist()}


class KeyframeDataset(_data.IterableDataset):
    """Per shot: {"key", "frames" (N, 3, H, W) uint8, "frame_indices" (N,) int64, "caption", "row"}.

    out: the curate output folder. sampler: a `FrameSampler` (its `n` is N). size: (H, W) of every frame after
    resizing the shorter side to cover and centre-cropping. where: optional predicate on the row (e.g.
    `lambda r: r["split"] == "train"`), applied before any image is decoded. rank / world_size: explicit DDP
    placement; by default read from torch.distributed when initialised.

    Splitting: consumers are (rank, DataLoader worker) pairs, numbered rank * workers + worker. With at least as
    many shards as consumers each consumer reads whole shards (shard i goes to consumer i mod total); with
    fewer shards every consumer streams all of them and keeps every total-th sample. Either way each sample is
    yielded by exactly one consumer per pass.
    """

    def __init__(
        self,
        out: Path | str,
        sampler: FrameSampler,
        size: tuple[int, int] = (224, 224),
        where: Callable[[dict], bool] | None = None,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        self.out = Path(out)
        self.shards = shard_paths(self.out)
        if not self.shards:
            raise FileNotFoundError(f"no shards in {self.out / 'shards'}: is this a `toonlab curate` output folder?")
        self.sampler = sampler
        self.size = size
        self.where = where
        self.rank, self.world_size = _distributed(rank, world_size)

    def _consumer(self) -> tuple[int, int]:
        """(this consumer's number, number of consumers) for the current DataLoader worker."""
        info = _data.get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        return self.rank * workers + worker, self.world_size * workers

    def _assigned(self) -> Iterator[tuple[Path, str, dict[str, bytes]]]:
        me, total = self._consumer()
        if len(self.shards) >= total:
            for shard in self.shards[me::total]:
                for key, members in iter_samples(shard):
                    yield shard, key, members
            return
        position = 0
        for shard in self.shards:
            for key, members in iter_samples(shard):
                if position % total == me:
                    yield shard, key, members
                position += 1

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows: dict[str, dict] = {}
        current = None
        for shard, key, members in self._assigned():
            if shard != current:
                current, rows = shard, _shard_rows(self.out, shard)
            row = rows.get(key) or json.loads(members["json"])
            if self.where is not None and not self.where(row):
                continue
            yield self._sample(key, row, members)

    def _sample(self, key: str, row: dict, members: dict[str, bytes]) -> dict[str, Any]:
        torch = require("torch")
        images = {int(ext.split(".")[0]): data for ext, data in members.items() if _is_frame(ext)}
        keyframes = [k for k in row["keyframe_indices"] if k in images]
        if not keyframes:
            raise ValueError(f"{key}: no keyframe images in the shard (was it curated with --image-format none?)")
        picks = [keyframes[p] for p in self.sampler(keyframes, row["end_frame"])]
        decoded = {k: self._decode(images[k]) for k in set(picks)}  # each drawing decoded once
        frames = torch.from_numpy(np.stack([decoded[k] for k in picks])).permute(0, 3, 1, 2).contiguous()
        caption = members["txt"].decode() if "txt" in members else (row.get("text_description") or "")
        return {
            "key": key,
            "frames": frames,  # (N, 3, H, W) uint8
            "frame_indices": torch.tensor(picks, dtype=torch.int64),  # (N,) absolute frame numbers
            "caption": caption,
            "row": row,
        }

    def _decode(self, data: bytes) -> np.ndarray:
        """Encoded image -> (H, W, 3) uint8 RGB: shorter side scaled to cover `size`, then centre-cropped."""
        image_mod, ops = require("PIL.Image"), require("PIL.ImageOps")
        height, width = self.size
        with image_mod.open(io.BytesIO(data)) as image:
            fitted = ops.fit(image.convert("RGB"), (width, height), image_mod.Resampling.BILINEAR)
        return np.asarray(fitted)


def _is_frame(ext: str) -> bool:
    stem, _, kind = ext.partition(".")
    return stem.isdigit() and kind.lower() in IMAGE_EXTS


def collate(batch: list[dict[str, Any]]) -> dict[str, Any]:
    """Batch samples for a DataLoader: frames (B, N, 3, H, W), frame_indices (B, N); keys, captions, rows listed.

    Rows hold nulls and lists of varying length, which torch's default collate cannot stack.
    """
    torch = require("torch")
    return {
        "key": [s["key"] for s in batch],
        "frames": torch.stack([s["frames"] for s in batch]),
        "frame_indices": torch.stack([s["frame_indices"] for s in batch]),
        "caption": [s["caption"] for s in batch],
        "row": [s["row"] for s in batch],
    }


def hf_metadata(out: Path | str, split: str = "train", cache_dir: Path | str | None = None):
    """`datasets.load_dataset("parquet")` over `OUT/metadata/*.parquet`, without the map columns.

    `datasets` has no feature type for arrow maps (`annotation_models`, `tag_scores`, ...), its parquet builder
    infers features from the full file schema even when `columns=` leaves them out, and its cast cannot turn a
    map into a list of pairs; so the kept columns and their features are passed explicitly. Read the map
    columns with pyarrow or duckdb.
    """
    datasets, pa = require("datasets"), require("pyarrow")
    files = sorted((Path(out) / "metadata").glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"no metadata parquet in {Path(out) / 'metadata'}")
    kept = pa.schema([field for field in pq.read_schema(files[0]) if not pa.types.is_map(field.type)])
    return datasets.load_dataset(
        "parquet",
        data_files=[str(f) for f in files],
        split=split,
        columns=kept.names,
        features=datasets.Features.from_arrow_schema(kept),
        cache_dir=None if cache_dir is None else str(cache_dir),
    )


def hf_keyframes(out: Path | str, sampler: FrameSampler, size: tuple[int, int] = (224, 224)):
    """A `datasets.IterableDataset` of {key, caption, row (json text), frames (list of PIL images)}.

    `load_dataset("webdataset")` cannot read the shards: it requires every sample to have the same member
    names, and ours name keyframes by frame number. This streams them through `KeyframeDataset` instead.
    """
    datasets, image_mod = require("datasets"), require("PIL.Image")

    def generate():
        for sample in KeyframeDataset(out, sampler, size):
            yield {
                "key": sample["key"],
                "caption": sample["caption"],
                "row": json.dumps(sample["row"], default=str),
                "frames": [image_mod.fromarray(f) for f in sample["frames"].permute(0, 2, 3, 1).numpy()],
            }

    features = datasets.Features(
        {
            "key": datasets.Value("string"),
            "caption": datasets.Value("string"),
            "row": datasets.Value("string"),
            "frames": datasets.Sequence(datasets.Image()),
        }
    )
    return datasets.IterableDataset.from_generator(generate, features=features)
