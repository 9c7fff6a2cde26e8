"""Checkpoints: config, symbol table, class names, audio parameters, model and optimizer state, step, and the
wall seconds of training behind them (summed over resumed sessions).

Everything is stored as tensors or primitive containers so a checkpoint loads with `torch.load(...,
weights_only=True)` (no pickled classes, no code execution). Writes are atomic (temp file + rename).
"""

from __future__ import annotations

import os
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from toonlab.tts.audio import AudioParams
from toonlab.tts.configs import Config

FORMAT = 1


@dataclass
class Checkpoint:
    config: Config
    symbols: list[str]
    classes: dict[str, list[str]]  # attribute -> class names (classifier ids)
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any] = field(default_factory=dict)
    step: int = 0
    train_seconds: float = 0.0  # wall time of all training sessions up to `step`

    @property
    def audio(self) -> AudioParams:
        return self.config.audio


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "config": ckpt.config.to_dict(),
        "audio": ckpt.config.audio.to_dict(),
        "symbols": list(ckpt.symbols),
        "classes": {k: list(v) for k, v in ckpt.classes.items()},
        "model": {k: v.detach().cpu() for k, v in ckpt.model.items()},
        "optimizer": ckpt.optimizer,
        "step": int(ckpt.step),
        "train_seconds": float(ckpt.train_seconds),
    }
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load with `weights_only=True`; `path` is a checkpoint file or a run folder holding checkpoint.pt."""
    path = Path(path)
    if path.is_dir():
        path = path / "checkpoint.pt"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:  # truncated, corrupt or not a torch file
        raise ValueError(f"{path}: not a readable toonlab checkpoint ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: checkpoint format {found!r}, expected {FORMAT}")
    config = Config.from_dict(payload["config"])
    return Checkpoint(
        config=config,
        symbols=list(payload["symbols"]),
        classes={k: list(v) for k, v in payload["classes"].items()},
        model=payload["model"],
        optimizer=payload["optimizer"],
        step=int(payload["step"]),
        train_seconds=float(payload.get("train_seconds", 0.0)),  # absent in checkpoints written before it existed
    )
