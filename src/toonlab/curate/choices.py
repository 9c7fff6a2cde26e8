"""The named choices of a curate run, defined once: the CLI offers them (typer reads the Enums), the config and
the stages coerce to them, and a wrong value is one clear ValueError naming the options."""

from __future__ import annotations

from enum import StrEnum
from typing import TypeVar

E = TypeVar("E", bound=StrEnum)


class ShotDetector(StrEnum):
    animation = "animation"
    pyscenedetect = "pyscenedetect"


class ImageFormat(StrEnum):
    jpg = "jpg"
    webp = "webp"
    png = "png"
    none = "none"  # keyframe indices only, no images


class ClipMode(StrEnum):
    none = "none"
    copy = "copy"  # stream-copied shot files
    encode = "encode"  # frame-exact re-encoded files


class ShotMode(StrEnum):
    auto = "auto"  # cut a source's released scenes when it has them (Sakuga-42M parquet), else detect
    detect = "detect"
    given = "given"


class Kernels(StrEnum):
    fast = "fast"  # compiled analysis kernels, JPEG from the decoder's YUV planes
    reference = "reference"  # the NumPy/OpenCV analysis and RGB -> OpenCV JPEG path, kept to check the fast one


class ExecutorName(StrEnum):
    local = "local"  # this process or a process pool
    ray = "ray"  # plain Ray actors scheduled by the driver
    ray_data = "ray-data"  # Ray Data (the baseline the plain actors are measured against)


def choose(kind: type[E], value: str, option: str) -> E:
    """`value` as a member of `kind`, or a ValueError that names `option` and the allowed values."""
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(member.value for member in kind)
        raise ValueError(f"{option} must be one of {allowed}, got {value!r}") from None
