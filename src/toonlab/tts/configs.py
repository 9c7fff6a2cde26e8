"""Named configurations for the multi-reference TTS (`tiny` for a laptop CPU, `base` for a GPU).

Two backbones sit behind the same multi-reference encoder and losses: `tacotron` (the paper's autoregressive
Tacotron) and `fastspeech` (duration-based, non-autoregressive, FastSpeech 2 / FastPitch style with a learned
aligner); `*-fs` configs use the second.

A config is plain data (dataclasses of primitives, so it is stored in checkpoints and loads with
`weights_only=True`); `toonlab.tts.model.build_model` and `toonlab.tts.intercross.build_sampler` turn it
into objects once. `*-gst` configs are the single-GST baseline: one sub-encoder whose reference is the target
itself, no classifier or orthogonality loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, is_dataclass, replace
from typing import Any

from toonlab.tts.audio import AudioParams


@dataclass(frozen=True)
class TacotronConfig:
    """Tacotron-2-style text encoder, location-sensitive attention and autoregressive decoder."""

    embed_dim: int = 128
    encoder_convs: int = 3
    encoder_kernel: int = 5
    encoder_dim: int = 128  # BiLSTM output (2 x encoder_dim / 2)
    prenet_dims: tuple[int, ...] = (128, 128)
    prenet_dropout: float = 0.5
    attention_rnn_dim: int = 128
    decoder_rnn_dim: int = 192
    attention_dim: int = 64
    location_filters: int = 16
    location_kernel: int = 31
    reduction: int = 3
    postnet_convs: int = 3
    postnet_dim: int = 64
    postnet_kernel: int = 5
    postnet_norm: str = "batch"  # "batch" (Tacotron 2) or "none": no running statistics to lag in eval mode
    dropout: float = 0.1
    max_decoder_steps: int = 400
    stop_threshold: float = 0.5


@dataclass(frozen=True)
class FastSpeechConfig:
    """Duration-based non-autoregressive backbone: text encoder, learned aligner (durations), pitch / energy /
    duration predictors and a dilated-conv decoder, each conditioned on the style vector."""

    embed_dim: int = 128
    encoder_convs: int = 3
    encoder_kernel: int = 5
    encoder_dim: int = 128  # BiLSTM output
    aligner_dim: int = 80
    predictor_dim: int = 128
    predictor_kernel: int = 3
    predictor_dropout: float = 0.3
    decoder_dim: int = 128
    decoder_kernel: int = 5
    decoder_dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4)
    decoder_reduction: int = 2  # the decoder runs on pairs of frames and emits both (half the convolution cost)
    dropout: float = 0.1
    max_frames: int = 1600  # synthesis bound (20 s at a 12.5 ms hop)


@dataclass(frozen=True)
class StyleConfig:
    """N GST sub-encoders, one per attribute in `attributes` (e.g. ("speaker", "style"))."""

    attributes: tuple[str, ...] = ("speaker", "style")
    ref_channels: tuple[int, ...] = (16, 16, 32, 32, 64, 64)
    ref_gru_dim: int = 64
    n_tokens: int = 10
    n_heads: int = 4
    embed_dim: int = 64  # per sub-encoder style embedding


@dataclass(frozen=True)
class LossConfig:
    """L = L_recon + stop + guided attention + beta * L_cls + gamma * L_orth (+ adversarial)."""

    stop_weight: float = 1.0
    guided_attention_weight: float = 5.0
    guided_attention_sigma: float = 0.4
    guided_attention_until: int = 20000  # steps; afterwards the term is dropped
    cls_weight: float = 1.0  # beta
    orth_weight: float = 0.001  # gamma (the squared Frobenius form is large: ~B^2 d^2 scale)
    adversarial_weight: float = 0.0  # > 0 adds gradient-reversal classifiers (follow-up paper)
    style_warmup_steps: int = 500  # style losses ramp linearly from 0 over these steps
    # fastspeech backbone
    duration_weight: float = 1.0
    pitch_weight: float = 1.0
    energy_weight: float = 1.0
    align_weight: float = 1.0  # forward-sum (CTC) loss of the aligner
    binarization_start: int = 1000  # steps; then the soft alignment is also pulled towards the hard one


@dataclass(frozen=True)
class TrainConfig:
    sampler: str = "intercross"  # "intercross" (paper) or "self" (reference = target, GST baseline)
    text_frontend: str = "espeak"  # "espeak" or "characters"
    espeak_voice: str = "en-us"
    batch_size: int = 16
    lr: float = 1e-3
    lr_final: float = 1e-4
    lr_decay_steps: int = 20000
    weight_decay: float = 1e-6
    grad_clip: float = 1.0
    steps: int = 20000
    max_seconds: float = 5.0  # longer training utterances are skipped (CPU budget)
    crop_seconds: tuple[float, float] | None = (1.5, 3.0)  # random crop of intercross references
    val_every: int = 250
    val_utterances: int = 32
    checkpoint_every: int = 250
    log_every: int = 10
    seed: int = 0
    workers: int = 0  # DataLoader workers assembling batches (features are computed by their own workers)


@dataclass(frozen=True)
class Config:
    name: str
    backbone: str = "tacotron"  # "tacotron" or "fastspeech"
    audio: AudioParams = field(default_factory=AudioParams)
    tacotron: TacotronConfig = field(default_factory=TacotronConfig)
    fastspeech: FastSpeechConfig = field(default_factory=FastSpeechConfig)
    style: StyleConfig = field(default_factory=StyleConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of primitives (tuples become lists) for checkpoints."""
        return _lists(asdict(self))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return _build(cls, d)

    def with_overrides(self, **sections: dict[str, Any]) -> Config:
        """A copy with fields replaced per section, e.g. `with_overrides(train={"steps": 10})`."""
        return replace(self, **{k: replace(getattr(self, k), **v) for k, v in sections.items()})


def _lists(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _lists(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_lists(v) for v in x]
    return x


def _build(cls: type, d: dict[str, Any]) -> Any:
    kwargs = {}
    for f in fields(cls):
        if f.name not in d:
            continue
        value = d[f.name]
        default = cls.__dataclass_fields__[f.name]
        sub = default.default_factory() if callable(default.default_factory) else default.default
        if is_dataclass(sub):
            value = _build(type(sub), value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _tiny() -> Config:
    """r = 5 (fewer decoder steps, faster alignment) and a post-net without BatchNorm."""
    return Config(name="tiny", tacotron=TacotronConfig(reduction=5, postnet_norm="none"))


def _tiny_fs() -> Config:
    """The duration-based backbone behind the paper's multi-reference encoder and intercross training; longer
    clips are affordable (no autoregression), so the length limit does not bite."""
    tiny = _tiny()
    return replace(tiny, name="tiny-fs", backbone="fastspeech", train=replace(tiny.train, max_seconds=10.0))


def _tiny_fs_gst() -> Config:
    gst = _tiny_gst()
    return replace(gst, name="tiny-fs-gst", backbone="fastspeech", train=replace(gst.train, max_seconds=10.0))


def _tiny_fs_multi() -> Config:
    fs = _tiny_fs()
    return replace(fs, name="tiny-fs-multi", train=replace(fs.train, sampler="self"))


def _tiny_gst() -> Config:
    return Config(
        name="tiny-gst",
        tacotron=TacotronConfig(reduction=5, postnet_norm="none"),
        style=StyleConfig(attributes=("style",)),
        loss=LossConfig(cls_weight=0.0, orth_weight=0.0),
        train=TrainConfig(sampler="self", crop_seconds=None),
    )


def _tiny_multi() -> Config:
    """Baseline: two sub-encoders with their losses, each fed the target itself (no intercross)."""
    tiny = _tiny()
    return replace(tiny, name="tiny-multi", train=replace(tiny.train, sampler="self"))


def _tiny_adv() -> Config:
    """The paper's model plus gradient-reversal adversaries (Whitehill et al. 2019); weight 0.5 is our choice."""
    tiny = _tiny()
    return replace(tiny, name="tiny-adv", loss=replace(tiny.loss, adversarial_weight=0.5))


def _base() -> Config:
    return Config(
        name="base",
        tacotron=TacotronConfig(
            embed_dim=512,
            encoder_dim=512,
            encoder_kernel=5,
            prenet_dims=(256, 256),
            attention_rnn_dim=1024,
            decoder_rnn_dim=1024,
            attention_dim=128,
            location_filters=32,
            reduction=2,
            postnet_convs=5,
            postnet_dim=512,
        ),
        style=StyleConfig(ref_channels=(32, 32, 64, 64, 128, 128), ref_gru_dim=128, embed_dim=256),
        train=TrainConfig(batch_size=32, max_seconds=10.0, steps=100000, val_every=1000, checkpoint_every=1000),
    )


def _base_gst() -> Config:
    base = _base()
    return replace(
        base,
        name="base-gst",
        style=replace(base.style, attributes=("style",)),
        loss=LossConfig(cls_weight=0.0, orth_weight=0.0),
        train=replace(base.train, sampler="self", crop_seconds=None),
    )


def _base_fs() -> Config:
    """The duration-based backbone at the size of `base` and of Coqui's Tacotron2-GST (31 M parameters), for GPU
    training and the equal-size step-time comparison."""
    base = _base()
    fs = FastSpeechConfig(embed_dim=512, encoder_dim=512, predictor_dim=256, decoder_dim=768)
    return replace(base, name="base-fs", backbone="fastspeech", fastspeech=fs)


def _micro() -> Config:
    """A toy model for tests and smoke runs (trains a step in well under a second)."""
    return Config(
        name="micro",
        tacotron=TacotronConfig(
            embed_dim=32,
            encoder_convs=1,
            encoder_dim=32,
            prenet_dims=(32, 32),
            attention_rnn_dim=32,
            decoder_rnn_dim=32,
            attention_dim=16,
            location_filters=4,
            location_kernel=5,
            reduction=2,
            postnet_convs=2,
            postnet_dim=16,
            max_decoder_steps=50,
        ),
        style=StyleConfig(ref_channels=(4, 4, 8), ref_gru_dim=16, n_tokens=4, n_heads=2, embed_dim=8),
        train=TrainConfig(batch_size=4, val_every=2, val_utterances=4, checkpoint_every=2, log_every=1),
    )


def _micro_fs() -> Config:
    """The duration-based backbone at toy size, for tests."""
    return replace(
        _micro(),
        name="micro-fs",
        backbone="fastspeech",
        fastspeech=FastSpeechConfig(
            embed_dim=32,
            encoder_convs=1,
            encoder_dim=32,
            aligner_dim=16,
            predictor_dim=16,
            decoder_dim=32,
            decoder_dilations=(1, 2),
            max_frames=200,
        ),  # fmt: skip
        loss=LossConfig(binarization_start=2),
    )


CONFIGS = {
    "micro": _micro,
    "micro-fs": _micro_fs,
    "tiny": _tiny,
    "tiny-fs": _tiny_fs,
    "tiny-fs-gst": _tiny_fs_gst,
    "tiny-fs-multi": _tiny_fs_multi,
    "base-fs": _base_fs,
    "tiny-gst": _tiny_gst,
    "tiny-multi": _tiny_multi,
    "tiny-adv": _tiny_adv,
    "base": _base,
    "base-gst": _base_gst,
}


def get_config(name: str) -> Config:
    """A named config: micro, micro-fs (tests), tiny, tiny-gst, tiny-multi, tiny-adv, tiny-fs, tiny-fs-gst,
    tiny-fs-multi, base, base-gst, base-fs."""
    try:
        return CONFIGS[name]()
    except KeyError:
        raise KeyError(f"unknown config {name!r}; choose one of {sorted(CONFIGS)}") from None
