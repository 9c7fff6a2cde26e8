"""Classification heads on a video encoder: action, character kind, playback order (see tasks.ClassifyTask)."""

from __future__ import annotations

import torch
from torch import nn


class VideoClassifier(nn.Module):
    """A video encoder with one linear head per label (action, character kind, playback order, ...)."""

    def __init__(self, video: nn.Module, embed_dim: int, classes: dict[str, int]) -> None:
        super().__init__()
        self.video = video
        self.heads = nn.ModuleDict({name: nn.Linear(embed_dim, n) for name, n in classes.items()})

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.video.suffix(h, mask)  # (B, E)
        return {name: head(features).float() for name, head in self.heads.items()}  # name -> (B, n_classes)
