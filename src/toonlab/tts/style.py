"""Global style tokens (Wang et al. 2018) and the multi-reference encoder of Bian et al. 2019.

A `SubEncoder` is one complete GST module: a `ReferenceEncoder` (Conv2D stack + GRU) whose final state queries a
`StyleTokenLayer` (a bank of tanh tokens read by multi-head attention). A `MultiReferenceEncoder` holds N of them,
one per style attribute (e.g. speaker, style); their embeddings are concatenated into one style vector.
At inference each attribute is set on its own by a `StyleControl`: a reference mel, explicit token weights,
an interpolation between two references, or random token weights.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence


class ReferenceEncoder(nn.Module):
    """(B, T, n_mels) reference mels -> (B, gru_dim) final GRU state.

    Conv2D 3x3 stride 2 + BatchNorm + ReLU per channel entry, then a GRU over the downsampled time axis
    (packed, so padding never reaches the state).
    """

    def __init__(self, n_mels: int, channels: Sequence[int], gru_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip((1, *channels[:-1]), channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
        self.convs = nn.Sequential(*layers)
        self.n_convs = len(channels)
        freq = n_mels
        for _ in channels:
            freq = (freq - 1) // 2 + 1
        self.gru = nn.GRU(channels[-1] * freq, gru_dim, batch_first=True)
        self.out_dim = gru_dim

    def forward(self, mels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.convs(mels[:, None])  # (B, C, T', F')
        b, c, t, f = x.shape
        x = x.permute(0, 2, 1, 3).reshape(b, t, c * f)  # (B, T', C * F')
        for _ in range(self.n_convs):
            lengths = torch.div(lengths - 1, 2, rounding_mode="floor") + 1
        packed = pack_padded_sequence(x, lengths.clamp(1, t).cpu(), batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)
        return h[-1]  # (B, gru_dim)


class StyleTokenLayer(nn.Module):
    """A bank of `n_tokens` tokens (tanh) read by `n_heads`-head dot-product attention -> (B, embed_dim)."""

    def __init__(self, query_dim: int, n_tokens: int, n_heads: int, embed_dim: int) -> None:
        super().__init__()
        if embed_dim % n_heads:
            raise ValueError(f"embed_dim {embed_dim} is not divisible by n_heads {n_heads}")
        self.n_tokens, self.n_heads, self.embed_dim = n_tokens, n_heads, embed_dim
        token_dim = embed_dim // n_heads
        self.tokens = nn.Parameter(torch.randn(n_tokens, token_dim) * 0.5)
        self.query = nn.Linear(query_dim, embed_dim, bias=False)
        self.key = nn.Linear(token_dim, embed_dim, bias=False)
        self.value = nn.Linear(token_dim, embed_dim, bias=False)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.view(*x.shape[:-1], self.n_heads, self.embed_dim // self.n_heads)

    def attention(self, query: torch.Tensor) -> torch.Tensor:
        """(B, query_dim) -> token weights (B, heads, n_tokens), each row summing to 1."""
        q = self._heads(self.query(query))  # (B, H, d)
        k = self._heads(self.key(torch.tanh(self.tokens)))  # (N, H, d)
        scores = torch.einsum("bhd,nhd->bhn", q, k) / q.shape[-1] ** 0.5
        return torch.softmax(scores, dim=-1)

    def embed(self, weights: torch.Tensor) -> torch.Tensor:
        """Token weights (B, heads, n_tokens) -> style embedding (B, embed_dim)."""
        v = self._heads(self.value(torch.tanh(self.tokens)))  # (N, H, d)
        return torch.einsum("bhn,nhd->bhd", weights, v).reshape(weights.shape[0], self.embed_dim)

    def forward(self, query: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        weights = self.attention(query)
        return self.embed(weights), weights


@dataclass
class SubEncoderOutput:
    reference: torch.Tensor  # (B, gru_dim): reference-encoder state (the classifier's input)
    style: torch.Tensor  # (B, embed_dim): style embedding
    weights: torch.Tensor  # (B, heads, n_tokens)


class SubEncoder(nn.Module):
    """One GST module dedicated to one style attribute."""

    def __init__(self, attribute: str, reference: ReferenceEncoder, tokens: StyleTokenLayer) -> None:
        super().__init__()
        self.attribute = attribute
        self.reference = reference
        self.tokens = tokens

    @property
    def embed_dim(self) -> int:
        return self.tokens.embed_dim

    def forward(self, mels: torch.Tensor, lengths: torch.Tensor) -> SubEncoderOutput:
        ref = self.reference(mels, lengths)
        style, weights = self.tokens(ref)
        return SubEncoderOutput(ref, style, weights)


class StyleControl(Protocol):
    """How one attribute is set at inference: returns that sub-encoder's (1, embed_dim) embedding."""

    def embed(self, sub: SubEncoder) -> torch.Tensor: ...


def _device(sub: SubEncoder) -> torch.device:
    return sub.tokens.tokens.device


def _reference_embedding(sub: SubEncoder, mel: torch.Tensor) -> torch.Tensor:
    return sub(mel[None].to(_device(sub)), torch.tensor([mel.shape[0]], device=_device(sub))).style


@dataclass
class ReferenceStyle:
    """The style of a reference utterance: mel (T, n_mels)."""

    mel: torch.Tensor

    def embed(self, sub: SubEncoder) -> torch.Tensor:
        return _reference_embedding(sub, self.mel)


@dataclass
class TokenWeights:
    """Explicit token weights {token index: weight}, the same for every head (GST's manual control)."""

    weights: Mapping[int, float]

    def embed(self, sub: SubEncoder) -> torch.Tensor:
        w = torch.zeros(1, sub.tokens.n_heads, sub.tokens.n_tokens, device=_device(sub))
        for k, v in self.weights.items():
            if not 0 <= k < sub.tokens.n_tokens:
                raise ValueError(f"token {k} out of range for {sub.attribute!r} ({sub.tokens.n_tokens} tokens)")
            w[:, :, k] = v
        return sub.tokens.embed(w)


@dataclass
class InterpolatedStyle:
    """SE = SE_from + alpha * (SE_to - SE_from) between two references (mels (T, n_mels))."""

    mel_from: torch.Tensor
    mel_to: torch.Tensor
    alpha: float

    def embed(self, sub: SubEncoder) -> torch.Tensor:
        a = _reference_embedding(sub, self.mel_from)
        return a + self.alpha * (_reference_embedding(sub, self.mel_to) - a)


@dataclass
class RandomTokens:
    """SE = sum_k softmax(alpha)_k * token_k with alpha ~ N(0, I) per head, seeded."""

    seed: int = 0

    def embed(self, sub: SubEncoder) -> torch.Tensor:
        gen = torch.Generator().manual_seed(self.seed)
        alpha = torch.randn(1, sub.tokens.n_heads, sub.tokens.n_tokens, generator=gen)
        return sub.tokens.embed(torch.softmax(alpha, dim=-1).to(_device(sub)))


def mean_tokens(n_tokens: int) -> TokenWeights:
    """Uniform weights over the tokens (the default for an unset attribute in models trained before the mean
    training embedding was tracked)."""
    return TokenWeights({k: 1.0 / n_tokens for k in range(n_tokens)})


@dataclass
class FixedEmbedding:
    """A given (embed_dim,) embedding, e.g. the mean of the embeddings seen in training."""

    embedding: torch.Tensor

    def embed(self, sub: SubEncoder) -> torch.Tensor:
        return self.embedding.to(_device(sub))[None]


class MultiReferenceEncoder(nn.Module):
    """N sub-encoders (one per attribute) -> concatenated style vector (B, sum of embed_dims)."""

    def __init__(self, sub_encoders: Sequence[SubEncoder]) -> None:
        super().__init__()
        if not sub_encoders:
            raise ValueError("a MultiReferenceEncoder needs at least one sub-encoder")
        self.subs = nn.ModuleList(sub_encoders)
        self.attributes = [s.attribute for s in sub_encoders]
        if len(set(self.attributes)) != len(self.attributes):
            raise ValueError(f"one sub-encoder per attribute, got {self.attributes}")
        # running mean of each sub-encoder's training embeddings: the default for an attribute left unset (the
        # mean-token vector lies off the learned range)
        self.register_buffer("mean_style", torch.zeros(self.embed_dim))
        self.register_buffer("mean_count", torch.zeros(()))

    @property
    def embed_dim(self) -> int:
        return sum(s.embed_dim for s in self.subs)

    def forward(
        self, references: Sequence[tuple[torch.Tensor, torch.Tensor]]
    ) -> tuple[torch.Tensor, list[SubEncoderOutput]]:
        """references[n] = (mels (B, T_n, n_mels), lengths (B,)) for sub-encoder n."""
        if len(references) != len(self.subs):
            raise ValueError(f"expected {len(self.subs)} references, got {len(references)}")
        outs = [sub(mels, lengths) for sub, (mels, lengths) in zip(self.subs, references, strict=True)]
        return torch.cat([o.style for o in outs], dim=-1), outs

    @torch.no_grad()
    def track(self, outs: Sequence[SubEncoderOutput]) -> None:
        """Fold a training batch's embeddings into `mean_style` (cumulative mean over the first 1,000 batches, then
        an exponential average that follows the embeddings as they move)."""
        batch_mean = torch.cat([o.style.detach().float().mean(0) for o in outs])
        self.mean_count += 1
        rate = max(1.0 / float(self.mean_count), 1e-3)
        self.mean_style.mul_(1 - rate).add_(rate * batch_mean)

    def default(self, n: int) -> StyleControl:
        """The control used for sub-encoder n when the user sets nothing: the mean training embedding."""
        if float(self.mean_count) == 0:
            return mean_tokens(self.subs[n].tokens.n_tokens)
        start = sum(s.embed_dim for s in self.subs[:n])
        return FixedEmbedding(self.mean_style[start : start + self.subs[n].embed_dim])

    @torch.no_grad()
    def embed(self, controls: Mapping[str, StyleControl]) -> torch.Tensor:
        """One control per attribute (missing ones get `default`) -> (1, embed_dim)."""
        unknown = set(controls) - set(self.attributes)
        if unknown:
            raise KeyError(f"unknown style attribute(s) {sorted(unknown)}; this model has {self.attributes}")
        parts = [controls.get(s.attribute, self.default(n)).embed(s) for n, s in enumerate(self.subs)]
        return torch.cat(parts, dim=-1)
