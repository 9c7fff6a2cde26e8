"""Fine-tune SVD on the shots of a curated dataset (``toonlab vision train svd``), resumable in chunks.

Each training clip is a shot's first ``frames`` frames as they were on screen (every ``stride``-th frame), rebuilt
from its keyframes: frame t shows the last unique drawing at or before t, so holds on twos and threes survive.
The clip is conditioned on its first keyframe, on fps = shot fps / stride and on a motion bucket
``round(motion_score * scale)`` clipped to 0..255, where ``scale`` puts the training set's median motion at SVD's
default bucket 127 (recorded in the run's config; shots without a motion score get 127).

Run folder: ``config.json``; ``ckpt-<step>/`` (``unet/`` in diffusers' layout + ``state.pt``: optimizer, step,
generator), each written under a temporary name and renamed, the newest two kept; ``metrics.jsonl``.
"""

from __future__ import annotations

import bisect
import json
import shutil
import statistics
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from toonlab.curate.sidecar import metadata_files, read_shard
from toonlab.vision.svd import SVDBatch, SVDParts, check_svd_dir, load_svd, select_trainable, training_loss

DEFAULT_BUCKET = 127
KEEP_CHECKPOINTS = 2


@dataclass(frozen=True)
class ScreenFrames:
    """Positions into a shot's keyframes of the drawing on screen at start, start + stride, ... (n of them)."""

    n: int
    stride: int = 1

    def __call__(self, keyframes: Sequence[int], end: int) -> list[int]:
        start = keyframes[0]
        return [bisect.bisect_right(keyframes, min(start + i * self.stride, end - 1)) - 1 for i in range(self.n)]


@dataclass
class SVDTrainConfig:
    """A fine-tuning run. ``steps`` is the total: rerun with a larger one to continue."""

    data: str
    svd_dir: str
    frames: int = 14
    size: tuple[int, int] = (256, 256)  # (H, W), multiples of size_multiple(parts)
    stride: int = 1
    batch_size: int = 1
    steps: int = 1000
    lr: float = 1e-5
    weight_decay: float = 1e-2
    temporal_only: bool = False
    cond_drop: float = 0.1
    grad_clip: float = 1.0
    grad_checkpoint: bool = False
    checkpoint_every: int = 100
    seed: int = 0
    device: str = "cpu"
    motion_scale: float | None = None  # set from the training rows at the first start
    task: str = field(default="svd", init=False)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> SVDTrainConfig:
        values = json.loads(text)
        values.pop("task", None)
        values["size"] = tuple(values["size"])
        return cls(**values)


def dataset_rows(data: Path | str, split: str | None) -> list[dict]:
    """Metadata rows joined with sidecars, of one split (or all rows when ``split`` is None)."""
    rows = [row for meta in metadata_files(Path(data)) for row in read_shard(Path(data), meta).to_pylist()]
    if split is None:
        return rows
    if rows and "split" not in rows[0]:
        raise ValueError(f"{data} has no split column: run `toonlab split {data}` first")
    return [row for row in rows if row.get("split") == split]


def motion_scale(rows: list[dict]) -> float:
    """Scale that maps the median motion score of ``rows`` to bucket 127 (1.0 when none has motion)."""
    scores = [row["motion_score"] for row in rows if row.get("motion_score")]
    return DEFAULT_BUCKET / statistics.median(scores) if scores else 1.0


def motion_bucket(row: dict, scale: float) -> int:
    score = row.get("motion_score")
    return DEFAULT_BUCKET if score is None else int(min(255, max(0, round(score * scale))))


def to_batch(samples: dict, config: SVDTrainConfig, device: torch.device) -> SVDBatch:
    """A collated KeyframeDataset batch -> SVDBatch on ``device``: frames (B, F, 3, H, W) in [-1, 1]."""
    rows = samples["row"]
    return SVDBatch(
        frames=(samples["frames"].to(device).float() / 127.5 - 1),
        fps=torch.tensor([float(r.get("fps") or 24.0) / config.stride for r in rows], device=device),
        motion_bucket=torch.tensor([motion_bucket(r, config.motion_scale) for r in rows], device=device),
    )


def clip_loader(config: SVDTrainConfig, split: str, shuffle_seed: int | None = None):
    """DataLoader over a split's shots as screen-frame clips (``collate`` batches)."""
    from toonlab.curate.readers.dataset import KeyframeDataset, collate

    dataset = KeyframeDataset(
        config.data, ScreenFrames(config.frames, config.stride), config.size, where=lambda r: r.get("split") == split
    )
    return torch.utils.data.DataLoader(dataset, batch_size=config.batch_size, collate_fn=collate)


def checkpoints(run: Path) -> list[Path]:
    """Complete checkpoints of a run, oldest first (a torn ``.tmp`` folder is not one)."""
    return sorted(p for p in run.glob("ckpt-*") if p.is_dir() and (p / "state.pt").exists())


def save_checkpoint(run: Path, parts: SVDParts, opt: torch.optim.Optimizer, step: int, generator) -> Path:
    final = run / f"ckpt-{step:07d}"
    tmp = run / f".ckpt-{step:07d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    parts.unet.save_pretrained(tmp / "unet", safe_serialization=True)
    state = {"step": step, "optimizer": opt.state_dict(), "generator": generator.get_state()}
    torch.save(state, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    for old in checkpoints(run)[:-KEEP_CHECKPOINTS]:
        shutil.rmtree(old)
    return final


def size_multiple(parts: SVDParts) -> int:
    """Frame sides must divide by the VAE's downsampling times the UNet's (2 per block after the first)."""
    vae = 2 ** (len(parts.vae.config.block_out_channels) - 1)
    return vae * 2 ** (len(parts.unet.config.down_block_types) - 1)


def _cycle(loader) -> Iterator[dict]:
    while True:
        empty = True
        for batch in loader:
            empty = False
            yield batch
        if empty:
            raise ValueError("no training clips: the train split is empty")


def _start(run: Path, config: SVDTrainConfig) -> SVDTrainConfig:
    """Write the run's config at the first start; later starts keep it but for the step budget and device."""
    path = run / "config.json"
    if path.exists():
        saved = SVDTrainConfig.from_json(path.read_text())
        if (saved.data, saved.svd_dir) != (config.data, config.svd_dir):
            raise ValueError(f"{run} was trained on {saved.data} from {saved.svd_dir}: use a new --out")
        saved.steps, saved.device = config.steps, config.device
        config = saved
    elif config.motion_scale is None:
        config.motion_scale = motion_scale(dataset_rows(config.data, "train"))
    run.mkdir(parents=True, exist_ok=True)
    path.write_text(config.to_json())
    return config


def train_svd(config: SVDTrainConfig, run: Path | str, log: Callable[[dict], None] = print) -> dict:
    """Train (or resume) to ``config.steps`` steps; returns the last metrics row."""
    run = Path(run)
    check_svd_dir(config.svd_dir)  # before the run folder is made
    config = _start(run, config)
    device = torch.device(config.device)
    done = checkpoints(run)
    parts = load_svd(config.svd_dir, unet_dir=done[-1] / "unet" if done else None).to(device)
    multiple = size_multiple(parts)
    if config.size[0] % multiple or config.size[1] % multiple:
        raise ValueError(f"this SVD needs frame sides that are multiples of {multiple}, got {config.size}")
    for frozen in (parts.vae, parts.image_encoder):
        frozen.eval().requires_grad_(False)
    if config.grad_checkpoint:
        parts.unet.enable_gradient_checkpointing()
    params = select_trainable(parts.unet, config.temporal_only)
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    generator, step = torch.Generator().manual_seed(config.seed), 0
    if done:
        state = torch.load(done[-1] / "state.pt", map_location=device, weights_only=True)
        opt.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step = state["step"]
    batches = _cycle(clip_loader(config, "train"))
    row: dict = {"step": step}
    parts.unet.train()
    with (run / "metrics.jsonl").open("a") as metrics:
        while step < config.steps:
            batch = to_batch(next(batches), config, device)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
                loss = training_loss(parts, batch, generator, config.cond_drop)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            norm = torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            opt.step()
            step += 1
            row = {"step": step, "loss": loss.item(), "grad_norm": float(norm)}
            metrics.write(json.dumps(row) + "\n")
            metrics.flush()
            log(row)
            if step % config.checkpoint_every == 0 or step == config.steps:
                save_checkpoint(run, parts, opt, step, generator)
    return row


def load_run(run: Path | str) -> tuple[SVDTrainConfig, SVDParts]:
    """A run's config and its parts with the newest fine-tuned UNet."""
    run = Path(run)
    config_path = run / "config.json"
    if not config_path.exists():
        raise FileNotFoundError(f"{run} has no config.json: not a `toonlab vision train svd` run")
    config = SVDTrainConfig.from_json(config_path.read_text())
    done = checkpoints(run)
    if not done:
        raise FileNotFoundError(f"{run} has no complete checkpoint yet")
    return config, load_svd(config.svd_dir, unet_dir=done[-1] / "unet")
