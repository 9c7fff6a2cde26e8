"""Text-to-frame alignment learned with the model (Badlani et al. 2021, "One TTS Alignment To Rule Them All",
as in FastPitch 1.1): durations for the non-autoregressive backbone without an external aligner.

`AlignmentEncoder` scores every (frame, symbol) pair by the distance between a mel query and a text key, adds a
beta-binomial diagonal prior, and yields log soft-alignment probabilities; `forward_sum_loss` (CTC over the
monotonic paths) trains it; `hard_alignment` takes the most likely monotonic path (monotonic alignment search,
every symbol at least one frame) whose column sums are the durations.
"""

from __future__ import annotations

from functools import lru_cache

import numba
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from toonlab.tts.tacotron import lengths_to_mask


class AlignmentEncoder(nn.Module):
    """mels (B, T, n_mels) and symbol embeddings (B, L, d_text) -> log soft alignment (B, T, L)."""

    def __init__(self, n_mels: int, text_dim: int, dim: int, temperature: float = 0.0005) -> None:
        super().__init__()
        self.temperature = temperature
        self.key = nn.Sequential(
            nn.Conv1d(text_dim, 2 * text_dim, 3, padding=1), nn.ReLU(), nn.Conv1d(2 * text_dim, dim, 1)
        )
        self.query = nn.Sequential(
            nn.Conv1d(n_mels, 2 * n_mels, 3, padding=1),
            nn.ReLU(),
            nn.Conv1d(2 * n_mels, n_mels, 1),
            nn.ReLU(),
            nn.Conv1d(n_mels, dim, 1),
        )

    def forward(
        self,
        mels: torch.Tensor,  # (B, T, n_mels)
        text: torch.Tensor,  # (B, L, d_text)
        text_mask: torch.Tensor,  # (B, L) True on symbols
        log_prior: torch.Tensor,  # (B, T, L)
    ) -> torch.Tensor:
        q = self.query(mels.transpose(1, 2).float()).transpose(1, 2)  # (B, T, dim)
        k = self.key(text.transpose(1, 2).float()).transpose(1, 2)  # (B, L, dim)
        dist = (q * q).sum(-1, keepdim=True) - 2 * q @ k.transpose(1, 2) + (k * k).sum(-1)[:, None]  # (B, T, L)
        scores = torch.log_softmax(-self.temperature * dist, dim=-1) + log_prior
        scores = scores.masked_fill(~text_mask[:, None], -1e4)
        return torch.log_softmax(scores, dim=-1)  # (B, T, L)


@lru_cache(maxsize=4096)
def _beta_binomial(frames: int, symbols: int, scaling: float) -> torch.Tensor:
    from scipy.stats import betabinom

    t = np.arange(1, frames + 1)[:, None]
    pmf = betabinom(symbols - 1, scaling * t, scaling * (frames + 1 - t)).pmf(np.arange(symbols)[None])
    return torch.from_numpy(np.log(np.maximum(pmf, 1e-8))).float()  # (frames, symbols)


def log_prior(mel_lengths: torch.Tensor, text_lengths: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """(B, T_max, L_max) log beta-binomial prior centred on the diagonal of each (T_i, L_i) rectangle."""
    b, t_max, l_max = len(mel_lengths), int(mel_lengths.max()), int(text_lengths.max())
    out = torch.zeros(b, t_max, l_max)
    for i, (t, n) in enumerate(zip(mel_lengths.tolist(), text_lengths.tolist(), strict=True)):
        out[i, :t, :n] = _beta_binomial(int(t), int(n), scaling)
    return out


def forward_sum_loss(
    log_attention: torch.Tensor,  # (B, T, L)
    mel_lengths: torch.Tensor,  # (B,)
    text_lengths: torch.Tensor,  # (B,)
    blank_logprob: float = -1.0,
) -> torch.Tensor:
    """CTC loss of the symbol sequence 1..L_i given per-frame symbol scores: the total probability of all
    monotonic alignments that visit every symbol in order."""
    b, _, l_max = log_attention.shape
    padded = F.pad(log_attention.float(), (1, 0), value=blank_logprob)  # (B, T, L + 1); class 0 = blank
    valid = torch.cat(
        [torch.ones(b, 1, dtype=torch.bool, device=padded.device), lengths_to_mask(text_lengths, l_max)], 1
    )
    padded = padded.masked_fill(~valid[:, None], -1e4)
    log_probs = torch.log_softmax(padded, dim=-1).transpose(0, 1)  # (T, B, L + 1)
    targets = torch.arange(1, l_max + 1, device=padded.device)[None].expand(b, -1)
    return F.ctc_loss(
        log_probs, targets, mel_lengths.cpu(), text_lengths.cpu(), blank=0, reduction="mean", zero_infinity=True
    )


@numba.njit(cache=True)
def _monotonic_path(log_p: np.ndarray) -> np.ndarray:  # pragma: no cover - compiled
    frames, symbols = log_p.shape
    value = np.full((frames, symbols), -np.inf)
    value[0, 0] = log_p[0, 0]
    for t in range(1, frames):
        for j in range(min(symbols, t + 1)):
            stay = value[t - 1, j]
            move = value[t - 1, j - 1] if j > 0 else -np.inf
            value[t, j] = max(stay, move) + log_p[t, j]
    durations = np.zeros(symbols, dtype=np.int64)
    j = symbols - 1
    for t in range(frames - 1, -1, -1):
        durations[j] += 1
        if j > 0 and (t == j or (t > 0 and value[t - 1, j - 1] >= value[t - 1, j])):
            j -= 1
    return durations


def hard_durations(
    log_attention: torch.Tensor,  # (B, T, L)
    mel_lengths: torch.Tensor,  # (B,)
    text_lengths: torch.Tensor,  # (B,)
) -> torch.Tensor:
    """(B, L) frames per symbol along the most likely monotonic path (each symbol >= 1 frame when T_i >= L_i;
    shorter clips spread their frames evenly). Rows sum to the mel lengths."""
    scores = log_attention.detach().float().cpu().numpy()
    out = torch.zeros(log_attention.shape[0], log_attention.shape[2], dtype=torch.long)
    for i, (t, n) in enumerate(zip(mel_lengths.tolist(), text_lengths.tolist(), strict=True)):
        if t >= n:
            out[i, :n] = torch.from_numpy(_monotonic_path(np.ascontiguousarray(scores[i, :t, :n])))
        else:
            edges = np.floor(np.linspace(0, t, n + 1)).astype(np.int64)
            out[i, :n] = torch.from_numpy(np.diff(edges))
    return out.to(log_attention.device)


def durations_to_alignment(durations: torch.Tensor, frames: int) -> torch.Tensor:
    """(B, L) integer durations -> (B, frames, L) 0/1 alignment (symbol of each frame; zero past the end)."""
    ends = durations.cumsum(dim=1)  # (B, L)
    t = torch.arange(frames, device=durations.device)[None].expand(durations.shape[0], -1).contiguous()
    index = torch.searchsorted(ends, t, right=True)  # (B, frames): the symbol whose span holds frame t
    inside = index < durations.shape[1]
    one_hot = F.one_hot(index.clamp(max=durations.shape[1] - 1), durations.shape[1]).float()
    return one_hot * inside[..., None]
