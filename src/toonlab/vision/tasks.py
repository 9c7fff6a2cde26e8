"""Training tasks: what the one loop (train.py) builds, feeds, minimises and measures for each.

A task turns a `ModelConfig` into a model, a split into prepared inputs (frozen-prefix outputs cached), a batch
of shot indices into a loss, and a prepared split into metrics (a summary plus per-query values for bootstraps).
- `retrieval`: Video-CLIP, symmetric multi-positive InfoNCE. Under DDP the embeddings of every rank are gathered
  with gradients (`torch.distributed.nn.functional.all_gather`), so the loss sees the global batch.
  Evaluation: text->video over the split's distinct captions (every shot with the caption is a positive) and
  video->text over its shots against the distinct captions.
- `classify`: one linear head per label column, plus `order`: half of each batch is played backwards and the
  head says which (a mean over frames cannot tell; only a model that looks at time can).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from toonlab.vision.data import ShotSet
from toonlab.vision.features import VideoInputs, take, text_inputs, to_device, video_inputs
from toonlab.vision.metrics import accuracy, macro_f1, retrieval_per_query, summarize_retrieval
from toonlab.vision.models import ModelConfig, build_classifier, build_videoclip
from toonlab.vision.videoclip import contrastive_loss

EVAL_CHUNK = 128
IGNORE = -100
ORDER = "order"


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model


def _world() -> int:
    dist = torch.distributed
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's (b, ...) tensor along dim 0; gradients flow back to each rank's own part."""
    if _world() == 1:
        return x
    return torch.cat(torch.distributed.nn.functional.all_gather(x))


def gather_plain(x: torch.Tensor) -> torch.Tensor:
    if _world() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(_world())]
    torch.distributed.all_gather(parts, x)
    return torch.cat(parts)


class Task(Protocol):
    name: str

    def build(self, config: ModelConfig) -> nn.Module: ...

    def prepare(self, model: nn.Module, shots: ShotSet, device: torch.device, cache: Path | None, key: dict): ...

    def loss(self, model: nn.Module, prepared: Any, idx: torch.Tensor, device: torch.device, gen) -> torch.Tensor: ...

    def evaluate(self, model: nn.Module, prepared: Any, device: torch.device) -> tuple[dict, dict]: ...

    def state(self) -> dict: ...


@dataclass
class RetrievalInputs:
    video: VideoInputs
    text: Any  # prefix state of the distinct captions
    caption_ids: torch.Tensor  # (S,) into the distinct captions


class RetrievalTask:
    name = "retrieval"

    def __init__(self, **_: Any) -> None:
        pass

    def build(self, config: ModelConfig) -> nn.Module:
        return build_videoclip(config)

    def state(self) -> dict:
        return {}

    def prepare(self, model, shots: ShotSet, device, cache, key) -> RetrievalInputs:
        model = unwrap(model)
        captions, ids = shots.caption_ids()
        video = video_inputs(model.video, shots, device, cache, key)
        return RetrievalInputs(video, text_inputs(model.text, captions, device, cache, key), ids)

    def loss(self, model, prepared: RetrievalInputs, idx, device, gen) -> torch.Tensor:
        h, mask = prepared.video.take(unwrap(model).video, idx, device)
        ids = prepared.caption_ids[idx]
        video, text, scale = model(h, mask, to_device(take(prepared.text, ids), device))
        return contrastive_loss(gather_with_grad(video), gather_with_grad(text), gather_plain(ids.to(device)), scale)

    @torch.no_grad()
    def embed(self, model, prepared: RetrievalInputs, device) -> tuple[torch.Tensor, torch.Tensor]:
        """(S, E) video and (U, E) text embeddings of a prepared split."""
        model = unwrap(model)
        videos = []
        for start in range(0, len(prepared.caption_ids), EVAL_CHUNK):
            idx = torch.arange(start, min(len(prepared.caption_ids), start + EVAL_CHUNK))
            videos.append(model.embed_video(*prepared.video.take(model.video, idx, device)).cpu())
        n_text = int(prepared.caption_ids.max()) + 1
        texts = [
            model.embed_text(to_device(take(prepared.text, torch.arange(s, min(n_text, s + EVAL_CHUNK))), device)).cpu()
            for s in range(0, n_text, EVAL_CHUNK)
        ]
        return torch.cat(videos), torch.cat(texts)

    def evaluate(self, model, prepared: RetrievalInputs, device) -> tuple[dict, dict]:
        model.eval()
        videos, texts = self.embed(model, prepared, device)
        return retrieval_metrics((texts @ videos.T).numpy(), prepared.caption_ids.numpy())


def retrieval_metrics(scores: np.ndarray, caption_ids: np.ndarray) -> tuple[dict, dict]:
    """scores (U, S): distinct caption u vs shot s. Summary {t2v_r1, ..., v2t_map} and per-query arrays."""
    relevant = caption_ids[None, :] == np.arange(scores.shape[0])[:, None]  # (U, S)
    per_query = {"t2v": retrieval_per_query(scores, relevant), "v2t": retrieval_per_query(scores.T, relevant.T)}
    summary = {f"{d}_{k}": v for d, pq in per_query.items() for k, v in summarize_retrieval(pq).items()}
    return summary, per_query


@dataclass
class ClassifyInputs:
    video: VideoInputs
    targets: dict[str, torch.Tensor]  # label -> (S,) class ids, IGNORE where unknown


class ClassifyTask:
    """`labels`: label columns; `classes`: label -> class names (from the train split, or a checkpoint)."""

    name = "classify"

    def __init__(self, labels: tuple[str, ...] = (), classes: dict[str, list[str]] | None = None, **_: Any) -> None:
        self.labels = tuple(labels)
        self.classes = dict(classes or {})

    def fit_classes(self, shots: ShotSet) -> None:
        for label in self.labels:
            values = sorted({v for v in shots.labels[label] if v is not None})
            if len(values) < 2:
                raise ValueError(f"label {label!r} has {len(values)} class(es) in the train split: nothing to learn")
            self.classes[label] = values
        self.classes[ORDER] = ["forward", "reversed"]

    def build(self, config: ModelConfig) -> nn.Module:
        return build_classifier(config, {name: len(values) for name, values in self.classes.items()})

    def state(self) -> dict:
        return {"labels": list(self.labels), "classes": self.classes}

    def prepare(self, model, shots: ShotSet, device, cache, key) -> ClassifyInputs:
        targets = {}
        for label in self.labels:
            lookup = {v: i for i, v in enumerate(self.classes[label])}
            targets[label] = torch.tensor([lookup.get(v, IGNORE) for v in shots.labels[label]], dtype=torch.long)
        return ClassifyInputs(video_inputs(unwrap(model).video, shots, device, cache, key), targets)

    def loss(self, model, prepared: ClassifyInputs, idx, device, gen) -> torch.Tensor:
        flip = torch.rand(len(idx), generator=gen) < 0.5  # these shots play backwards
        encoder = unwrap(model).video
        forward, backward = (
            prepared.video.take(encoder, idx[~flip], device),
            prepared.video.take(encoder, idx[flip], device, True),
        )
        logits = model(torch.cat([forward[0], backward[0]]), torch.cat([forward[1], backward[1]]))
        order = torch.cat([idx[~flip], idx[flip]])
        targets = {label: t[order] for label, t in prepared.targets.items()}
        targets[ORDER] = torch.cat([torch.zeros(int((~flip).sum())), torch.ones(int(flip.sum()))]).long()
        losses = [
            nn.functional.cross_entropy(logits[name], t.to(device), ignore_index=IGNORE)
            for name, t in targets.items()
            if (t != IGNORE).any()
        ]
        return torch.stack(losses).sum()

    @torch.no_grad()
    def predict(self, model, prepared: ClassifyInputs, device, reverse: bool = False) -> dict[str, torch.Tensor]:
        model = unwrap(model)
        n, outs = len(prepared.video.index), []
        for start in range(0, n, EVAL_CHUNK):
            idx = torch.arange(start, min(n, start + EVAL_CHUNK))
            outs.append(
                {
                    k: v.argmax(1).cpu()
                    for k, v in model(*prepared.video.take(model.video, idx, device, reverse)).items()
                }
            )
        return {k: torch.cat([o[k] for o in outs]) for k in outs[0]}

    def evaluate(self, model, prepared: ClassifyInputs, device) -> tuple[dict, dict]:
        model.eval()
        forward, backward = self.predict(model, prepared, device), self.predict(model, prepared, device, True)
        summary, per_query = {}, {}
        for label, target in prepared.targets.items():
            truth, pred = target.numpy(), forward[label].numpy()
            per_query[label] = {"truth": truth, "pred": pred}
            summary[f"{label}_acc"] = 100.0 * accuracy(truth, pred)
            summary[f"{label}_f1"] = 100.0 * macro_f1(truth, pred)
        n = len(prepared.video.index)
        truth = np.concatenate([np.zeros(n, dtype=int), np.ones(n, dtype=int)])
        pred = torch.cat([forward[ORDER], backward[ORDER]]).numpy()
        per_query[ORDER] = {"truth": truth, "pred": pred}
        summary[f"{ORDER}_acc"] = 100.0 * accuracy(truth, pred)
        return summary, per_query


TASKS: dict[str, type] = {"retrieval": RetrievalTask, "classify": ClassifyTask}


def build_task(name: str, **kwargs: Any) -> Task:
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; known: {', '.join(sorted(TASKS))}")
    return TASKS[name](**kwargs)
