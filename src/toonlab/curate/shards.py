"""The WebDataset shard layout: member names, and reading shots back from either record version.

Record version 2 (written now): `OUT/shards/<shard>.tar` holds one sample per keyframe, every sample with the
same members, so `datasets.load_dataset("webdataset")`, the `webdataset` library and `KeyframeDataset` all read
it:

    <shot key>_<frame:06d>.json   {"shot", "identifier", "video_id", "frame", "position", "keyframes",
                                   "start_frame", "end_frame", "caption"}   (never null: caption is "" when none)
    <shot key>_<frame:06d>.jpg    the keyframe (or .webp / .png: one image format per dataset; absent in
                                   metadata-only runs, where every sample is its json alone)

A shot's samples are consecutive and never split across shards; the shot row itself is in
`OUT/metadata/<shard>.parquet` (column `key` = shot key). Clip files (`--clips`) are one sample per shot in
`OUT/clips/<shard>.tar`: `<shot key>.mp4` and `<shot key>.json`.

Record version 1 wrote one sample per shot: `<key>.json` (the whole row), `<key>.<frame:06d>.<ext>` per
keyframe, `<key>.txt`, `<key>.mp4`. `frame_stem` and `iter_shots` read both.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IMAGE_EXTS = ("jpg", "jpeg", "webp", "png")
CLIPS_DIR = "clips"
SAMPLE_COLUMNS = ("key", "keyframe_indices", "record_version")  # the metadata columns that name a shot's members


def sample_key(shot_key: str, frame: int) -> str:
    """The WebDataset key of one keyframe sample (dot-free, as WebDataset keys must be)."""
    return f"{shot_key}_{frame:06d}"


def one_sample_per_shot(version: int | None) -> bool:
    """Whether rows of this `record_version` have the version-1 layout (also rows with no version column)."""
    return version is None or version < 2


def frame_stem(shot_key: str, frame: int, version: int | None) -> str:
    """Member name without its extension of keyframe `frame` of a shot, in the layout of `version`."""
    return f"{shot_key}.{frame:06d}" if one_sample_per_shot(version) else sample_key(shot_key, frame)


def split_name(name: str) -> tuple[str, str]:
    """Member name -> (stem, extension): the extension is what follows the last dot."""
    stem, _, ext = name.rsplit("/", 1)[-1].rpartition(".")
    return stem, ext.lower()


def sample_keys(row: dict[str, Any]) -> set[str]:
    """The WebDataset keys that hold a shot's members (one per keyframe; the shot key in version 1)."""
    if one_sample_per_shot(row.get("record_version")):
        return {row["key"]}
    return {sample_key(row["key"], f) for f in row["keyframe_indices"] or []}


def keyframe_json(row: dict[str, Any], position: int, frame: int) -> bytes:
    """The json member of one keyframe sample (version 2): identity of the sample and of its shot."""
    doc = {
        "shot": row["key"],
        "identifier": row["identifier"],
        "video_id": row["video_id"],
        "frame": frame,
        "position": position,
        "keyframes": len(row["keyframe_indices"]),
        "start_frame": row["start_frame"],
        "end_frame": row["end_frame"],
        "caption": row.get("text_description") or "",
    }
    return json.dumps(doc, sort_keys=True).encode()


def iter_samples(shard: Path) -> Iterator[tuple[str, dict[str, bytes]]]:
    """Stream one tar: (key, {extension: bytes}) per sample; members of a sample are consecutive."""
    key, members = None, {}
    with tarfile.open(shard, "r|") as tar:
        for info in tar:
            if not info.isfile():
                continue
            this_key, _, ext = info.name.rsplit("/", 1)[-1].partition(".")  # keys are dot-free
            if this_key != key and key is not None:
                yield key, members
                members = {}
            key = this_key
            members[ext] = tar.extractfile(info).read()
    if key is not None:
        yield key, members


@dataclass
class ShotSample:
    """One shot read back from a shard: its key, its keyframe images by frame number, and its caption member."""

    key: str
    images: dict[int, bytes] = field(default_factory=dict)
    doc: dict[str, Any] = field(default_factory=dict)  # the json member (v2: of the first keyframe; v1: the row)
    caption: str | None = None


def _v1_shot(key: str, members: dict[str, bytes]) -> ShotSample:
    shot = ShotSample(key, doc=json.loads(members["json"]) if "json" in members else {})
    for ext, data in members.items():
        stem, _, kind = ext.partition(".")
        if stem.isdigit() and kind.lower() in IMAGE_EXTS:
            shot.images[int(stem)] = data
    if "txt" in members:
        shot.caption = members["txt"].decode()
    return shot


def iter_shots(shard: Path) -> Iterator[ShotSample]:
    """The shots of one shard, in order, whichever record version wrote it."""
    current: ShotSample | None = None
    for key, members in iter_samples(shard):
        doc = json.loads(members["json"]) if "json" in members else {}
        if "shot" not in doc:  # version 1: one sample per shot
            if current is not None:
                yield current
                current = None
            yield _v1_shot(key, members)
            continue
        if current is None or current.key != doc["shot"]:
            if current is not None:
                yield current
            current = ShotSample(doc["shot"], doc=doc, caption=doc["caption"] or None)
        image = next((data for ext, data in members.items() if ext.lower() in IMAGE_EXTS), None)
        if image is not None:
            current.images[int(doc["frame"])] = image
    if current is not None:
        yield current
