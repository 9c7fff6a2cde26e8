"""Training loop behind `toonlab tts train`: cached features, length-bucketed batches assembled in DataLoader
workers, intercross references, held-out validation averaged over many batches, resumable checkpoints, on CPU
or CUDA (bf16 autocast), with DDP (NCCL on GPU, gloo on CPU) when launched by `torchrun` (WORLD_SIZE set).

Run folder: `checkpoint.pt` (latest), `metrics.jsonl` (train and validation rows), `alignments/step_NNNNNN.png`,
`summary.json`. A non-finite loss or gradient stops training with `NonFiniteLoss` naming the batch's
utterances; the checkpoint on disk is the last finite one.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from toonlab.io import cpu_share
from toonlab.tts.batching import BucketBatchSampler, Collator, build_sampler
from toonlab.tts.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from toonlab.tts.configs import Config
from toonlab.tts.device import Dist, autocast, init_distributed, resolve_device
from toonlab.tts.model import Batch, MultiReferenceTTS, build_model, load_weights
from toonlab.tts.tacotron import num_parameters
from toonlab.tts.training_data import TrainingData, load_training_data
from toonlab.tts.validation import validate, validation_batches

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


class NonFiniteLoss(RuntimeError):
    """A training step produced a NaN/inf loss or gradient; nothing of that step was saved."""


class Monitor(Protocol):
    """Receives progress: `start` once, `update` after every step, `message` for notable events."""

    def start(self, total: int, done: int) -> None: ...

    def update(self, step: int, row: dict[str, Any]) -> None: ...

    def message(self, text: str) -> None: ...


class PrintMonitor:
    """Plain lines every `every` steps (the command line uses a progress bar instead)."""

    def __init__(self, every: int = 50, out: Callable[[str], None] = print) -> None:
        self.every, self.out = every, out

    def start(self, total: int, done: int) -> None:
        self.out(f"training to step {total} (from {done})")

    def update(self, step: int, row: dict[str, Any]) -> None:
        if step % self.every == 0:
            self.out(f"step {step}: loss {row['total']:.3f} mel {row['mel_post']:.3f} ({row['seconds']:.2f} s/step)")

    def message(self, text: str) -> None:
        self.out(text)


def learning_rate(config: Config, step: int) -> float:
    """Exponential decay from lr to lr_final over lr_decay_steps, then flat."""
    t = config.train
    return t.lr * (t.lr_final / t.lr) ** (min(step, t.lr_decay_steps) / t.lr_decay_steps)


@dataclass
class Trainer:
    """One run's model, optimizer, data and position."""

    config: Config
    data: TrainingData
    model: MultiReferenceTTS
    optimizer: torch.optim.Optimizer
    d: Dist
    out: Path
    step: int = 0
    seconds_before: float = 0.0

    def __post_init__(self) -> None:
        self.start_time = time.time()
        ids = [self.d.device.index] if self.d.device.type == "cuda" else None
        self.ddp = torch.nn.parallel.DistributedDataParallel(self.model, device_ids=ids) if self.d.world > 1 else None

    def save(self) -> None:
        if self.d.main:
            elapsed = self.seconds_before + time.time() - self.start_time
            ckpt = Checkpoint(self.config, self.data.table.symbols, self.data.classes, self.model.state_dict(),
                              self.optimizer.state_dict(), self.step, elapsed)  # fmt: skip
            save_checkpoint(self.out / CHECKPOINT, ckpt)

    def train_step(self, batch: Batch) -> dict[str, Any]:
        """Forward, backward, clip and update; raises NonFiniteLoss (before the update) on NaN/inf."""
        t0 = time.time()
        batch = batch.to(self.d.device)
        for g in self.optimizer.param_groups:
            g["lr"] = learning_rate(self.config, self.step)
        with autocast(self.d.device):
            _, _, losses = (self.ddp or self.model)(batch, self.step)
        self.optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
        finite = bool(torch.isfinite(losses["total"])) and bool(torch.isfinite(grad_norm))
        if not self.d.all_true(finite):
            bad = {k: float(v.detach()) for k, v in losses.items() if not torch.isfinite(v)}
            where = f"in batch {batch.ids}" if not finite else "on another rank"
            raise NonFiniteLoss(
                f"step {self.step + 1}: non-finite loss or gradient {where} (terms {bad or 'finite'}, gradient norm "
                f"{float(grad_norm):.3g}); training stopped, {self.out / CHECKPOINT} holds the last finite step"
            )
        self.optimizer.step()
        self.step += 1
        row = {k: round(float(v.detach()), 5) for k, v in losses.items()}
        row.update(
            step=self.step, kind="train", grad_norm=round(float(grad_norm), 4), seconds=round(time.time() - t0, 3)
        )
        return row


def _build_trainer(
    corpus_dir: Path, config: Config, out: Path, resume: bool, cache_dir: Path | None, d: Dist, workers: int,
    monitor: Monitor,
) -> Trainer:  # fmt: skip
    ckpt: Checkpoint | None = None
    if resume and (out / CHECKPOINT).exists():
        ckpt = load_checkpoint(out / CHECKPOINT)
        config = ckpt.config
        if d.main:
            monitor.message(f"resuming {out / CHECKPOINT} at step {ckpt.step} (config {config.name!r} from it)")
    data = load_training_data(corpus_dir, config, ckpt, cache_dir, d, workers, monitor.message)
    torch.manual_seed(config.train.seed)
    model = build_model(config, len(data.table), data.classes)
    if ckpt is None and config.backbone == "fastspeech":
        model.backbone.set_statistics(*data.pitch_energy)
    model.to(d.device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    trainer = Trainer(config, data, model, optimizer, d, out)
    if ckpt:
        load_weights(model, ckpt.model)
        optimizer.load_state_dict(ckpt.optimizer)
        trainer.step, trainer.seconds_before = ckpt.step, ckpt.train_seconds
    return trainer


def _loader(trainer: Trainer, workers: int) -> tuple[DataLoader, BucketBatchSampler]:
    cfg, d, ex = trainer.config, trainer.d, trainer.data.train
    sampler = BucketBatchSampler([len(e.mel) for e in ex], cfg.train.batch_size, d.rank, d.world, cfg.train.seed)
    if sampler.batches_per_epoch() == 0:
        raise ValueError(f"{len(ex)} training utterances make no batch of 2 or more per rank (world {d.world})")
    collator = Collator(ex, build_sampler(cfg, ex, trainer.data.classes), cfg, seed=cfg.train.seed * 7919 + d.rank)
    loader = DataLoader(
        range(len(ex)), batch_sampler=sampler, collate_fn=collator, num_workers=workers,
        pin_memory=d.device.type == "cuda",
    )  # fmt: skip
    return loader, sampler


def _validation_row(trainer: Trainer, batches: list[Batch], monitor: Monitor) -> dict[str, Any]:
    row: dict[str, Any] = validate(trainer.model, batches, trainer.step, trainer.d.device, trainer.out / "alignments")
    row.update(step=trainer.step, kind="val", minutes=round((time.time() - trainer.start_time) / 60, 2))
    monitor.message(
        f"val step {trainer.step} ({row['val_utterances']} held-out utterances): mel L1 {row['val_mel_post']:.4f}, "
        f"diagonality teacher-forced {row['val_tf_diagonality']:.3f} / free {row['val_free_diagonality']:.3f}, "
        f"free length ratio {row['val_free_length_ratio']:.2f} -> {row.get('plot')}"
    )
    return row


def train(
    corpus_dir: Path,
    config: Config,
    out: Path,
    steps: int | None = None,
    resume: bool = False,
    cache_dir: Path | None = None,
    threads: int | None = None,
    stop_when_aligned: float | None = None,
    device: str = "cpu",
    workers: int | None = None,
    monitor: Monitor | None = None,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run; returns the last validation metrics and summary figures. `max_minutes` bounds
    this session's wall time: the run then validates, saves and returns (resume it later)."""
    began = time.time()  # the wall-time budget counts feature computation too
    d = init_distributed(resolve_device(device))
    monitor = monitor or PrintMonitor()
    torch.set_num_threads(threads or cpu_share(d.local_world))  # this node's CPUs shared among its ranks
    workers = config.train.workers if workers is None else workers
    out.mkdir(parents=True, exist_ok=True)
    trainer = _build_trainer(corpus_dir, config, out, resume, cache_dir, d, workers, monitor)
    config, data = trainer.config, trainer.data
    total = steps if steps is not None else config.train.steps
    loader, sampler = _loader(trainer, workers)
    collator = Collator(data.test, build_sampler(config, data.test, data.classes), config)
    val_batches = validation_batches(data.test, collator, config.train.val_utterances, config.train.batch_size)
    if d.main:
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        monitor.message(
            f"config {config.name!r} ({config.backbone}): {num_parameters(trainer.model) / 1e6:.2f} M parameters, "
            f"{len(data.train)} training / {len(data.test)} held-out utterances, {len(data.table)} symbols, batch "
            f"{config.train.batch_size} x {d.world}, {torch.get_num_threads()} threads, device {d.device}"
        )
        monitor.start(total, trainer.step)
    deadline = began + 60 * max_minutes if max_minutes is not None else None
    with _stop_on_sigterm() as interrupt:
        last_val = _loop(trainer, loader, sampler, val_batches, total, stop_when_aligned, monitor, deadline, interrupt)
    summary = {
        "steps": trainer.step,
        "steps_this_run": trainer.step - last_val.pop("start_step"),
        "minutes": round((time.time() - trainer.start_time) / 60, 2),
        "minutes_total": round((trainer.seconds_before + time.time() - trainer.start_time) / 60, 2),
        "parameters": num_parameters(trainer.model),
        "device": str(d.device),
        "world": d.world,
        **data.report,
        **{k: v for k, v in last_val.items() if k != "kind"},
    }
    if d.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if d.world > 1:
        d.barrier()  # no rank tears its gloo pairs down while a peer still uses them
        dist.destroy_process_group()
    return summary


@contextlib.contextmanager
def _stop_on_sigterm() -> Iterator[threading.Event]:
    """An event set by SIGTERM (e.g. `timeout`) while training: the loop then validates, saves and returns instead
    of dying mid-chunk. Outside the main thread (no signal handling there) the event is never set."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)


def _loop(
    trainer: Trainer, loader: DataLoader, sampler: BucketBatchSampler, val_batches: list[Batch], total: int,
    stop_when_aligned: float | None, monitor: Monitor, deadline: float | None = None,
    interrupt: threading.Event | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Steps until `total`, alignment, the deadline or a stop request (SIGTERM); returns the last validation row
    plus the starting step."""
    cfg, d = trainer.config.train, trainer.d
    last_val: dict[str, Any] = {}
    aligned_at: int | None = None
    start_step, per_epoch = trainer.step, sampler.batches_per_epoch()
    trainer.model.train()
    with (trainer.out / METRICS).open("a") if d.main else open(os.devnull, "w") as metrics:
        while trainer.step < total:
            sampler.set_epoch(*divmod(trainer.step, per_epoch))
            for batch in loader:
                row = trainer.train_step(batch)
                step = trainer.step
                asked = (deadline is not None and time.time() >= deadline) or (
                    interrupt is not None and interrupt.is_set()
                )
                out_of_time = (deadline is not None or interrupt is not None) and d.broadcast_flag(asked)
                if out_of_time:
                    total = step  # validate, save and stop here
                validating = step % cfg.val_every == 0 or step == total
                if d.main:
                    monitor.update(step, row)
                    if step % cfg.log_every == 0:
                        metrics.write(json.dumps(row) + "\n")
                        metrics.flush()
                    if validating:
                        last_val = _validation_row(trainer, val_batches, monitor)
                        score = min(last_val["val_tf_diagonality"], last_val["val_free_diagonality"])
                        if aligned_at is None and stop_when_aligned is not None and score >= stop_when_aligned:
                            aligned_at = step
                        last_val["aligned_at"] = aligned_at
                        metrics.write(json.dumps(last_val) + "\n")
                        metrics.flush()
                    if step % cfg.checkpoint_every == 0 or step == total or aligned_at is not None:
                        trainer.save()
                stop = validating and stop_when_aligned is not None and d.broadcast_flag(aligned_at is not None)
                if stop or step >= total:
                    return {**last_val, "start_step": start_step}
    return {**last_val, "start_step": start_step}
