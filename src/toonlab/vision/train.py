"""The one training loop for every task (retrieval, classify, and any task registered in tasks.TASKS).

Read top to bottom: place the process (CPU, CUDA, or a `torchrun` rank with gloo / NCCL), load the train and
val splits, build the task's model from its `ModelConfig`, restore `RUN/checkpoint.pt` when present, cache
the frozen towers' outputs, then step: a global batch drawn from (seed, step) so a resumed run draws the same
batches, each rank taking its slice; bf16 autocast on CUDA; AdamW with warm-up and cosine decay, pretrained
tower layers at `tower_lr`. Every `eval_every` steps and at the end: val metrics; a checkpoint then and every
`checkpoint_every` steps.

Run folder: `checkpoint.pt` (configs, class names, trained weights, optimizer, step; loads with
`weights_only=True`; the frozen layers of shipped pretrained towers are not stored, they reload from their
package), `metrics.jsonl` (one line per logged step and per evaluation), `config.json`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from torch import nn

from toonlab.vision.data import ShotSet, load_shots
from toonlab.vision.models import ModelConfig
from toonlab.vision.tasks import ClassifyTask, Task, build_task, unwrap
from toonlab.vision.towers import SplitTower

FORMAT = 1
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


@dataclass(frozen=True)
class TrainConfig:
    task: str = "retrieval"
    steps: int = 300
    batch_size: int = 32  # global, over all ranks
    lr: float = 1e-3
    tower_lr: float = 1e-4  # pretrained tower layers being fine-tuned
    weight_decay: float = 0.05
    warmup: int = 20
    seed: int = 0
    eval_every: int = 100
    checkpoint_every: int = 50  # also at every evaluation
    log_every: int = 10
    caption_column: str = "caption"
    labels: tuple[str, ...] = ()  # classify: label columns
    sampler: str = "hold"
    limit: int | None = None  # at most this many shots per split

    def to_dict(self) -> dict:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        if set(data) - known:
            raise ValueError(f"unknown train config fields: {sorted(set(data) - known)}")
        return cls(**{**data, "labels": tuple(data.get("labels", ()))})


def place(device: str) -> tuple[torch.device, int, int]:
    """(device, rank, world size). Under torchrun (WORLD_SIZE > 1) joins the process group: NCCL on CUDA, else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda asked for, but torch sees no CUDA device")
    dist = torch.distributed
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local), rank, world
    return torch.device(device), rank, world


def leave() -> None:
    """Leave the process group `place` joined, if any, once every rank is here: a rank that tears its gloo pairs
    down while a peer still talks to them makes that peer abort ("terminate called without an active exception")."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def feature_key(config: ModelConfig, seed: int, task: str) -> dict:
    """What a frozen prefix's output depends on: the towers (their cut joins later), and for randomly initialised
    towers the seed and the task (the model the task builds decides the order of the random draws)."""
    trained_only = {"pooling", "embed_dim", "temporal_layers", "heads", "frame_mode", "text_mode", "temperature"}
    towers = {k: v for k, v in config.to_dict().items() if k not in trained_only}
    return {"towers": towers, "seed": None if config.pretrained else f"{task}:{seed}"}


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The state dict without the frozen stages of towers whose weights ship in a package."""
    skip = _reloadable_prefixes(model)
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith(skip)}


def _reloadable_prefixes(model: nn.Module) -> tuple[str, ...]:
    prefixes = []
    for name, module in model.named_modules():
        if isinstance(module, SplitTower) and module.reloadable:
            prefixes += [f"{name}.stages.{i}." for i in range(module.cut)]
    return tuple(prefixes)


def load_trainable(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing, unexpected = model.load_state_dict(state, strict=False)
    skip = _reloadable_prefixes(model)
    really_missing = [k for k in missing if not k.startswith(skip)]
    if really_missing or unexpected:
        raise ValueError(
            f"checkpoint does not fit the model: missing {really_missing[:5]}, unexpected {unexpected[:5]}"
        )


def save_checkpoint(path: Path, payload: dict) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)


def read_checkpoint(path: Path | str) -> dict:
    """A run folder or checkpoint file -> its payload (read with weights_only=True)."""
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a torn or foreign file
        raise ValueError(f"{path}: not a readable toonlab vision checkpoint ({exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a toonlab vision checkpoint (format {FORMAT})")
    return payload


def restore(payload: dict) -> tuple[Task, nn.Module, ModelConfig, TrainConfig]:
    """Rebuild task and model from a checkpoint payload and load its weights."""
    model_config = ModelConfig.from_dict(payload["model_config"])
    train_config = TrainConfig.from_dict(payload["train_config"])
    task = build_task(train_config.task, **payload["task_state"])
    torch.manual_seed(train_config.seed)
    model = task.build(model_config)
    load_trainable(model, payload["model"])
    return task, model, model_config, train_config


def _optimizer(model: nn.Module, tc: TrainConfig) -> torch.optim.Optimizer:
    groups: dict[tuple[float, float], list] = {}
    reloadable = _tower_parameter_ids(model)
    for p in model.parameters():
        if p.requires_grad:
            lr = tc.tower_lr if id(p) in reloadable else tc.lr
            groups.setdefault((lr, tc.weight_decay if p.ndim >= 2 else 0.0), []).append(p)
    return torch.optim.AdamW(
        [{"params": ps, "lr": lr, "base_lr": lr, "weight_decay": wd} for (lr, wd), ps in groups.items()]
    )


def _tower_parameter_ids(model: nn.Module) -> set[int]:
    return {id(p) for m in model.modules() if isinstance(m, SplitTower) and m.reloadable for p in m.parameters()}


def lr_factor(step: int, tc: TrainConfig) -> float:
    if step < tc.warmup:
        return (step + 1) / tc.warmup
    progress = (step - tc.warmup) / max(1, tc.steps - tc.warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _log(out: Path, rank: int, record: dict) -> None:
    if rank == 0:
        with open(out / METRICS, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def train(
    data: Path | str,
    out: Path | str,
    model_config: ModelConfig,
    tc: TrainConfig,
    device: str = "cpu",
    cache_dir: Path | str | None = None,
    on_step: Callable[[int, int, float], None] | None = None,
    shots: dict[str, ShotSet] | None = None,
) -> dict[str, Any]:
    """Train (or resume) the run in `out`; returns the final val metrics. `shots` may pass preloaded splits."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev, rank, world = place(device)
    cache = None if cache_dir is None else Path(cache_dir)
    labels = tc.labels if tc.task == "classify" else ()
    shots = shots or {
        s: load_shots(
            data, s, model_config.n_frames, model_config.size, tc.caption_column, labels, tc.sampler, cache, tc.limit
        )
        for s in ("train", "val")
    }
    payload = read_checkpoint(out) if (out / CHECKPOINT).exists() else None
    if payload is not None:
        task, model, _, _ = restore(payload)
    else:
        task = build_task(tc.task, labels=labels)
        if isinstance(task, ClassifyTask):
            task.fit_classes(shots["train"])
        torch.manual_seed(tc.seed)
        model = task.build(model_config)
    model.to(dev)
    (out / "config.json").write_text(json.dumps({"model": model_config.to_dict(), "train": tc.to_dict()}, indent=2))
    key = feature_key(model_config, tc.seed, tc.task)
    prepared = {s: task.prepare(model, shots[s], dev, cache, key) for s in shots}
    optimizer = _optimizer(model, tc)
    step, seconds = 0, 0.0
    if payload is not None:
        optimizer.load_state_dict(payload["optimizer"])
        step, seconds = payload["step"], payload["train_seconds"]
    wrapped = nn.parallel.DistributedDataParallel(model) if world > 1 else model
    n_train = len(shots["train"])
    batch = min(tc.batch_size, n_train) // world * world
    if batch == 0:
        raise ValueError(f"batch of {tc.batch_size} over {world} ranks with {n_train} train shots is empty")
    metrics: dict[str, Any] = {}
    started = time.monotonic()
    while step < tc.steps:
        wrapped.train()
        gen = torch.Generator().manual_seed(tc.seed * 1_000_003 + step)
        idx = torch.randperm(n_train, generator=gen)[:batch][rank::world]  # this rank's slice of the global batch
        torch.manual_seed(tc.seed * 1_000_003 + step + 1)  # dropout, reproducible on resume
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(step, tc)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            loss = task.loss(wrapped, prepared["train"], idx, dev, gen)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        step, value = step + 1, loss.item()
        if on_step is not None and rank == 0:
            on_step(step, tc.steps, value)
        if step % tc.log_every == 0:
            _log(out, rank, {"step": step, "loss": value, "lr": optimizer.param_groups[0]["lr"]})
        evaluate = step % tc.eval_every == 0 or step == tc.steps
        if evaluate:
            metrics, _ = task.evaluate(unwrap(wrapped), prepared["val"], dev)
            _log(out, rank, {"step": step, "split": "val", **metrics})
        if (evaluate or step % tc.checkpoint_every == 0) and rank == 0:
            state = {"model": trainable_state(model), "optimizer": optimizer.state_dict(), "step": step}
            elapsed = seconds + time.monotonic() - started
            save_checkpoint(out / CHECKPOINT, _payload(task, model_config, tc, state, elapsed))
    if not metrics and payload is not None:  # resumed a finished run
        metrics, _ = task.evaluate(model, prepared["val"], dev)
    return metrics


def _payload(task: Task, model_config: ModelConfig, tc: TrainConfig, state: dict, seconds: float) -> dict:
    return {
        "format": FORMAT,
        "task_state": task.state(),
        "model_config": model_config.to_dict(),
        "train_config": tc.to_dict(),
        "train_seconds": float(seconds),
        **state,
    }
