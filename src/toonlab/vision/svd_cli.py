"""The SVD side of `toonlab vision train svd` and `toonlab vision eval`."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

console = Console(stderr=True)


def train_svd_run(
    data: Path,
    svd_dir: Path | None,
    out: Path,
    *,
    steps: int,
    frames: int | None,
    size: int | None,
    stride: int,
    batch_size: int | None,
    lr: float | None,
    temporal_only: bool,
    cond_drop: float,
    grad_checkpoint: bool,
    checkpoint_every: int,
    device: str,
    seed: int,
) -> dict:
    """``toonlab vision train svd``: validate the options, then train or resume; the last metrics row."""
    from toonlab.vision.svd_train import SVDTrainConfig, train_svd

    if svd_dir is None:
        raise ValueError("train svd needs --svd-dir (a local SVD directory; `toonlab vision tiny-svd DIR` makes one)")
    frames, size, batch_size = frames or 14, size or 256, batch_size or 1
    if steps < 1 or frames < 2 or stride < 1 or batch_size < 1 or checkpoint_every < 1:
        raise ValueError("--steps, --stride, --batch-size, --eval-every must be >= 1 and --frames >= 2")
    if size < 16 or size % 16:
        raise ValueError(f"svd: --size must be a multiple of 16, got {size}")
    config = SVDTrainConfig(
        data=str(data), svd_dir=str(svd_dir), frames=frames, size=(size, size), stride=stride, batch_size=batch_size,
        steps=steps, lr=1e-5 if lr is None else lr, temporal_only=temporal_only, cond_drop=cond_drop,
        grad_checkpoint=grad_checkpoint, checkpoint_every=checkpoint_every, seed=seed, device=device,
    )  # fmt: skip
    return train_svd(config, out, log=lambda row: console.print(json.dumps(row)) if row["step"] % 10 == 0 else None)


def is_svd_run(run: Path) -> bool:
    config = Path(run) / "config.json"
    return config.exists() and json.loads(config.read_text()).get("task") == "svd"


def eval_svd_run(
    run: Path, data: Path | None, split: str, max_clips: int, generate: int, steps: int, device: str
) -> dict:
    """``toonlab vision eval`` of an SVD run: fixed-grid denoising loss (fine-tuned vs base), optional timing."""
    from toonlab.vision.svd import load_unet
    from toonlab.vision.svd_eval import generated_timing, heldout_loss
    from toonlab.vision.svd_train import load_run

    config, parts = load_run(run)
    if data is not None:
        config.data = str(data)
    parts.to(device)
    base = load_unet(Path(config.svd_dir) / "unet").to(device)
    result = {"denoising": heldout_loss(parts, {"finetuned": parts.unet, "base": base}, config, split, max_clips)}
    if generate:
        result["timing"] = generated_timing(parts, config, split, generate, steps)
    (Path(run) / f"eval-{split}.json").write_text(json.dumps(result, indent=2))
    return result
