"""The multi-reference Tacotron: a Tacotron conditioned on a MultiReferenceEncoder, with its training losses.

`build_model(config, n_symbols, classes)` is the one factory that turns a `Config` into modules; N = 1 with
the self-reference sampler and no style losses is the single-GST baseline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from toonlab.tts.configs import Config
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


class MultiRefTacotron(nn.Module):
    """Text + N references -> mels; `forward` also computes every training loss (one graph for DDP)."""

    def __init__(
        self,
        tacotron: Tacotron,
        style: MultiReferenceEncoder,
        tacotron_loss: TacotronLoss,
        style_loss: IntercrossLoss,
        style_warmup_steps: int = 0,
    ) -> None:
        super().__init__()
        self.tacotron = tacotron
        self.style = style
        self.tacotron_loss = tacotron_loss
        self.style_loss = style_loss
        self.style_warmup_steps = style_warmup_steps

    def forward(
        self, batch: Batch, step: int = 0
    ) -> tuple[TacotronOutput, list[SubEncoderOutput], dict[str, torch.Tensor]]:
        style, outs = self.style(batch.references)  # (B, sum d_n)
        out = self.tacotron(batch.text, batch.text_lengths, style, batch.mels)
        losses = self.tacotron_loss(out, batch.mels, batch.mel_lengths, batch.text_lengths, step)
        style_losses = self.style_loss(outs, batch.reference_labels)
        ramp = min(1.0, (step + 1) / self.style_warmup_steps) if self.style_warmup_steps else 1.0
        losses.update(style_losses)
        losses["total"] = losses["total"] + ramp * style_losses["style_total"]
        return out, outs, losses

    @torch.no_grad()
    def synthesize(self, text: torch.Tensor, controls: Mapping[str, StyleControl]) -> TacotronOutput:
        """text (L,) ids, one control per attribute -> free-running output for one utterance."""
        style = self.style.embed(controls)  # (1, sum d_n)
        return self.tacotron.infer(text[None], torch.tensor([text.shape[0]]), style)


def build_model(config: Config, n_symbols: int, classes: Mapping[str, Sequence[str]]) -> MultiRefTacotron:
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
    style_loss = IntercrossLoss(
        sc.attributes, classifiers, adversaries, lc.cls_weight, lc.orth_weight, lc.adversarial_weight
    )
    tacotron = Tacotron(n_symbols, n_mels, style.embed_dim, config.tacotron)
    return MultiRefTacotron(
        tacotron, style, TacotronLoss(config.tacotron.reduction, lc), style_loss, lc.style_warmup_steps
    )
