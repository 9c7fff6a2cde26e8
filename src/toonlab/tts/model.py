"""The multi-reference TTS: a backbone (the paper's Tacotron, or a duration-based FastSpeech) conditioned on a
MultiReferenceEncoder, with its training losses.

`build_model(config, n_symbols, classes)` is the one factory that turns a `Config` into modules; N = 1 with
the self-reference sampler and no style losses is the single-GST baseline. `load_weights` loads a state dict,
tolerating the buffers that older checkpoints lack.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace

import torch
from torch import nn

from toonlab.tts.configs import Config
from toonlab.tts.fastspeech import FastSpeech, FastSpeechLoss
from toonlab.tts.intercross import AdversarialClassifier, AttributeClassifier, IntercrossLoss
from toonlab.tts.style import (
    MultiReferenceEncoder,
    ReferenceEncoder,
    StyleControl,
    StyleTokenLayer,
    SubEncoder,
    SubEncoderOutput,
)
from toonlab.tts.tacotron import Tacotron, TacotronLoss, TacotronOutput


@dataclass
class Batch:
    """A padded training batch. Mels are padded with the silence level to a multiple of r."""

    text: torch.Tensor  # (B, L) symbol ids
    text_lengths: torch.Tensor  # (B,)
    mels: torch.Tensor  # (B, T, n_mels)
    mel_lengths: torch.Tensor  # (B,)
    references: list[tuple[torch.Tensor, torch.Tensor]]  # per sub-encoder: mels (B, T_n, n_mels), lengths (B,)
    reference_labels: list[dict[str, torch.Tensor]]  # per sub-encoder: attribute -> (B,) class ids
    ids: list[str]
    f0: torch.Tensor | None = None  # (B, T) Hz per frame, 0 where unvoiced (duration-based backbone only)

    def to(self, device: torch.device | str) -> Batch:
        """The same batch with every tensor on `device` (non-blocking from pinned memory)."""

        def move(x: torch.Tensor) -> torch.Tensor:
            return x.to(device, non_blocking=True)

        return replace(
            self,
            text=move(self.text),
            text_lengths=move(self.text_lengths),
            mels=move(self.mels),
            mel_lengths=move(self.mel_lengths),
            references=[(move(m), move(n)) for m, n in self.references],
            reference_labels=[{a: move(v) for a, v in labels.items()} for labels in self.reference_labels],
            f0=None if self.f0 is None else move(self.f0),
        )

    def pin_memory(self) -> Batch:
        """Called by DataLoader(pin_memory=True)."""
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).pin_memory()
                for f in fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)
            },
        )


class MultiReferenceTTS(nn.Module):
    """Text + N references -> mels; `forward` also computes every training loss (one graph for DDP).
    Subclasses supply the backbone (`backbone`, `_backbone_losses`)."""

    backbone: nn.Module

    def __init__(self, style: MultiReferenceEncoder, style_loss: IntercrossLoss, style_warmup_steps: int = 0) -> None:
        super().__init__()
        self.style = style
        self.style_loss = style_loss
        self.style_warmup_steps = style_warmup_steps

    def _backbone_losses(
        self, batch: Batch, style: torch.Tensor, step: int
    ) -> tuple[TacotronOutput, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def forward(
        self, batch: Batch, step: int = 0
    ) -> tuple[TacotronOutput, list[SubEncoderOutput], dict[str, torch.Tensor]]:
        style, outs = self.style(batch.references)  # (B, sum d_n)
        if self.training:
            self.style.track(outs)
        out, losses = self._backbone_losses(batch, style, step)
        style_losses = self.style_loss(outs, batch.reference_labels)
        ramp = min(1.0, (step + 1) / self.style_warmup_steps) if self.style_warmup_steps else 1.0
        losses.update(style_losses)
        losses["total"] = losses["total"] + ramp * style_losses["style_total"]
        return out, outs, losses

    def infer(self, text: torch.Tensor, text_lengths: torch.Tensor, style: torch.Tensor) -> TacotronOutput:
        """Free running from (B, L) text and a (B, d_style) style vector."""
        return self.backbone.infer(text, text_lengths, style)

    @torch.no_grad()
    def synthesize(self, text: torch.Tensor, controls: Mapping[str, StyleControl]) -> TacotronOutput:
        """text (L,) ids, one control per attribute -> free-running output for one utterance."""
        device = self.style.mean_style.device
        style = self.style.embed(controls).to(device)  # (1, sum d_n)
        return self.infer(text[None].to(device), torch.tensor([text.shape[0]], device=device), style)

    @property
    def max_steps(self) -> int:
        """The most output steps free running can take (decoder steps for Tacotron, frames for FastSpeech)."""
        raise NotImplementedError


class MultiRefTacotron(MultiReferenceTTS):
    """The paper's model: a Tacotron (`tacotron`) conditioned on the multi-reference encoder."""

    def __init__(
        self,
        tacotron: Tacotron,
        style: MultiReferenceEncoder,
        tacotron_loss: TacotronLoss,
        style_loss: IntercrossLoss,
        style_warmup_steps: int = 0,
    ) -> None:
        super().__init__(style, style_loss, style_warmup_steps)
        self.tacotron = tacotron
        self.tacotron_loss = tacotron_loss

    @property
    def backbone(self) -> Tacotron:  # type: ignore[override]
        return self.tacotron

    def _backbone_losses(
        self, batch: Batch, style: torch.Tensor, step: int
    ) -> tuple[TacotronOutput, dict[str, torch.Tensor]]:
        out = self.tacotron(batch.text, batch.text_lengths, style, batch.mels)
        return out, self.tacotron_loss(out, batch.mels, batch.mel_lengths, batch.text_lengths, step)

    @property
    def max_steps(self) -> int:
        return self.tacotron.cfg.max_decoder_steps


class MultiRefFastSpeech(MultiReferenceTTS):
    """The same multi-reference encoder and losses in front of the duration-based backbone (`fastspeech`)."""

    def __init__(
        self,
        fastspeech: FastSpeech,
        style: MultiReferenceEncoder,
        fastspeech_loss: FastSpeechLoss,
        style_loss: IntercrossLoss,
        style_warmup_steps: int = 0,
    ) -> None:
        super().__init__(style, style_loss, style_warmup_steps)
        self.fastspeech = fastspeech
        self.fastspeech_loss = fastspeech_loss

    @property
    def backbone(self) -> FastSpeech:  # type: ignore[override]
        return self.fastspeech

    def _backbone_losses(
        self, batch: Batch, style: torch.Tensor, step: int
    ) -> tuple[TacotronOutput, dict[str, torch.Tensor]]:
        if batch.f0 is None:
            raise ValueError("the fastspeech backbone trains on batches with per-frame F0 (Batch.f0)")
        out = self.fastspeech(batch.text, batch.text_lengths, style, batch.mels, batch.mel_lengths, batch.f0)
        return out, self.fastspeech_loss(out, batch.mels, batch.mel_lengths, batch.text_lengths, step)

    @property
    def max_steps(self) -> int:
        return self.fastspeech.cfg.max_frames


def _style_loss(config: Config, classes: Mapping[str, Sequence[str]]) -> IntercrossLoss:
    sc, lc = config.style, config.loss
    classifiers = (
        {a: AttributeClassifier(sc.ref_gru_dim, len(classes[a])) for a in sc.attributes if a in classes}
        if lc.cls_weight > 0
        else {}
    )
    adversaries = (
        [
            AdversarialClassifier(n, other, sc.embed_dim, len(classes[other]))
            for n, attr in enumerate(sc.attributes)
            for other in sc.attributes
            if other != attr and other in classes
        ]
        if lc.adversarial_weight > 0
        else []
    )
    return IntercrossLoss(sc.attributes, classifiers, adversaries, lc.cls_weight, lc.orth_weight, lc.adversarial_weight)


def build_model(config: Config, n_symbols: int, classes: Mapping[str, Sequence[str]]) -> MultiReferenceTTS:
    """Modules for `config`; `classes[attr]` lists the class names of each corpus attribute."""
    sc, lc = config.style, config.loss
    n_mels = config.audio.n_mels
    subs = [
        SubEncoder(
            attr,
            ReferenceEncoder(n_mels, sc.ref_channels, sc.ref_gru_dim),
            StyleTokenLayer(sc.ref_gru_dim, sc.n_tokens, sc.n_heads, sc.embed_dim),
        )
        for attr in sc.attributes
    ]
    style = MultiReferenceEncoder(subs)
    style_loss = _style_loss(config, classes)
    if config.backbone == "fastspeech":
        fs = FastSpeech(n_symbols, n_mels, style.embed_dim, config.fastspeech)
        return MultiRefFastSpeech(fs, style, FastSpeechLoss(lc), style_loss, lc.style_warmup_steps)
    if config.backbone != "tacotron":
        raise ValueError(f"unknown backbone {config.backbone!r}; expected 'tacotron' or 'fastspeech'")
    tacotron = Tacotron(n_symbols, n_mels, style.embed_dim, config.tacotron)
    return MultiRefTacotron(
        tacotron, style, TacotronLoss(config.tacotron.reduction, lc), style_loss, lc.style_warmup_steps
    )


OPTIONAL_BUFFERS = ("style.mean_style", "style.mean_count")  # absent in checkpoints written before they existed


def load_weights(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """`model.load_state_dict(state)`, strict except for `OPTIONAL_BUFFERS` (kept at their initial values)."""
    result = model.load_state_dict(dict(state), strict=False)
    missing = [k for k in result.missing_keys if k not in OPTIONAL_BUFFERS]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"checkpoint does not match the model: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
