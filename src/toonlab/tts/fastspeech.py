"""Duration-based non-autoregressive acoustic model (FastSpeech 2, Ren et al. 2021; FastPitch, Lancucki 2021),
conditioned on a style vector: the second backbone behind the multi-reference encoder.

text (B, L) -> encoder (+ style) -> duration, pitch and energy predictors (each also sees the style) -> pitch and
energy embeddings added per symbol -> length regulation by durations -> dilated-conv decoder (style added in
every block) -> mels (B, T, n_mels). Durations come from the jointly trained aligner (`toonlab.tts.aligner`);
pitch and energy targets are per-symbol averages of frame log-F0 (voiced frames) and frame log-energy, so each
prosodic dimension of a style (pitch level and range, rate, loudness) is a supervised target.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from toonlab.tts.aligner import (
    AlignmentEncoder,
    durations_to_alignment,
    forward_sum_loss,
    hard_durations,
    log_prior,
)
from toonlab.tts.configs import FastSpeechConfig, LossConfig
from toonlab.tts.tacotron import TacotronOutput, TextEncoder, lengths_to_mask


class VariancePredictor(nn.Module):
    """(B, L, d) hidden + (B, d_style) style -> (B, L) one value per symbol (two conv layers, style added)."""

    def __init__(self, dim_in: int, style_dim: int, dim: int, kernel: int, dropout: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(dim_in, dim, kernel, padding=kernel // 2)
        self.style = nn.Linear(style_dim, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.conv2 = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.norm2 = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, style: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x * mask[..., None]
        h = F.relu(self.conv1(x.transpose(1, 2)).transpose(1, 2) + self.style(style)[:, None])
        h = self.dropout(self.norm1(h)) * mask[..., None]
        h = self.dropout(self.norm2(F.relu(self.conv2(h.transpose(1, 2)).transpose(1, 2))))
        return self.out(h).squeeze(-1) * mask  # (B, L)


class ConvDecoder(nn.Module):
    """(B, T, d_in) frames + style -> (B, T, n_mels): residual dilated conv blocks, the style added in each. With
    `decoder_reduction` r > 1 the blocks run on means of r consecutive frames and the output layer emits r frames."""

    def __init__(self, d_in: int, style_dim: int, n_mels: int, cfg: FastSpeechConfig) -> None:
        super().__init__()
        d, k = cfg.decoder_dim, cfg.decoder_kernel
        self.r, self.n_mels = cfg.decoder_reduction, n_mels
        self.inp = nn.Linear(d_in, d)
        self.convs = nn.ModuleList(nn.Conv1d(d, d, k, dilation=r, padding=r * (k // 2)) for r in cfg.decoder_dilations)
        self.styles = nn.ModuleList(nn.Linear(style_dim, d) for _ in cfg.decoder_dilations)
        self.norms = nn.ModuleList(nn.LayerNorm(d) for _ in cfg.decoder_dilations)
        self.out = nn.Linear(d, n_mels * self.r)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, style: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        pad = (-t) % self.r
        x = F.pad(x, (0, 0, 0, pad)).view(b, (t + pad) // self.r, self.r, -1).mean(2)  # (B, T / r, d_in)
        m = F.pad(mask, (0, pad)).view(b, -1, self.r).any(2)[..., None].to(x.dtype)  # (B, T / r, 1)
        x = self.inp(x) * m
        for conv, proj, norm in zip(self.convs, self.styles, self.norms, strict=True):
            h = conv(x.transpose(1, 2)).transpose(1, 2) + proj(style)[:, None]
            x = (x + self.dropout(F.relu(norm(h)))) * m
        return self.out(x).view(b, t + pad, self.n_mels)[:, :t]  # (B, T, n_mels)


def regulate_length(hidden: torch.Tensor, durations: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, L, d) per-symbol states repeated by (B, L) integer durations -> (B, frames, d), zero past the end."""
    return durations_to_alignment(durations, frames).to(hidden.dtype) @ hidden


def symbol_means(frame_values: torch.Tensor, weights: torch.Tensor, alignment: torch.Tensor) -> torch.Tensor:
    """Weighted mean of (B, T) frame values over each symbol's frames ((B, T, L) 0/1 alignment) -> (B, L)."""
    total = torch.einsum("bt,btl->bl", frame_values * weights, alignment)
    count = torch.einsum("bt,btl->bl", weights, alignment)
    return total / count.clamp(min=1.0)


@dataclass
class FastSpeechOutput(TacotronOutput):
    """TacotronOutput's fields (alignments: (B, T, L) hard alignment; no stop logits) plus what the loss needs."""

    log_attention: torch.Tensor | None = None  # (B, T, L) soft alignment (log)
    durations: torch.Tensor | None = None  # (B, L) frames per symbol (targets in training, predicted otherwise)
    predicted: dict[str, torch.Tensor] | None = None  # duration (log), pitch, energy: (B, L) each
    targets: dict[str, torch.Tensor] | None = None


class FastSpeech(nn.Module):
    """Text + style vector -> mels, non-autoregressive. Pitch is normalised log-F0, energy normalised log-energy;
    their corpus statistics are buffers (set once from the training set)."""

    def __init__(self, n_symbols: int, n_mels: int, style_dim: int, cfg: FastSpeechConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.encoder_dim
        self.encoder = TextEncoder(n_symbols, cfg.embed_dim, d, cfg.encoder_convs, cfg.encoder_kernel)
        self.style_proj = nn.Linear(style_dim, d)
        self.aligner = AlignmentEncoder(n_mels, cfg.embed_dim, cfg.aligner_dim)
        pk, pd, drop = cfg.predictor_kernel, cfg.predictor_dim, cfg.predictor_dropout
        self.duration = VariancePredictor(d, style_dim, pd, pk, drop)
        self.pitch = VariancePredictor(d, style_dim, pd, pk, drop)
        self.energy = VariancePredictor(d, style_dim, pd, pk, drop)
        self.pitch_embed = nn.Conv1d(1, d, 3, padding=1)
        self.energy_embed = nn.Conv1d(1, d, 3, padding=1)
        self.decoder = ConvDecoder(d, style_dim, n_mels, cfg)
        self.register_buffer("pitch_stats", torch.tensor([5.0, 0.3]))  # log-Hz mean, sd
        self.register_buffer("energy_stats", torch.tensor([0.0, 1.0]))

    def set_statistics(self, pitch: tuple[float, float], energy: tuple[float, float]) -> None:
        self.pitch_stats.copy_(torch.tensor(pitch))
        self.energy_stats.copy_(torch.tensor(energy))

    def frame_targets(self, mels: torch.Tensor, f0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Normalised frame pitch (B, T), voiced weights (B, T) and normalised frame energy (B, T)."""
        voiced = (f0 > 0).float()
        pitch = (torch.log(f0.clamp(min=1.0)) - self.pitch_stats[0]) / self.pitch_stats[1] * voiced
        energy = (torch.logsumexp(mels.float(), dim=-1) - self.energy_stats[0]) / self.energy_stats[1]
        return pitch, voiced, energy

    def _encode(
        self, text: torch.Tensor, lengths: torch.Tensor, style: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.encoder(text, lengths) + self.style_proj(style)[:, None]  # (B, L, d)
        return hidden, lengths_to_mask(lengths, text.shape[1])

    def _variance(self, hidden: torch.Tensor, style: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: getattr(self, name)(hidden, style, mask) for name in ("duration", "pitch", "energy")}

    def _decode(
        self,
        hidden: torch.Tensor,
        style: torch.Tensor,
        pitch: torch.Tensor,
        energy: torch.Tensor,
        durations: torch.Tensor,
        frames: int,
    ) -> torch.Tensor:
        hidden = hidden + self.pitch_embed(pitch[:, None].to(hidden.dtype)).transpose(1, 2)
        hidden = hidden + self.energy_embed(energy[:, None].to(hidden.dtype)).transpose(1, 2)
        expanded = regulate_length(hidden, durations, frames)  # (B, T, d)
        return self.decoder(expanded, style, lengths_to_mask(durations.sum(1), frames))

    def forward(
        self,
        text: torch.Tensor,  # (B, L)
        text_lengths: torch.Tensor,  # (B,)
        style: torch.Tensor,  # (B, d_style)
        mels: torch.Tensor,  # (B, T, n_mels)
        mel_lengths: torch.Tensor,  # (B,)
        f0: torch.Tensor,  # (B, T) Hz, 0 where unvoiced
    ) -> FastSpeechOutput:
        hidden, mask = self._encode(text, text_lengths, style)
        prior = log_prior(mel_lengths, text_lengths).to(mels.device)
        prior = F.pad(prior, (0, text.shape[1] - prior.shape[2], 0, mels.shape[1] - prior.shape[1]))
        log_attention = self.aligner(mels, self.encoder.embedding(text), mask, prior)  # (B, T, L)
        durations = hard_durations(log_attention, mel_lengths, text_lengths)  # (B, L)
        alignment = durations_to_alignment(durations, mels.shape[1])  # (B, T, L)
        frame_pitch, voiced, frame_energy = self.frame_targets(mels, f0)
        targets = {
            "duration": torch.log1p(durations.float()),
            "pitch": symbol_means(frame_pitch, voiced, alignment),
            "energy": symbol_means(frame_energy, lengths_to_mask(mel_lengths, mels.shape[1]).float(), alignment),
        }
        predicted = self._variance(hidden, style, mask)
        out = self._decode(hidden, style, targets["pitch"], targets["energy"], durations, mels.shape[1])
        return FastSpeechOutput(out, out, out.new_zeros(out.shape[0], 0), alignment, log_attention, durations,
                                predicted, targets)  # fmt: skip

    @torch.no_grad()
    def infer(
        self, text: torch.Tensor, text_lengths: torch.Tensor, style: torch.Tensor, pace: float = 1.0
    ) -> FastSpeechOutput:
        """Free running: predicted durations (>= 1 frame per symbol, at most `max_frames` in all), pitch and energy."""
        hidden, mask = self._encode(text, text_lengths, style)
        predicted = self._variance(hidden, style, mask)
        durations = (torch.expm1(predicted["duration"]) / pace).round().clamp(min=1).long() * mask
        frames = min(int(durations.sum(1).max()), self.cfg.max_frames)
        durations = _fit(durations, self.cfg.max_frames)
        out = self._decode(hidden, style, predicted["pitch"], predicted["energy"], durations, frames)
        alignment = durations_to_alignment(durations, frames)
        return FastSpeechOutput(out, out, out.new_zeros(out.shape[0], 0), alignment, None, durations, predicted)


def _fit(durations: torch.Tensor, max_frames: int) -> torch.Tensor:
    """Scale down (B, L) durations whose sum passes `max_frames`, keeping >= 1 frame per symbol when possible."""
    total = durations.sum(1, keepdim=True)
    over = total > max_frames
    if not bool(over.any()):
        return durations
    scaled = torch.floor(durations.float() * max_frames / total.clamp(min=1)).clamp(min=1).long() * (durations > 0)
    scaled = torch.where(over, scaled, durations)
    while bool((scaled.sum(1) > max_frames).any()):  # rounding up to 1 frame can still overshoot
        row = scaled.sum(1) > max_frames
        scaled[row, scaled[row].argmax(1)] -= 1
    return scaled


class FastSpeechLoss(nn.Module):
    """Masked L1 on mels, MSE on log-duration, pitch and energy per symbol, the aligner's forward-sum loss and,
    after `binarization_start` steps, the binarisation term pulling the soft alignment onto the hard path."""

    def __init__(self, cfg: LossConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def forward(
        self,
        out: FastSpeechOutput,
        mels: torch.Tensor,  # (B, T, n_mels)
        mel_lengths: torch.Tensor,  # (B,)
        text_lengths: torch.Tensor,  # (B,)
        step: int,
    ) -> dict[str, torch.Tensor]:
        assert out.predicted is not None and out.targets is not None and out.log_attention is not None
        frame_mask = lengths_to_mask(mel_lengths, mels.shape[1])[..., None].float()  # (B, T, 1)
        mel = ((out.mels.float() - mels).abs() * frame_mask).sum() / (frame_mask.sum() * mels.shape[-1])
        symbol_mask = lengths_to_mask(text_lengths, out.predicted["duration"].shape[1]).float()  # (B, L)
        losses = {"mel": mel, "mel_post": mel}
        c = self.cfg
        weights = {"duration": c.duration_weight, "pitch": c.pitch_weight, "energy": c.energy_weight}
        total = mel
        for name, w in weights.items():
            err = (out.predicted[name].float() - out.targets[name]) ** 2
            losses[name] = (err * symbol_mask).sum() / symbol_mask.sum()
            total = total + w * losses[name]
        losses["align"] = forward_sum_loss(out.log_attention, mel_lengths, text_lengths)
        align = losses["align"]
        if step >= c.binarization_start:
            hard = out.alignments  # (B, T, L) 0/1
            losses["binarization"] = -(hard * out.log_attention.float()).sum() / hard.sum().clamp(min=1.0)
            align = align + losses["binarization"]
        losses["total"] = total + c.align_weight * align
        return losses
