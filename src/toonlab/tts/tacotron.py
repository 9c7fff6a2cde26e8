"""Tacotron 2 acoustic model (Shen et al. 2018) with a reduction factor, conditioned on a style vector.

Text encoder (embedding -> conv stack -> BiLSTM), location-sensitive attention (Chorowski et al. 2015),
autoregressive LSTM decoder emitting `r` mel frames and one stop logit per step, convolutional post-net.
A style vector (B, d_style) is broadcast over the text steps and concatenated onto the encoder outputs, so the
attention memory is (B, L, d_text + d_style). A guided attention loss (Tachibana et al. 2018) makes attention
diagonal within a few hundred steps on small data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from toonlab.tts.configs import LossConfig, TacotronConfig


def lengths_to_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B,) lengths -> (B, max_len) bool, True on valid positions."""
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm1d(channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; expected 'batch' or 'none'")


class ConvBlock(nn.Sequential):
    def __init__(
        self, c_in: int, c_out: int, kernel: int, activation: nn.Module, dropout: float, norm: str = "batch"
    ) -> None:
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, padding=kernel // 2),
            _norm(norm, c_out),
            activation,
            nn.Dropout(dropout),
        )


class TextEncoder(nn.Module):
    """ids (B, L) -> (B, L, dim): embedding, `convs` conv blocks, BiLSTM."""

    def __init__(self, n_symbols: int, embed_dim: int, dim: int, convs: int, kernel: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_symbols, embed_dim, padding_idx=0)
        dims = [embed_dim] + [dim] * convs
        self.convs = nn.Sequential(*[ConvBlock(dims[i], dims[i + 1], kernel, nn.ReLU(), 0.5) for i in range(convs)])
        self.lstm = nn.LSTM(dim, dim // 2, batch_first=True, bidirectional=True)

    def forward(self, text: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.convs(self.embedding(text).transpose(1, 2)).transpose(1, 2)  # (B, L, C)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=text.shape[1])
        return out  # (B, L, encoder_dim)


class Prenet(nn.Module):
    """Bottleneck MLP on the previous frame; dropout stays on at inference (as in Tacotron 2)."""

    def __init__(self, dim_in: int, dims: tuple[int, ...], dropout: float) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip((dim_in, *dims[:-1]), dims, strict=True))
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = F.dropout(F.relu(layer(x)), p=self.dropout, training=True)
        return x


class LocationSensitiveAttention(nn.Module):
    """Additive attention whose energies also see conv features of the previous and cumulative weights."""

    def __init__(self, query_dim: int, memory_dim: int, dim: int, filters: int, kernel: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, dim, bias=False)
        self.memory = nn.Linear(memory_dim, dim, bias=False)
        self.location_conv = nn.Conv1d(2, filters, kernel, padding=kernel // 2, bias=False)
        self.location = nn.Linear(filters, dim, bias=False)
        self.v = nn.Linear(dim, 1)

    def forward(
        self,
        query: torch.Tensor,  # (B, query_dim)
        memory: torch.Tensor,  # (B, L, memory_dim)
        keys: torch.Tensor,  # (B, L, dim): self.memory(memory), computed once per utterance
        previous: torch.Tensor,  # (B, 2, L): previous and cumulative weights
        mask: torch.Tensor,  # (B, L) True on valid steps
    ) -> tuple[torch.Tensor, torch.Tensor]:
        loc = self.location(self.location_conv(previous).transpose(1, 2))  # (B, L, dim)
        energies = self.v(torch.tanh(self.query(query)[:, None] + keys + loc)).squeeze(-1)  # (B, L)
        weights = torch.softmax(energies.masked_fill(~mask, -1e9), dim=-1)  # (B, L)
        context = torch.bmm(weights[:, None], memory).squeeze(1)  # (B, memory_dim)
        return context, weights


@dataclass
class DecoderState:
    attention_h: torch.Tensor
    attention_c: torch.Tensor
    decoder_h: torch.Tensor
    decoder_c: torch.Tensor
    weights: torch.Tensor  # (B, L)
    cumulative: torch.Tensor  # (B, L)
    context: torch.Tensor  # (B, memory_dim)


class Decoder(nn.Module):
    """Autoregressive decoder: r frames of n_mels and one stop logit per step."""

    def __init__(self, n_mels: int, memory_dim: int, cfg: TacotronConfig) -> None:
        super().__init__()
        self.n_mels, self.r, self.cfg = n_mels, cfg.reduction, cfg
        self.prenet = Prenet(n_mels, cfg.prenet_dims, cfg.prenet_dropout)
        self.attention_rnn = nn.LSTMCell(cfg.prenet_dims[-1] + memory_dim, cfg.attention_rnn_dim)
        self.attention = LocationSensitiveAttention(
            cfg.attention_rnn_dim, memory_dim, cfg.attention_dim, cfg.location_filters, cfg.location_kernel
        )
        self.decoder_rnn = nn.LSTMCell(cfg.attention_rnn_dim + memory_dim, cfg.decoder_rnn_dim)
        self.frame = nn.Linear(cfg.decoder_rnn_dim + memory_dim, n_mels * cfg.reduction)
        self.stop = nn.Linear(cfg.decoder_rnn_dim + memory_dim, 1)

    def _initial_state(self, memory: torch.Tensor) -> DecoderState:
        b, length, d = memory.shape
        z = memory.new_zeros
        return DecoderState(
            z(b, self.cfg.attention_rnn_dim),
            z(b, self.cfg.attention_rnn_dim),
            z(b, self.cfg.decoder_rnn_dim),
            z(b, self.cfg.decoder_rnn_dim),
            z(b, length),
            z(b, length),
            z(b, d),
        )

    def _step(
        self, frame: torch.Tensor, s: DecoderState, memory: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, DecoderState]:
        x = torch.cat([self.prenet(frame), s.context], dim=-1)
        ah, ac = self.attention_rnn(x, (s.attention_h, s.attention_c))
        ah = F.dropout(ah, self.cfg.dropout, self.training)
        previous = torch.stack([s.weights, s.cumulative], dim=1)  # (B, 2, L)
        context, weights = self.attention(ah, memory, keys, previous, mask)
        dh, dc = self.decoder_rnn(torch.cat([ah, context], dim=-1), (s.decoder_h, s.decoder_c))
        dh = F.dropout(dh, self.cfg.dropout, self.training)
        out = torch.cat([dh, context], dim=-1)
        state = DecoderState(ah, ac, dh, dc, weights, s.cumulative + weights, context)
        return self.frame(out), self.stop(out).squeeze(-1), state

    def forward(
        self, memory: torch.Tensor, mask: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Teacher forcing. targets (B, T, n_mels) with T a multiple of r ->
        mels (B, T, n_mels), stop logits (B, T / r), alignments (B, T / r, L)."""
        b, t, _ = targets.shape
        # the input of step k is the last frame of step k - 1 (zeros for k = 0)
        inputs = torch.cat([targets.new_zeros(b, 1, self.n_mels), targets[:, self.r - 1 :: self.r][:, :-1]], 1)
        keys = self.attention.memory(memory)
        state = self._initial_state(memory)
        frames, stops, alignments = [], [], []
        for k in range(t // self.r):
            frame, stop, state = self._step(inputs[:, k], state, memory, keys, mask)
            frames.append(frame)
            stops.append(stop)
            alignments.append(state.weights)
        mels = torch.stack(frames, 1).view(b, t, self.n_mels)
        return mels, torch.stack(stops, 1), torch.stack(alignments, 1)

    @torch.no_grad()
    def infer(self, memory: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Free running for one or more utterances until every stop probability passes the threshold.
        Returns mels (B, T, n_mels) and alignments (B, T / r, L)."""
        b = memory.shape[0]
        keys = self.attention.memory(memory)
        state = self._initial_state(memory)
        frame = memory.new_zeros(b, self.n_mels)
        frames, alignments = [], []
        done = torch.zeros(b, dtype=torch.bool, device=memory.device)
        for _ in range(self.cfg.max_decoder_steps):
            out, stop, state = self._step(frame, state, memory, keys, mask)
            out = out.view(b, self.r, self.n_mels)
            frames.append(out)
            alignments.append(state.weights)
            frame = out[:, -1]
            done |= torch.sigmoid(stop) > self.cfg.stop_threshold
            if bool(done.all()):
                break
        return torch.cat(frames, 1), torch.stack(alignments, 1)


class Postnet(nn.Module):
    """Residual conv stack refining the decoder's mels. (B, T, n_mels) -> (B, T, n_mels)."""

    def __init__(self, n_mels: int, cfg: TacotronConfig) -> None:
        super().__init__()
        dims = [n_mels] + [cfg.postnet_dim] * (cfg.postnet_convs - 1) + [n_mels]
        k, norm = cfg.postnet_kernel, cfg.postnet_norm
        blocks = [ConvBlock(dims[i], dims[i + 1], k, nn.Tanh(), 0.5, norm) for i in range(cfg.postnet_convs - 1)]
        last = nn.Sequential(nn.Conv1d(dims[-2], n_mels, k, padding=k // 2), _norm(norm, n_mels))
        self.net = nn.Sequential(*blocks, last)

    def forward(self, mels: torch.Tensor) -> torch.Tensor:
        return mels + self.net(mels.transpose(1, 2)).transpose(1, 2)


@dataclass
class TacotronOutput:
    mels: torch.Tensor  # (B, T, n_mels) before the post-net
    mels_post: torch.Tensor  # (B, T, n_mels)
    stop_logits: torch.Tensor  # (B, T / r); empty for free-running inference
    alignments: torch.Tensor  # (B, T / r, L)


class Tacotron(nn.Module):
    """Text + style vector -> mel spectrogram. `style_dim` = 0 gives a plain Tacotron 2."""

    def __init__(self, n_symbols: int, n_mels: int, style_dim: int, cfg: TacotronConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = TextEncoder(n_symbols, cfg.embed_dim, cfg.encoder_dim, cfg.encoder_convs, cfg.encoder_kernel)
        self.decoder = Decoder(n_mels, cfg.encoder_dim + style_dim, cfg)
        self.postnet = Postnet(n_mels, cfg)

    def memory(
        self, text: torch.Tensor, text_lengths: torch.Tensor, style: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        encoded = self.encoder(text, text_lengths)  # (B, L, encoder_dim)
        if style is not None:  # (B, d_style) broadcast over the text steps
            encoded = torch.cat([encoded, style[:, None].expand(-1, encoded.shape[1], -1)], dim=-1)
        return encoded, lengths_to_mask(text_lengths, text.shape[1])

    def forward(
        self, text: torch.Tensor, text_lengths: torch.Tensor, style: torch.Tensor | None, mels: torch.Tensor
    ) -> TacotronOutput:
        memory, mask = self.memory(text, text_lengths, style)
        out, stop, alignments = self.decoder(memory, mask, mels)
        return TacotronOutput(out, self.postnet(out), stop, alignments)

    @torch.no_grad()
    def infer(self, text: torch.Tensor, text_lengths: torch.Tensor, style: torch.Tensor | None) -> TacotronOutput:
        memory, mask = self.memory(text, text_lengths, style)
        out, alignments = self.decoder.infer(memory, mask)
        return TacotronOutput(out, self.postnet(out), out.new_zeros(out.shape[0], 0), alignments)


def guided_attention_mask(
    text_lengths: torch.Tensor, step_lengths: torch.Tensor, max_steps: int, max_text: int, sigma: float
) -> torch.Tensor:
    """(B, T/r, L) penalty 1 - exp(-(l/L - t/T)^2 / (2 sigma^2)), zero outside each utterance."""
    t = torch.arange(max_steps, device=text_lengths.device)[None, :, None] / step_lengths[:, None, None]
    n = torch.arange(max_text, device=text_lengths.device)[None, None, :] / text_lengths[:, None, None]
    w = 1.0 - torch.exp(-((n - t) ** 2) / (2 * sigma**2))
    valid = lengths_to_mask(step_lengths, max_steps)[:, :, None] & lengths_to_mask(text_lengths, max_text)[:, None]
    return w * valid


class TacotronLoss(nn.Module):
    """Masked L1 on mels before and after the post-net, stop-token BCE, guided attention."""

    def __init__(self, reduction: int, cfg: LossConfig) -> None:
        super().__init__()
        self.r, self.cfg = reduction, cfg

    def forward(
        self,
        out: TacotronOutput,
        mels: torch.Tensor,  # (B, T, n_mels) padded to a multiple of r
        mel_lengths: torch.Tensor,  # (B,)
        text_lengths: torch.Tensor,  # (B,)
        step: int,
    ) -> dict[str, torch.Tensor]:
        frame_mask = lengths_to_mask(mel_lengths, mels.shape[1])[..., None].float()  # (B, T, 1)
        denom = frame_mask.sum() * mels.shape[-1]
        mel = ((out.mels - mels).abs() * frame_mask).sum() / denom
        post = ((out.mels_post - mels).abs() * frame_mask).sum() / denom
        steps = torch.div(mel_lengths + self.r - 1, self.r, rounding_mode="floor")  # (B,)
        n_steps = out.stop_logits.shape[1]
        stop_target = (torch.arange(n_steps, device=mels.device)[None] >= (steps - 1)[:, None]).float()
        stop = F.binary_cross_entropy_with_logits(out.stop_logits, stop_target, pos_weight=mels.new_tensor(5.0))
        losses = {"mel": mel, "mel_post": post, "stop": stop}
        total = mel + post + self.cfg.stop_weight * stop
        if self.cfg.guided_attention_weight > 0 and step < self.cfg.guided_attention_until:
            w = guided_attention_mask(
                text_lengths, steps, n_steps, out.alignments.shape[2], self.cfg.guided_attention_sigma
            )
            ga = (out.alignments * w).sum() / (lengths_to_mask(steps, n_steps).sum() * 1.0)
            losses["guided_attention"] = ga
            total = total + self.cfg.guided_attention_weight * ga
        losses["total"] = total
        return losses


def attention_scores(alignment: torch.Tensor, text_length: int, band: float = 0.1) -> dict[str, float]:
    """Quality of one (T/r, L) alignment, trimmed to its text length.

    focus: mean over decoder steps of the largest weight (1 = sharp); diagonality: mean attention mass within
    +/- max(2, band * L) symbols of the straight line from (0, 0) to (T, L); monotonic: fraction of steps whose
    argmax does not move backwards.
    """
    a = alignment[:, :text_length].float()
    steps, length = a.shape
    expected = torch.arange(steps, dtype=torch.float32)[:, None] * (length / max(steps, 1))  # (T, 1)
    width = max(2.0, band * length)
    near = (torch.arange(length, dtype=torch.float32)[None] - expected).abs() <= width  # (T, L)
    peaks = a.argmax(dim=1)
    return {
        "focus": float(a.max(dim=1).values.mean()),
        "diagonality": float((a * near).sum(dim=1).mean()),
        "monotonic": float((peaks[1:] >= peaks[:-1]).float().mean()) if steps > 1 else 1.0,
    }


def num_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
