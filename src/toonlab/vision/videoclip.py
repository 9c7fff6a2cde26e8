"""Video-CLIP (CLIP4Clip-style): N keyframes per shot through a frame tower, temporal pooling, a text tower, and a
symmetric InfoNCE loss with a learnable temperature.

Luo et al. 2021, "CLIP4Clip": frame features are projected to the joint space, then pooled over time either by
a masked mean ("meanP") or by a small temporal transformer with position embeddings whose output is added to its
input before the masked mean ("seqTransf"). The loss is the mean of the text->video and video->text cross-entropies
over the batch's similarity matrix scaled by exp(logit_scale); where captions repeat inside a batch, every shot
sharing the caption is a positive and the target mass is spread evenly over them.

The video side is a `VideoEncoder`: anything that maps `prefix(frames)` -> `suffix(h, mask)` -> (B, E). Frame
encoders (`FrameVideoEncoder`) split their frame tower so frozen layers run once per dataset (see towers.py).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from toonlab.vision.towers import SplitTower, TextTower, masked_mean

POOLINGS = ("mean", "transformer")


class TemporalTransformer(nn.Module):
    """seqTransf pooling: x + Transformer(x + position), then the masked mean over time."""

    def __init__(self, width: int, layers: int, heads: int, max_frames: int) -> None:
        super().__init__()
        self.positions = nn.Parameter(torch.randn(max_frames, width) * 0.02)  # random: zeros would start order-blind
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x (B, N, E), mask (B, N) bool (True = a real frame)
        y = self.encoder(x + self.positions[: x.shape[1]], src_key_padding_mask=~mask)
        return masked_mean(x + y, mask)  # (B, E)


class FrameVideoEncoder(nn.Module):
    """Per-frame tower -> linear projection to E -> temporal pooling (mean or transformer) -> (B, E)."""

    def __init__(self, tower: SplitTower, embed_dim: int, pooling: str, layers: int, heads: int, max_frames: int):
        super().__init__()
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.tower = tower
        self.projection = nn.Linear(tower.dim, embed_dim)
        self.temporal = TemporalTransformer(embed_dim, layers, heads, max_frames) if pooling == "transformer" else None

    @property
    def cached(self) -> bool:
        return self.tower.cached

    def prefix(self, frames: torch.Tensor) -> torch.Tensor:
        """(M, 3, H, W) uint8 or float frames -> the frozen part's per-frame output (cacheable)."""
        if frames.dtype == torch.uint8:
            frames = frames.float() / 255.0
        return self.tower.prefix(frames)

    def suffix(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """h: (B, N, ...) per-frame prefix outputs, mask (B, N) -> (B, E)."""
        batch, n = h.shape[:2]
        features = self.projection(self.tower.suffix(h.flatten(0, 1))).view(batch, n, -1)  # (B, N, E)
        if self.temporal is None:
            return masked_mean(features, mask)
        return self.temporal(features, mask)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # frames (B, N, 3, H, W)
        h = self.prefix(frames.flatten(0, 1))
        return self.suffix(h.view(*frames.shape[:2], *h.shape[1:]), mask)


class TextEncoder(nn.Module):
    """Text tower -> linear projection to E."""

    def __init__(self, tower: TextTower, embed_dim: int) -> None:
        super().__init__()
        self.tower = tower
        self.projection = nn.Linear(tower.dim, embed_dim)

    @property
    def cached(self) -> bool:
        return self.tower.cached

    def prefix(self, texts: list[str]):
        return self.tower.prefix(texts)

    def suffix(self, h) -> torch.Tensor:
        return self.projection(self.tower.suffix(h))

    def forward(self, texts: list[str]) -> torch.Tensor:
        return self.suffix(self.prefix(texts))


class VideoCLIP(nn.Module):
    """Video and text encoders into one L2-normalised space, with a learnable log inverse temperature."""

    def __init__(self, video: nn.Module, text: TextEncoder, temperature: float = 0.07) -> None:
        super().__init__()
        self.video, self.text = video, text
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1.0 / temperature)))

    def embed_video(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.video.suffix(h, mask).float(), dim=-1)

    def embed_text(self, h) -> torch.Tensor:
        return nn.functional.normalize(self.text.suffix(h).float(), dim=-1)

    def scale(self) -> torch.Tensor:
        return self.logit_scale.float().clamp(max=math.log(100.0)).exp()  # CLIP's cap at 100

    def forward(self, video_h: torch.Tensor, mask: torch.Tensor, text_h) -> tuple[torch.Tensor, ...]:
        """Prefix outputs -> (video (B, E), text (B, E)) normalised embeddings and the logit scale."""
        return self.embed_video(video_h, mask), self.embed_text(text_h), self.scale()


def contrastive_loss(
    video: torch.Tensor, text: torch.Tensor, caption_ids: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """Symmetric multi-positive InfoNCE. video, text (B, E) normalised; caption_ids (B,): equal ids are positives.

    Each row's target is uniform over its positives; with all ids distinct this is CLIP's loss, and with equal
    embeddings it is ln B.
    """
    logits = scale * video.float() @ text.float().T  # (B, B): video i vs text j
    positives = (caption_ids[:, None] == caption_ids[None, :]).float()  # symmetric (B, B)
    targets = positives / positives.sum(1, keepdim=True)
    v2t = -(targets * logits.log_softmax(1)).sum(1).mean()
    t2v = -(targets * logits.T.log_softmax(1)).sum(1).mean()
    return (v2t + t2v) / 2
