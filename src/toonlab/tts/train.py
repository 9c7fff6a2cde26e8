"""Training loop behind `toonlab tts train`: features cached once, length-bucketed batches, intercross references,
periodic held-out validation (mel L1, attention diagonality/focus) with alignment plots, resumable checkpoints,
and DDP over gloo/nccl when launched by `torchrun` (WORLD_SIZE set).

Run folder: `checkpoint.pt` (latest), `metrics.jsonl` (train and validation rows), `alignments/step_NNNNNN.png`.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from toonlab.tts.audio import AudioParams, load_wav, mel_spectrogram
from toonlab.tts.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from toonlab.tts.configs import Config
from toonlab.tts.data import Corpus, Utterance
from toonlab.tts.intercross import IntercrossSampler, ReferenceSampler, SelfReference, crop_bounds
from toonlab.tts.model import Batch, MultiRefTacotron, build_model
from toonlab.tts.tacotron import attention_scores, num_parameters
from toonlab.tts.text import SymbolTable, TextFrontEnd, make_phonemizer

CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.jsonl"


@dataclass
class Example:
    id: str
    text: torch.Tensor  # (L,) symbol ids
    mel: torch.Tensor  # (T, n_mels) float16
    labels: dict[str, int]
    sentence: str


# ---------------------------------------------------------------- features


def _atomic_torch_save(obj: Any, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def cached_mels(utterances: Sequence[Utterance], params: AudioParams, cache_dir: Path, console: Console) -> dict:
    """id -> (T, n_mels) float16 log-mel, computed once per audio-parameter set into `cache_dir` (recomputed
    for an utterance whose audio file changed: size and mtime are remembered)."""
    key = hashlib.sha1(json.dumps(params.to_dict(), sort_keys=True).encode()).hexdigest()[:10]
    path = cache_dir / f"mels-{key}.pt"
    cache = torch.load(path, weights_only=True) if path.exists() else {"mels": {}, "stamps": {}}
    mels: dict[str, torch.Tensor] = cache["mels"]
    stamps = {u.id: _stamp(u.audio) for u in utterances}
    missing = [u for u in utterances if u.id not in mels or cache["stamps"].get(u.id) != stamps[u.id]]
    if missing:
        console.print(f"computing mels for {len(missing)} utterances -> {path}")
        for u in missing:
            mels[u.id] = mel_spectrogram(load_wav(u.audio, params.sample_rate), params).half()
            cache["stamps"][u.id] = stamps[u.id]
        cache_dir.mkdir(parents=True, exist_ok=True)
        _atomic_torch_save(cache, path)
    return mels


def cached_phonemes(texts: Sequence[str], front: TextFrontEnd, cache_dir: Path) -> dict[str, list[str]]:
    """text -> symbols, remembered in `cache_dir/symbols-<front end>.json` (espeak-ng is slow-ish)."""
    ph = front.phonemizer
    path = cache_dir / f"symbols-{ph.kind}-{getattr(ph, 'voice', 'none')}.json"
    cache: dict[str, list[str]] = json.loads(path.read_text()) if path.exists() else {}
    missing = [t for t in dict.fromkeys(texts) if t not in cache]
    for t in missing:
        cache[t] = front.symbols_of(t)
    if missing:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
        tmp.write_text(json.dumps(cache, ensure_ascii=False))
        os.replace(tmp, path)
    return cache


def make_examples(
    utterances: Sequence[Utterance],
    mels: dict[str, torch.Tensor],
    symbols: dict[str, list[str]],
    table: SymbolTable,
    classes: dict[str, list[str]],
    unknown: set[str],
) -> list[Example]:
    return [
        Example(
            u.id,
            torch.tensor(table.encode(symbols[u.text], unknown), dtype=torch.long),
            mels[u.id],
            {a: classes[a].index(v) for a, v in u.attrs.items() if a in classes},
            u.sentence_id,
        )
        for u in utterances
    ]


def build_sampler(config: Config, examples: Sequence[Example], classes: dict[str, list[str]]) -> ReferenceSampler:
    """The reference sampler named by `config.train.sampler` over `examples`."""
    if config.train.sampler == "self":
        return SelfReference()
    if config.train.sampler == "intercross":
        missing = [a for a in config.style.attributes if a not in classes]
        if missing:
            raise ValueError(
                f"config {config.name!r} needs corpus attribute(s) {missing}; the corpus has {sorted(classes)}"
            )
        return IntercrossSampler(
            [{a: str(v) for a, v in e.labels.items()} for e in examples],
            [e.sentence for e in examples],
            config.style.attributes,
        )
    raise ValueError(f"unknown sampler {config.train.sampler!r}; expected 'intercross' or 'self'")


# ---------------------------------------------------------------- batching


def bucket_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices grouped by similar length (sorted with jitter), in shuffled batch order; one epoch."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i] * (1 + 0.1 * rng.random()))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(batches)
    return batches


def _pad(seqs: Sequence[torch.Tensor], value: float, multiple: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([s.shape[0] for s in seqs])
    size = math.ceil(int(lengths.max()) / multiple) * multiple
    out = seqs[0].new_full((len(seqs), size, *seqs[0].shape[1:]), value)
    for i, s in enumerate(seqs):
        out[i, : s.shape[0]] = s
    return out, lengths


def collate(
    indices: Sequence[int],
    examples: Sequence[Example],
    sampler: ReferenceSampler,
    config: Config,
    rng: random.Random,
) -> Batch:
    items = [examples[i] for i in indices]
    pad = config.audio.pad_value
    text, text_lengths = _pad([e.text for e in items], 0)
    mels, mel_lengths = _pad([e.mel.float() for e in items], pad, config.tacotron.reduction)
    crop = config.train.crop_seconds
    references, labels = [], []
    for n in range(len(config.style.attributes)):
        refs = [examples[sampler.sample(i, n, rng)] for i in indices]
        ref_mels = []
        for e in refs:
            mel = e.mel.float()
            if crop is not None:
                lo, hi = (round(s / config.audio.frame_seconds) for s in crop)
                start, end = crop_bounds(mel.shape[0], lo, hi, rng)
                mel = mel[start:end]
            ref_mels.append(mel)
        references.append(_pad(ref_mels, pad))
        labels.append({a: torch.tensor([e.labels[a] for e in refs]) for a in refs[0].labels})
    return Batch(text, text_lengths, mels, mel_lengths, references, labels, [e.id for e in items])


# ---------------------------------------------------------------- validation


@torch.no_grad()
def validate(
    model: MultiRefTacotron,
    batch: Batch,
    config: Config,
    step: int,
    plot_dir: Path | None,
    n_free: int = 3,
) -> dict[str, float]:
    """Teacher-forced held-out losses and alignment scores, plus free-running alignment of `n_free` items."""
    model.eval()
    out, _, losses = model(batch, step)
    r = config.tacotron.reduction
    steps = (batch.mel_lengths + r - 1) // r
    tf = [
        attention_scores(out.alignments[i, : int(steps[i])], int(batch.text_lengths[i])) for i in range(len(batch.ids))
    ]
    metrics = {f"val_{k}": float(v) for k, v in losses.items()}
    for k in ("focus", "diagonality", "monotonic"):
        metrics[f"val_tf_{k}"] = sum(s[k] for s in tf) / len(tf)
    style, _ = model.style(batch.references)  # (B, sum d_n)
    fr, ratios, first = [], [], None
    for i in range(min(n_free, len(batch.ids))):  # one at a time: each stops on its own stop token
        length = int(batch.text_lengths[i])
        free = model.tacotron.infer(batch.text[i : i + 1, :length], batch.text_lengths[i : i + 1], style[i : i + 1])
        first = first if first is not None else free
        fr.append(attention_scores(free.alignments[0], length))
        ratios.append(free.mels.shape[1] / float(batch.mel_lengths[i]))
    for k in ("focus", "diagonality", "monotonic"):
        metrics[f"val_free_{k}"] = sum(s[k] for s in fr) / len(fr)
    metrics["val_free_length_ratio"] = sum(ratios) / len(ratios)
    if plot_dir is not None:
        metrics_png = plot_alignment(
            plot_dir / f"step_{step:06d}.png",
            out.alignments[0, : int(steps[0]), : int(batch.text_lengths[0])],
            first.alignments[0],
            batch.mels[0, : int(batch.mel_lengths[0])],
            out.mels_post[0, : int(batch.mel_lengths[0])],
            f"{batch.ids[0]} step {step}",
        )
        metrics["plot"] = str(metrics_png)  # type: ignore[assignment]
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
    """Teacher-forced and free-running attention (decoder step x text symbol) and target/predicted mels."""
    from toonlab.extras import require

    mpl = require("matplotlib")
    mpl.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(12, 7))
    panels = [
        (teacher.T, "attention, teacher forced", "decoder step", "text symbol"),
        (free.T, "attention, free running", "decoder step", "text symbol"),
        (target.T, "target mel (held out)", "frame", "mel"),
        (predicted.T, "predicted mel (post-net, teacher forced)", "frame", "mel"),
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


def _validation_row(
    model: MultiRefTacotron,
    batch: Batch,
    config: Config,
    step: int,
    out: Path,
    start_time: float,
    console: Console,
) -> dict[str, Any]:
    row: dict[str, Any] = validate(model, batch, config, step, out / "alignments")
    row.update(step=step, kind="val", minutes=round((time.time() - start_time) / 60, 2))
    console.print(
        f"[cyan]val step {step}: mel L1 {row['val_mel_post']:.4f}, diagonality teacher-forced "
        f"{row['val_tf_diagonality']:.3f} / free {row['val_free_diagonality']:.3f}, focus "
        f"{row['val_tf_focus']:.3f} / {row['val_free_focus']:.3f} -> {row.get('plot')}"
    )
    return row


# ---------------------------------------------------------------- distributed


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def init_distributed() -> Dist:
    """Initialise torch.distributed when launched by torchrun (WORLD_SIZE set); gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return Dist(dist.get_rank(), world, int(os.environ.get("LOCAL_WORLD_SIZE", world)))


# ---------------------------------------------------------------- the loop


def learning_rate(config: Config, step: int) -> float:
    """Exponential decay from lr to lr_final over lr_decay_steps, then flat."""
    t = config.train
    return t.lr * (t.lr_final / t.lr) ** (min(step, t.lr_decay_steps) / t.lr_decay_steps)


def _epochs(lengths: Sequence[int], batch_size: int, world: int, rng: random.Random) -> Iterator[list[list[int]]]:
    """Endless groups of `world` batches (one per rank)."""
    while True:
        batches = [b for b in bucket_batches(lengths, batch_size, rng) if len(b) > 1]
        for i in range(0, len(batches) - world + 1, world):
            yield batches[i : i + world]


def _validation_batch(
    examples: list[Example], config: Config, classes: dict[str, list[str]], n: int
) -> tuple[Batch, list[Example]]:
    """A fixed held-out batch: every k-th test utterance, its references drawn by the same rule, seeded."""
    stride = max(1, len(examples) // n)
    chosen = examples[::stride][:n]
    sampler = build_sampler(config, examples, classes)
    index = {e.id: i for i, e in enumerate(examples)}
    return collate([index[e.id] for e in chosen], examples, sampler, config, random.Random(1234)), chosen


def train(
    corpus_dir: Path,
    config: Config,
    out: Path,
    steps: int | None = None,
    resume: bool = False,
    cache_dir: Path | None = None,
    threads: int | None = None,
    stop_when_aligned: float | None = None,
    console: Console | None = None,
) -> dict[str, Any]:
    """Train (or resume) a run; returns the last validation metrics and summary figures."""
    console = console or Console(stderr=False)
    d = init_distributed()
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // d.local_world))
    out.mkdir(parents=True, exist_ok=True)
    ckpt: Checkpoint | None = None
    if resume and (out / CHECKPOINT).exists():
        ckpt = load_checkpoint(out / CHECKPOINT)
        config = ckpt.config
        if d.main:
            console.print(f"resuming {out / CHECKPOINT} at step {ckpt.step} (config {config.name!r} from it)")
    total_steps = steps if steps is not None else config.train.steps
    corpus = Corpus.load(corpus_dir)
    cache_dir = cache_dir or corpus.root / "features"
    classes = ckpt.classes if ckpt else {a: corpus.labels(a) for a in corpus.attributes}
    phonemizer = make_phonemizer(config.train.text_frontend, config.train.espeak_voice)
    front = TextFrontEnd(phonemizer, SymbolTable(["_", "~"]))
    train_utts, test_utts = corpus.split("train"), corpus.split("test")
    if not train_utts or not test_utts:
        raise ValueError(f"{corpus_dir}: training needs both train and test (held-out) utterances")
    if d.main:
        cached_phonemes([u.text for u in corpus.utterances], front, cache_dir)
        cached_mels(corpus.utterances, config.audio, cache_dir, console)
    d.barrier()
    symbols = cached_phonemes([u.text for u in corpus.utterances], front, cache_dir)
    mels = cached_mels(corpus.utterances, config.audio, cache_dir, console)
    table = (
        SymbolTable(ckpt.symbols)
        if ckpt
        else SymbolTable.build([symbols[u.text] for u in train_utts], config.train.text_frontend)
    )
    unknown: set[str] = set()
    max_frames = config.train.max_seconds / config.audio.frame_seconds
    train_ex = make_examples(train_utts, mels, symbols, table, classes, unknown)
    train_ex = [e for e in train_ex if len(e.mel) <= max_frames]
    test_ex = make_examples(test_utts, mels, symbols, table, classes, unknown)
    if unknown and d.main:
        console.print(f"[yellow]symbols unknown to the table were dropped: {''.join(sorted(unknown))!r}")
    if not train_ex:
        raise ValueError(f"no training utterance is shorter than max_seconds={config.train.max_seconds}")
    sampler = build_sampler(config, train_ex, classes)
    val_batch, _ = _validation_batch(test_ex, config, classes, config.train.val_utterances)

    torch.manual_seed(config.train.seed)
    model = build_model(config, len(table), classes)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr, weight_decay=config.train.weight_decay)
    step, seconds_before = 0, 0.0
    if ckpt:
        model.load_state_dict(ckpt.model)
        optimizer.load_state_dict(ckpt.optimizer)
        step, seconds_before = ckpt.step, ckpt.train_seconds
    ddp = torch.nn.parallel.DistributedDataParallel(model) if d.world > 1 else model
    if d.main:
        (out / "config.json").write_text(json.dumps(config.to_dict(), indent=2))
        console.print(
            f"config {config.name!r}: {num_parameters(model) / 1e6:.2f} M parameters, {len(train_ex)} training / "
            f"{len(test_ex)} held-out utterances, {len(table)} symbols, batch {config.train.batch_size} x {d.world}, "
            f"{torch.get_num_threads()} threads"
        )

    def save() -> None:
        if d.main:
            save_checkpoint(
                out / CHECKPOINT,
                Checkpoint(
                    config,
                    table.symbols,
                    classes,
                    model.state_dict(),
                    optimizer.state_dict(),
                    step,
                    seconds_before + time.time() - start_time,
                ),
            )

    rng = random.Random(config.train.seed * 1000 + step)
    batches = _epochs([len(e.mel) for e in train_ex], config.train.batch_size, d.world, rng)
    ref_rng = random.Random(config.train.seed * 7919 + d.rank * 104729 + step)
    metrics_file = (out / METRICS).open("a") if d.main else None
    last_val: dict[str, Any] = {}
    aligned_at: int | None = None
    start_time, start_step = time.time(), step
    progress = Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.description}"),
        console=console,
        disable=not d.main,
    )
    interactive = console.is_terminal
    with progress:
        task = progress.add_task("", total=total_steps, completed=step)
        model.train()
        while step < total_steps:
            t0 = time.time()
            batch = collate(next(batches)[d.rank], train_ex, sampler, config, ref_rng)
            for g in optimizer.param_groups:
                g["lr"] = learning_rate(config, step)
            _, _, losses = ddp(batch, step)
            optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), config.train.grad_clip)
            optimizer.step()
            step += 1
            validating = step % config.train.val_every == 0 or step == total_steps
            if d.main:
                row = {k: round(float(v.detach()), 5) for k, v in losses.items()}
                row.update(step=step, kind="train", grad_norm=round(float(grad_norm), 4))
                row["seconds"] = round(time.time() - t0, 3)
                desc = f"loss {row['total']:.3f} mel {row['mel_post']:.3f} ga {row.get('guided_attention', 0):.3f}"
                progress.update(task, completed=step, description=desc)
                if step % config.train.log_every == 0 and metrics_file:
                    metrics_file.write(json.dumps(row) + "\n")
                    metrics_file.flush()
                if not interactive and step % (config.train.log_every * 5) == 0:
                    console.print(f"step {step}: {desc} ({row['seconds']:.2f} s/step)")
                if validating:
                    last_val = _validation_row(model, val_batch, config, step, out, start_time, console)
                    score = min(last_val["val_tf_diagonality"], last_val["val_free_diagonality"])
                    if aligned_at is None and stop_when_aligned is not None and score >= stop_when_aligned:
                        aligned_at = step
                    last_val["aligned_at"] = aligned_at
                    if metrics_file:
                        metrics_file.write(json.dumps(last_val) + "\n")
                        metrics_file.flush()
                if step % config.train.checkpoint_every == 0 or step == total_steps or aligned_at is not None:
                    save()
            if validating and stop_when_aligned is not None:
                flag = torch.tensor([int(aligned_at is not None)])
                if d.world > 1:  # rank 0 decides; every rank stops together
                    dist.broadcast(flag, 0)
                if flag.item():
                    break
    if metrics_file:
        metrics_file.close()
    summary = {
        "steps": step,
        "steps_this_run": step - start_step,
        "minutes": round((time.time() - start_time) / 60, 2),
        "minutes_total": round((seconds_before + time.time() - start_time) / 60, 2),  # all sessions to this step
        "parameters": num_parameters(model),
        **{k: v for k, v in last_val.items() if k != "kind"},
    }
    if d.main:
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
    if d.world > 1:
        dist.destroy_process_group()
    return summary
