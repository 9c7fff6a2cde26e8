"""The curate run's settings, in one typed record; `pipeline.build_stages` turns it into objects once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from toonlab.curate.stages.download import DownloadConfig

ImageFormat = Literal["jpg", "webp", "png", "none"]  # none: keyframe indices only, no images
ClipMode = Literal["none", "copy", "encode"]


@dataclass(frozen=True)
class CurateConfig:
    ssim_threshold: float = 0.95  # Sakuga keyframe rule: keep frame t if SSIM(t-1, t) < threshold
    min_scene_len: int = 18  # frames; no cut closer than this to the previous one (Sakuga-42M setting)
    shot_detector: Literal["animation", "pyscenedetect"] = "animation"
    image_format: ImageFormat = "jpg"
    image_quality: int = 90
    image_max_side: int | None = None  # scale keyframe images down so the longer side fits
    clips: ClipMode = "none"  # "copy": stream-copied shot files; "encode": frame-exact re-encoded files
    shard_max_bytes: int = 256 * 1024 * 1024
    shard_max_samples: int = 2000
    annotate: tuple[str, ...] = ()  # annotator names (annotate.REGISTRY), run in this order
    annotator_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # name -> constructor kwargs
    # shots: "auto" cuts a source's released scenes when it has them (Sakuga-42M parquet), else detects
    shots: Literal["auto", "detect", "given"] = "auto"
    download: DownloadConfig = field(default_factory=DownloadConfig)
    download_cache: str | None = None  # folder of fetched remote sources; None: OUT/_downloads

    def __post_init__(self) -> None:
        if not 0.0 < self.ssim_threshold <= 1.0:
            raise ValueError(f"ssim_threshold must be in (0, 1], got {self.ssim_threshold}")
        if self.min_scene_len < 1:
            raise ValueError(f"min_scene_len must be >= 1, got {self.min_scene_len}")
        if not 1 <= self.image_quality <= 100:
            raise ValueError(f"image_quality must be in 1..100, got {self.image_quality}")
        from toonlab.curate.stages.annotate import REGISTRY

        unknown = [name for name in (*self.annotate, *self.annotator_options) if name not in REGISTRY]
        if unknown:
            raise ValueError(f"unknown annotator(s) {', '.join(unknown)}; available: {', '.join(sorted(REGISTRY))}")
        if self.annotate and self.image_format == "none":
            raise ValueError("annotators need keyframe images: choose an image format other than none")
        for name in self.annotate:  # constructors check their options (model paths) before any work starts
            try:
                REGISTRY[name](**self.annotator_options.get(name, {}))
            except TypeError as exc:
                raise ValueError(f"annotator {name}: {exc}") from None
        if self.shots not in ("auto", "detect", "given"):
            raise ValueError(f"shots must be auto, detect or given, got {self.shots!r}")
        if self.shard_max_samples < 1 or self.shard_max_bytes < 1:
            raise ValueError("shard limits must be >= 1")
        if self.image_max_side is not None and self.image_max_side < 16:
            raise ValueError(f"image_max_side must be >= 16, got {self.image_max_side}")

    def as_dict(self) -> dict:
        return asdict(self)
