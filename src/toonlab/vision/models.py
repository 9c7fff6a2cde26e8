"""Model configs and the one factory that turns a config into modules.

`ModelConfig` names the towers, their modes (frozen / partial / full), the video encoder kind and its pooling;
`CONFIGS` holds the named configs the CLI and the bias table use (`--config NAME`), tiny ones for tests
included. Video encoders are looked up in `VIDEO_ENCODERS` (kind -> builder taking the config), so another
video backbone plugs in by registering a builder; frame-based encoders are the default kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace

from torch import nn

from toonlab.vision.classifier import VideoClassifier
from toonlab.vision.mamba import MambaVideoEncoder, videomamba_config
from toonlab.vision.towers import build_frame_tower, build_text_tower
from toonlab.vision.videoclip import FrameVideoEncoder, TextEncoder, VideoCLIP


@dataclass(frozen=True)
class ModelConfig:
    video: str = "frames"  # video encoder kind (a key of VIDEO_ENCODERS): frames | videomamba
    mamba: str = "ti"  # VideoMamba size when video="videomamba" (toonlab.vision.mamba.VIDEOMAMBA_CONFIGS)
    frame_tower: str = "lite0"  # lite0 | cnn | clip:<dir>
    frame_mode: str = "frozen"  # frozen | partial | full
    text_tower: str = "minilm"  # minilm | tiny | clip:<dir>
    text_mode: str = "frozen"
    pretrained: bool = True  # False: the same architectures with random weights
    pooling: str = "mean"  # mean | transformer
    embed_dim: int = 256
    temporal_layers: int = 2
    heads: int = 4
    n_frames: int = 8  # keyframes per shot
    size: int = 112  # frame side in pixels
    cnn_width: int = 32
    text_width: int = 64
    text_layers: int = 2
    temperature: float = 0.07

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config fields: {sorted(unknown)}")
        return cls(**data)


_NATURAL = ModelConfig()
CONFIGS: dict[str, ModelConfig] = {
    # bias-table rows 2-5
    "frozen-mean": _NATURAL,
    "frozen-seq": replace(_NATURAL, pooling="transformer"),
    "partial-seq": replace(_NATURAL, pooling="transformer", frame_mode="partial", text_mode="partial"),
    "scratch-seq": replace(
        _NATURAL, pooling="transformer", frame_tower="cnn", text_tower="tiny", frame_mode="full", text_mode="full"
    ),
    # the natural architectures with random weights, trained whole (GPU budgets)
    "scratch-natural-seq": replace(
        _NATURAL, pooling="transformer", pretrained=False, frame_mode="full", text_mode="full"
    ),
    # bias-table row 6: VideoMamba from scratch as the video side, frozen MiniLM + trained projection as the text
    "mamba-frozen-text": replace(_NATURAL, video="videomamba"),
    "mamba-micro-frozen-text": replace(_NATURAL, video="videomamba", mamba="micro"),
    # tiny configs for tests and smoke runs
    "tiny-mean": ModelConfig(
        frame_tower="cnn",
        text_tower="tiny",
        frame_mode="full",
        text_mode="full",
        embed_dim=32,
        n_frames=4,
        size=32,
        cnn_width=8,
        text_width=32,
    ),
}
CONFIGS["tiny-seq"] = replace(CONFIGS["tiny-mean"], pooling="transformer", temporal_layers=1)
CONFIGS["tiny-frozen"] = replace(CONFIGS["tiny-seq"], frame_mode="partial", text_mode="partial")
CONFIGS["tiny-mamba"] = replace(CONFIGS["tiny-mean"], video="videomamba", mamba="tiny")


def get_config(name: str) -> ModelConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown model config {name!r}; known: {', '.join(sorted(CONFIGS))}")
    return CONFIGS[name]


def with_video_encoder(config: ModelConfig, model: str | None) -> ModelConfig:
    """``config`` with its video encoder replaced: ``frames`` or ``videomamba[:SIZE]`` (None keeps it)."""
    if model is None:
        return config
    kind, _, size = model.partition(":")
    if kind not in VIDEO_ENCODERS:
        raise ValueError(f"unknown video encoder {kind!r}; known: {', '.join(sorted(VIDEO_ENCODERS))}")
    return replace(config, video=kind, mamba=size or config.mamba)


def _frame_video_encoder(config: ModelConfig) -> nn.Module:
    tower = build_frame_tower(config.frame_tower, config.frame_mode, config.pretrained, config.cnn_width)
    return FrameVideoEncoder(
        tower, config.embed_dim, config.pooling, config.temporal_layers, config.heads, config.n_frames
    )


def _mamba_video_encoder(config: ModelConfig) -> nn.Module:
    return MambaVideoEncoder(
        videomamba_config(config.mamba, img_size=config.size, num_frames=config.n_frames), config.embed_dim
    )


VIDEO_ENCODERS: dict[str, Callable[[ModelConfig], nn.Module]] = {
    "frames": _frame_video_encoder,
    "videomamba": _mamba_video_encoder,
}


def build_video_encoder(config: ModelConfig) -> nn.Module:
    if config.video not in VIDEO_ENCODERS:
        raise ValueError(f"unknown video encoder {config.video!r}; known: {', '.join(sorted(VIDEO_ENCODERS))}")
    return VIDEO_ENCODERS[config.video](config)


def build_videoclip(config: ModelConfig) -> VideoCLIP:
    text = build_text_tower(
        config.text_tower, config.text_mode, config.pretrained, config.text_width, config.text_layers
    )
    return VideoCLIP(build_video_encoder(config), TextEncoder(text, config.embed_dim), config.temperature)


def build_classifier(config: ModelConfig, classes: dict[str, int]) -> VideoClassifier:
    return VideoClassifier(build_video_encoder(config), config.embed_dim, classes)
