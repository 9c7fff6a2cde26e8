"""VideoMamba (Li et al. 2024, "VideoMamba: State Space Model for Efficient Video Understanding").

A Conv3d patch embedding over (T, H, W), a cls token, spatial + temporal position embeddings, then bidirectional
Mamba blocks over the token sequence (frame-major: every patch of frame 0, then frame 1, ...). Each block shares its
input and output projections between the two directions; each direction has its own causal conv1d, x_proj,
dt_proj, A_log and D, and the backward direction runs on the flipped sequence. Both directions always run (the
reference layer silently drops the backward one off its CUDA path). RMSNorm, pre-norm, fp32 residual stream.

``VideoMamba`` maps clips (B, T, C, H, W) to cls features (B, dim). ``MambaVideoEncoder`` wraps it as a video
encoder of the training framework (Video-CLIP's video side, the classifiers' trunk); ``VideoMambaClassifier`` is
the standalone backbone + linear head.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from toonlab.vision.scan import selective_scan


@dataclass(frozen=True)
class VideoMambaConfig:
    """Sizes of a VideoMamba. ``dt_rank`` 0 means ceil(dim / 16), as in Mamba."""

    img_size: int = 224
    patch_size: int = 16
    num_frames: int = 8
    tubelet: int = 1  # frames per temporal patch
    in_chans: int = 3
    dim: int = 192
    depth: int = 24
    d_state: int = 16
    d_conv: int = 4
    expand: int = 2
    dt_rank: int = 0
    scan_backend: str = "auto"
    grad_checkpoint: bool = False

    def __post_init__(self) -> None:
        if self.img_size % self.patch_size or self.num_frames % self.tubelet:
            raise ValueError(
                f"img_size {self.img_size} must be a multiple of patch_size {self.patch_size} and "
                f"num_frames {self.num_frames} of tubelet {self.tubelet}"
            )

    @property
    def num_tokens(self) -> int:
        """cls + (T / tubelet) * (H / patch) * (W / patch)."""
        return 1 + (self.num_frames // self.tubelet) * (self.img_size // self.patch_size) ** 2

    def to_dict(self) -> dict:
        return asdict(self)


# VideoMamba-Ti / S / M of the paper (192x24, 384x24, 576x32), a narrow shallow one for CPU budgets, and a tiny
# one for tests.
VIDEOMAMBA_CONFIGS: dict[str, VideoMambaConfig] = {
    "tiny": VideoMambaConfig(img_size=32, patch_size=8, num_frames=4, dim=32, depth=2, d_state=8),
    "micro": VideoMambaConfig(dim=96, depth=6),
    "ti": VideoMambaConfig(dim=192, depth=24),
    "s": VideoMambaConfig(dim=384, depth=24),
    "m": VideoMambaConfig(dim=576, depth=32),
}


def videomamba_config(name: str, **overrides) -> VideoMambaConfig:
    """A named config with fields replaced, e.g. ``videomamba_config("ti", img_size=112, num_frames=8)``."""
    if name not in VIDEOMAMBA_CONFIGS:
        raise ValueError(f"unknown VideoMamba config {name!r}; choose one of {sorted(VIDEOMAMBA_CONFIGS)}")
    return replace(VIDEOMAMBA_CONFIGS[name], **overrides)


class MambaDirection(nn.Module):
    """The per-direction half of a Mamba mixer: causal depthwise conv, input-dependent (delta, B, C), the scan."""

    def __init__(self, inner: int, d_state: int, d_conv: int, dt_rank: int, scan_backend: str = "auto") -> None:
        super().__init__()
        self.d_state, self.dt_rank, self.scan_backend = d_state, dt_rank, scan_backend
        self.conv1d = nn.Conv1d(inner, inner, d_conv, groups=inner, padding=d_conv - 1)
        self.x_proj = nn.Linear(inner, dt_rank + 2 * d_state, bias=False)
        self.dt_proj = nn.Linear(dt_rank, inner)
        # Mamba's init: dt log-uniform in [1e-3, 1e-1] through the softplus; A = -(1..n) per channel.
        nn.init.uniform_(self.dt_proj.weight, -(dt_rank**-0.5), dt_rank**-0.5)
        dt = torch.exp(torch.rand(inner) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3)).clamp(min=1e-4)
        with torch.no_grad():
            self.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.arange(1, d_state + 1, dtype=torch.float32)).repeat(inner, 1))
        self.D = nn.Parameter(torch.ones(inner))

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """x, z (B, E, L) -> y (B, E, L); y_t depends on x_1..x_t only."""
        length = x.shape[-1]
        x = F.silu(self.conv1d(x)[..., :length])  # causal: drop the right padding
        dt, B, C = self.x_proj(x.transpose(1, 2)).split([self.dt_rank, self.d_state, self.d_state], dim=-1)
        delta = (dt @ self.dt_proj.weight.t()).transpose(1, 2)  # (B, E, L); the bias goes in as delta_bias
        return selective_scan(
            x,
            delta,
            -torch.exp(self.A_log.float()),
            B.transpose(1, 2).contiguous(),  # (B, n, L)
            C.transpose(1, 2).contiguous(),
            self.D.float(),
            z=z,
            delta_bias=self.dt_proj.bias.float(),
            delta_softplus=True,
            backend=self.scan_backend,
        )


class BiMamba(nn.Module):
    """Bidirectional Mamba mixer: shared in/out projections, a forward and a backward ``MambaDirection``."""

    def __init__(self, dim: int, d_state: int, d_conv: int, expand: int, dt_rank: int, scan_backend: str) -> None:
        super().__init__()
        inner = expand * dim
        self.in_proj = nn.Linear(dim, 2 * inner, bias=False)
        self.forward_scan = MambaDirection(inner, d_state, d_conv, dt_rank, scan_backend)
        self.backward_scan = MambaDirection(inner, d_state, d_conv, dt_rank, scan_backend)
        self.out_proj = nn.Linear(inner, dim, bias=False)

    def directions(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h (B, L, dim) -> (y_forward, y_backward), each (B, E, L) in sequence order; y_backward is anti-causal."""
        x, z = self.in_proj(h).transpose(1, 2).chunk(2, dim=1)  # (B, E, L) each
        y_forward = self.forward_scan(x, z)
        y_backward = self.backward_scan(x.flip(-1), z.flip(-1)).flip(-1)
        return y_forward, y_backward

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """(B, L, dim) -> (B, L, dim)."""
        y_forward, y_backward = self.directions(h)
        return self.out_proj((y_forward + y_backward).transpose(1, 2))


class MambaBlock(nn.Module):
    """Pre-norm residual block: x + BiMamba(RMSNorm(x)), with the residual stream kept in fp32."""

    def __init__(self, config: VideoMambaConfig) -> None:
        super().__init__()
        dt_rank = config.dt_rank or math.ceil(config.dim / 16)
        self.norm = nn.RMSNorm(config.dim, eps=1e-5)
        self.mixer = BiMamba(config.dim, config.d_state, config.d_conv, config.expand, dt_rank, config.scan_backend)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mixer(self.norm(x)).float()


class VideoMamba(nn.Module):
    """Video tower: clips (B, T, C, H, W) -> cls features (B, dim)."""

    def __init__(self, config: VideoMambaConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        patch = (c.tubelet, c.patch_size, c.patch_size)
        self.patch_embed = nn.Conv3d(c.in_chans, c.dim, kernel_size=patch, stride=patch)
        patches = (c.img_size // c.patch_size) ** 2
        self.cls_token = nn.Parameter(torch.zeros(1, 1, c.dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + patches, c.dim))  # spatial, shared by all frames
        self.temporal_pos_embed = nn.Parameter(torch.zeros(1, c.num_frames // c.tubelet, 1, c.dim))
        for p in (self.cls_token, self.pos_embed, self.temporal_pos_embed):
            nn.init.trunc_normal_(p, std=0.02)
        self.blocks = nn.ModuleList(MambaBlock(c) for _ in range(c.depth))
        self.norm_f = nn.RMSNorm(c.dim, eps=1e-5)

    @property
    def out_dim(self) -> int:
        return self.config.dim

    def tokens(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> embedded tokens (B, 1 + T' H' W', dim), frame-major, cls first."""
        c = self.config
        if video.dim() != 5 or video.shape[1:] != (c.num_frames, c.in_chans, c.img_size, c.img_size):
            want = (c.num_frames, c.in_chans, c.img_size, c.img_size)
            raise ValueError(f"VideoMamba expects clips (B, {', '.join(map(str, want))}); got {tuple(video.shape)}")
        x = self.patch_embed(video.transpose(1, 2))  # (B, dim, T', H', W')
        x = x.flatten(3).permute(0, 2, 3, 1)  # (B, T', H'W', dim)
        x = x + self.pos_embed[:, 1:].unsqueeze(1) + self.temporal_pos_embed
        cls = (self.cls_token + self.pos_embed[:, :1]).expand(x.shape[0], -1, -1)  # (B, 1, dim)
        return torch.cat([cls, x.flatten(1, 2)], dim=1)

    def sequence(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> every token after the last block, normalised: (B, 1 + T' H' W', dim)."""
        x = self.tokens(video).float()
        for block in self.blocks:
            if self.config.grad_checkpoint and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return self.norm_f(x)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) -> (B, dim): the cls token, first in the sequence as in the reference.

        So the last block's forward direction reads the cls token alone and its A_log gets no gradient from this
        output (the state it decays is still zero); every other parameter does.
        """
        return self.sequence(video)[:, 0]


class VideoMambaClassifier(nn.Module):
    """VideoMamba with a linear head: clips (B, T, C, H, W) -> logits (B, num_classes)."""

    def __init__(self, config: VideoMambaConfig, num_classes: int) -> None:
        super().__init__()
        self.backbone = VideoMamba(config)
        self.head = nn.Linear(config.dim, num_classes)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(video))


class MambaVideoEncoder(nn.Module):
    """VideoMamba as a video encoder: ``prefix`` normalises frames, ``suffix`` (B, N, 3, H, W) -> (B, embed_dim).

    The whole backbone trains, so nothing is cached; every one of the N frame slots must hold a frame (shots with
    fewer drawings repeat them), because the model reads a fixed-length token sequence.
    """

    cached = False

    def __init__(self, config: VideoMambaConfig, embed_dim: int) -> None:
        super().__init__()
        self.backbone = VideoMamba(config)
        self.projection = nn.Linear(config.dim, embed_dim)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406])[:, None, None], persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225])[:, None, None], persistent=False)

    def prefix(self, frames: torch.Tensor) -> torch.Tensor:
        """(M, 3, H, W) uint8 or float in [0, 1] -> normalised float frames."""
        if frames.dtype == torch.uint8:
            frames = frames.float() / 255.0
        return (frames - self.mean) / self.std

    def suffix(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if not bool(mask.all()):
            raise ValueError("VideoMamba reads every frame slot: fill short shots by repeating drawings, not masks")
        return self.projection(self.backbone(h))

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # frames (B, N, 3, H, W)
        return self.suffix(self.prefix(frames.flatten(0, 1)).view(frames.shape), mask)
