"""Held-out validation during training: teacher-forced losses averaged over every validation batch, alignment
quality (diagonality, focus, monotonicity) teacher-forced and free running, the free-running length ratio, and
an alignment/mel plot of the first utterance."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import torch

from toonlab.tts.batching import Collator, Example
from toonlab.tts.device import autocast
from toonlab.tts.model import Batch, MultiReferenceTTS
from toonlab.tts.tacotron import attention_scores

SCORES = ("focus", "diagonality", "monotonic")


def validation_batches(examples: Sequence[Example], collator: Collator, n: int, batch_size: int) -> list[Batch]:
    """Up to `n` held-out utterances (every k-th, a fixed choice) in batches; references seeded, so every
    validation sees the same inputs."""
    stride = max(1, len(examples) // n)
    chosen = list(range(0, len(examples), stride))[:n]
    chosen.sort(key=lambda i: examples[i].mel.shape[0])  # similar lengths together: less padding
    return [
        collator(chosen[i : i + batch_size], random.Random(1234 + i))
        for i in range(0, len(chosen), batch_size)
        if len(chosen[i : i + batch_size]) > 1
    ]


def _steps(model: MultiReferenceTTS, batch: Batch) -> torch.Tensor:
    r = getattr(model.backbone.cfg, "reduction", 1)
    return (batch.mel_lengths + r - 1) // r


@torch.no_grad()
def validate(
    model: MultiReferenceTTS,
    batches: Sequence[Batch],
    step: int,
    device: torch.device,
    plot_dir: Path | None = None,
    n_free: int = 3,
) -> dict[str, float | str]:
    """Losses averaged over `batches` (weighted by batch size) and alignment scores; the model is left in train mode."""
    model.eval()
    sums: dict[str, float] = {}
    count = 0
    tf: list[dict[str, float]] = []
    first = None
    for batch in batches:
        batch = batch.to(device)
        with autocast(device):
            out, _, losses = model(batch, step)
        b = len(batch.ids)
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v) * b
        count += b
        steps = _steps(model, batch).cpu()
        tf += [attention_scores(out.alignments[i, : int(steps[i])].cpu(), int(batch.text_lengths[i])) for i in range(b)]
        first = first or (batch, out)
    metrics: dict[str, float | str] = {f"val_{k}": v / count for k, v in sums.items()}
    metrics["val_utterances"] = count
    for k in SCORES:
        metrics[f"val_tf_{k}"] = sum(s[k] for s in tf) / len(tf)
    batch, out = first  # type: ignore[misc]
    style, _ = model.style(batch.references)  # (B, sum d_n)
    fr, ratios, free_first = [], [], None
    for i in range(min(n_free, len(batch.ids))):  # one at a time: each stops on its own
        length = int(batch.text_lengths[i])
        free = model.infer(batch.text[i : i + 1, :length], batch.text_lengths[i : i + 1], style[i : i + 1])
        free_first = free_first if free_first is not None else free
        fr.append(attention_scores(free.alignments[0].float().cpu(), length))
        ratios.append(free.mels.shape[1] / float(batch.mel_lengths[i]))
    for k in SCORES:
        metrics[f"val_free_{k}"] = sum(s[k] for s in fr) / len(fr)
    metrics["val_free_length_ratio"] = sum(ratios) / len(ratios)
    if plot_dir is not None:
        n_steps, n_text = int(_steps(model, batch)[0]), int(batch.text_lengths[0])
        metrics["plot"] = str(
            plot_alignment(
                plot_dir / f"step_{step:06d}.png",
                out.alignments[0, :n_steps, :n_text],
                free_first.alignments[0],
                batch.mels[0, : int(batch.mel_lengths[0])],
                out.mels_post[0, : int(batch.mel_lengths[0])],
                f"{batch.ids[0]} step {step}",
            )
        )
    model.train()
    return metrics


def plot_alignment(
    path: Path,
    teacher: torch.Tensor,
    free: torch.Tensor,
    target: torch.Tensor,
    predicted: torch.Tensor,
    title: str,
) -> Path:
    """Teacher-forced and free-running alignment (output step x text symbol) and target/predicted mels."""
    from toonlab.extras import require

    mpl = require("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    panels = [
        (teacher.T, "alignment, teacher forced", "output step", "text symbol"),
        (free.T, "alignment, free running", "output step", "text symbol"),
        (target.T, "target mel (held out)", "frame", "mel"),
        (predicted.T, "predicted mel (teacher forced)", "frame", "mel"),
    ]
    for ax, (img, name, xl, yl) in zip(axes.flat, panels, strict=True):
        ax.imshow(img.float().cpu().numpy(), aspect="auto", origin="lower", interpolation="none")
        ax.set_title(name)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
