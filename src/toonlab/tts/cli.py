"""`toonlab tts ...`: corpus building, training and synthesis commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Multi-reference Tacotron: corpus, train, say, evaluate, demo.", no_args_is_help=True)


@app.command()
def corpus(
    out: Path = typer.Argument(..., help="Corpus folder (manifest.jsonl, wavs/, corpus.json)."),
    sentences: int = typer.Option(120, "--sentences", "-n", help="Sentences in all (train + held out)."),
    voices: str = typer.Option("", help="Comma-separated voice names (default: the first 8 known voices)."),
    styles: str = typer.Option("neutral,happy,sad,angry", help="Comma-separated style names."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Parallel render processes (0 = all cores)."),
    test_frac: float = typer.Option(0.1, "--test-frac", help="Fraction of sentences held out as test."),
    text: Path | None = typer.Option(None, help="Use this file's lines as sentences instead of `fortunes`."),
    list_voices: bool = typer.Option(False, "--list-voices", help="List the known voices and styles, then exit."),
    train_cells: int = typer.Option(
        0, "--train-cells", help="Voice x style cells per training sentence (0 = all; held-out sentences get all)."
    ),
) -> None:
    """Build a voice x style x sentence corpus with Debian speech engines (resumable); held-out sentences are
    rendered in every cell, training sentences in every cell or in --train-cells balanced cells each."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from toonlab.tts.engine_corpus import build_corpus
    from toonlab.tts.engines import DEFAULT_VOICES, STYLES, VOICES, EngineMissing, RenderError

    console = Console()
    if list_voices:
        for name, v in VOICES.items():
            console.print(f"{name:14s} {v.engine}{'  (default)' if name in DEFAULT_VOICES else ''}")
        console.print("styles: " + ", ".join(f"{s.name} {vars(s)}" for s in STYLES.values()))
        return
    user_text = [ln for ln in text.read_text().splitlines() if ln.strip()] if text is not None else None
    cols = (TextColumn("rendering"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with Progress(*cols, console=console) as bar:
            task = bar.add_task("render", total=None)
            result = build_corpus(
                out,
                voices=[v for v in voices.split(",") if v] or None,
                styles=[s for s in styles.split(",") if s] or None,
                n_sentences=sentences,
                test_frac=test_frac,
                jobs=jobs or None,
                sentences=user_text,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                train_cells=train_cells,
            )
    except (EngineMissing, FileNotFoundError, KeyError, RenderError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    _print_corpus_summary(console, result)


def _print_corpus_summary(console, result) -> None:  # noqa: ANN001 - rich Console, corpus.BuildResult
    from rich.table import Table

    info = result.info
    table = Table(title="per-style acoustics (pyin sample)")
    for col in ("style", "F0 mean (Hz)", "F0 range (st)", "rate (letters/s)", "RMS (dB)", "n"):
        table.add_column(col, justify="left" if col == "style" else "right")
    for style, s in info.get("style_stats", {}).items():
        table.add_row(
            style, f"{s['f0_mean_hz']:.1f}", f"{s['f0_range_st']:.1f}", f"{s['rate_cps']:.1f}", f"{s['rms_db']:.1f}",
            str(s["n"]),
        )  # fmt: skip
    console.print(table)
    for problem in info.get("style_check_failures", []):
        console.print(f"[yellow]style check:[/yellow] {problem}")
    console.print(
        f"{info['utterances']} utterances ({info['hours']:.2f} h; rendered {result.rendered}, kept "
        f"{result.skipped}, errors {len(result.errors)}) in {result.seconds / 60:.1f} min; "
        f"{len(info['voices'])} voices x {len(info['styles'])} styles; "
        f"test sentences {info['splits']['test']['sentences']}"
    )
    if result.errors:
        console.print(f"[yellow]{len(result.errors)} failed renders listed in {result.root / 'errors.jsonl'}[/yellow]")
    console.print(f"corpus: {result.root.resolve()}")


@app.command()
def train(
    corpus: Path = typer.Option(..., "--corpus", help="Corpus folder with manifest.jsonl and corpus.json."),
    config: str = typer.Option("tiny", "--config", "-c", help="Named config: micro, tiny, tiny-gst, base, base-gst."),
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (checkpoint.pt, metrics.jsonl, alignments/)."),
    steps: int | None = typer.Option(None, "--steps", help="Total training steps (default: the config's)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT/checkpoint.pt."),
    batch_size: int | None = typer.Option(None, "--batch-size", help="Override the config's batch size."),
    val_every: int | None = typer.Option(None, "--val-every", help="Validate (and plot) every N steps."),
    cache: Path | None = typer.Option(None, "--cache", help="Feature cache folder (default: CORPUS/features)."),
    threads: int | None = typer.Option(None, "--threads", help="torch threads (default: cores / local ranks)."),
    stop_when_aligned: float | None = typer.Option(
        None, "--stop-when-aligned", help="Stop once held-out diagonality (teacher-forced and free) reaches this."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto (bf16 autocast on CUDA)."),
    workers: int | None = typer.Option(None, "--workers", help="DataLoader workers for features and batches."),
    minutes: float | None = typer.Option(
        None, "--minutes", help="Stop (validated and saved) after this much wall time; --resume continues."
    ),
) -> None:
    """Train a multi-reference TTS model (run under `torchrun` for DDP: NCCL on GPU, gloo on CPU)."""
    from toonlab.tts.configs import get_config
    from toonlab.tts.manifest import ManifestError
    from toonlab.tts.train import NonFiniteLoss
    from toonlab.tts.train import train as run_training

    try:
        cfg = get_config(config)
    except KeyError as exc:
        typer.echo(f"error: {exc.args[0]}", err=True)
        raise typer.Exit(2) from exc
    overrides = {k: v for k, v in {"batch_size": batch_size, "val_every": val_every}.items() if v is not None}
    if overrides:
        cfg = cfg.with_overrides(train=overrides)
    try:
        run_training(
            corpus, cfg, out, steps, resume, cache, threads, stop_when_aligned, device, workers, _monitor(), minutes
        )
    except (ManifestError, ValueError, FileNotFoundError, NonFiniteLoss) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _monitor():  # noqa: ANN202 - a toonlab.tts.train.Monitor drawn with rich
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console()
    progress = Progress(
        TextColumn("[bold]train"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        TextColumn("{task.description}"), console=console, transient=False,
    )  # fmt: skip

    class RichMonitor:
        task = None

        def start(self, total: int, done: int) -> None:
            if console.is_terminal:
                progress.start()
            self.task = progress.add_task("", total=total, completed=done)

        def update(self, step: int, row: dict) -> None:
            desc = f"loss {row['total']:.3f} mel {row['mel_post']:.3f}"
            progress.update(self.task, completed=step, description=desc)
            if not console.is_terminal and step % 50 == 0:
                console.print(f"step {step}: {desc} ({row['seconds']:.2f} s/step)")
            if progress.finished:
                progress.stop()

        def message(self, text: str) -> None:
            console.print(text)

    return RichMonitor()


@app.command()
def say(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file."),
    text: str = typer.Argument(..., help="Text to speak."),
    output: Path = typer.Option(Path("out.wav"), "--output", "-o", help="Output wav."),
    ref: list[str] = typer.Option([], "--ref", help="ATTR=reference.wav (repeatable)."),
    tokens: list[str] = typer.Option([], "--tokens", help="ATTR=token:weight,... e.g. style=0:0.5,3:0.5."),
    interp: list[str] = typer.Option([], "--interp", help="ATTR=a.wav,b.wav,ALPHA: interpolate two references."),
    random_tokens: list[str] = typer.Option([], "--random", help="ATTR: random token weights (seeded)."),
    seed: int = typer.Option(0, "--seed", help="Seed for --random and the decoder's pre-net dropout."),
    griffin_lim_iters: int = typer.Option(32, "--gl-iters", help="Griffin-Lim iterations."),
    max_chars: int = typer.Option(5000, "--max-chars", help="Refuse longer texts (spoken sentence by sentence)."),
    vocoder: str = typer.Option(
        "griffin-lim", "--vocoder", help="griffin-lim, world (needs pyworld) or a mel-to-linear file."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
) -> None:
    """Synthesise TEXT, setting each style attribute independently (unset attributes use the mean training
    embedding)."""
    from toonlab.tts.synthesize import Synthesizer, check_output, parse_controls, split_text

    try:
        check_output(output)
        split_text(text, max_chars)
        synth = Synthesizer.load(run, vocoder, griffin_lim_iters, device=device)
        controls = parse_controls(ref, tokens, interp, random_tokens, synth.params, seed)
        result = synth.say(text, controls, seed=seed, max_chars=max_chars)
    except (ValueError, KeyError, FileNotFoundError) as exc:  # bad text, style option, reference or run
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    synth.write(result, output)
    pieces = f" in {len(result.alignments)} pieces" if len(result.alignments) > 1 else ""
    typer.echo(f"{output}: {result.seconds:.2f} s of audio, {result.steps} decoder steps{pieces}")
    if result.hit_step_limit:
        typer.echo("warning: a piece reached the decoder's step limit and was cut short", err=True)


@app.command()
def evaluate(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file."),
    corpus: Path = typer.Option(..., "--corpus", help="Corpus folder with held-out (test) utterances."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Report folder (default: RUN/eval)."),
    cases: int = typer.Option(128, "--cases", help="Crossed cases to synthesise (seeded sample)."),
    sweeps: int = typer.Option(16, "--sweeps", help="Style sweeps (one sentence and voice, every style value)."),
    cache: Path | None = typer.Option(None, "--cache", help="Real-audio feature cache (default: CORPUS/features)."),
    per_cell: int = typer.Option(12, "--per-cell", help="Real utterances per attribute combination for the judges."),
    seed: int = typer.Option(0, "--seed"),
    asr: bool = typer.Option(True, "--asr/--no-asr", help="Word error rate with pocketsphinx."),
    vocoded: bool = typer.Option(
        True, "--vocoded-judges/--real-judges", help="Build the judges from real audio through the model's vocoder."
    ),
    vocoder: str = typer.Option(
        "griffin-lim", "--vocoder", help="griffin-lim, world (needs pyworld) or a mel-to-linear file."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto (synthesis only)."),
) -> None:
    """Measure speaker/style control, fidelity, WER, length leakage and embedding probes on crossed cases, beside
    real, vocoded and degraded real targets (resumes an interrupted run in OUT)."""
    from toonlab.tts.evaluate import run_cli

    run_cli(run, corpus, out, cases, per_cell, seed, asr, vocoded, sweeps, vocoder, cache, device)


@app.command()
def demo(
    run: Path = typer.Argument(..., help="Run folder or checkpoint file."),
    corpus: Path = typer.Option(..., "--corpus", help="Corpus folder the references come from."),
    out: Path = typer.Option(Path("page"), "--out", "-o", help="Page folder (index.html, audio/, img/)."),
    text: str | None = typer.Option(None, "--text", help="Sentence every clip says (default: a held-out one)."),
    eval_dir: Path | None = typer.Option(None, "--eval", help="Evaluation folder to show (default: RUN/eval)."),
    vocoder: str = typer.Option(
        "griffin-lim", "--vocoder", help="griffin-lim, world (needs pyworld) or a mel-to-linear file."
    ),
    device: str = typer.Option("cpu", "--device", help="cpu, cuda, cuda:N or auto."),
) -> None:
    """Write a static listening page: control grid, interpolation, token weights, evaluation table."""
    from toonlab.tts.demo import build_demo

    try:
        page = build_demo(run, corpus, out, text=text, eval_dir=eval_dir, vocoder=vocoder, device=device)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(page)


@app.command("train-vocoder")
def train_vocoder(
    corpus: Path = typer.Option(..., "--corpus", help="Corpus folder whose training recordings it learns from."),
    out: Path = typer.Option(..., "--out", "-o", help="Vocoder file to write (use it as --vocoder FILE)."),
    minutes: float = typer.Option(4.0, "--minutes", help="Training time."),
    clips: int = typer.Option(256, "--clips", help="Training recordings, spread over the attribute combinations."),
) -> None:
    """Fit the learned mel-to-linear network (used before Griffin-Lim) on a corpus's real recordings."""
    from toonlab.tts.vocoders import train_vocoder_file

    try:
        info = train_vocoder_file(corpus, out, minutes, clips)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    took = f"{info['seconds'] / 60:.1f} min"
    typer.echo(f"{out}: {info['steps']} steps on {info['clips']} clips in {took}, L1 {info['loss']:.3f}")


@app.command("import-corpus")
def import_corpus(
    kind: str = typer.Argument(..., help="Layout: ljspeech, vctk, esd, hedgewars, fillets."),
    src: Path = typer.Argument(..., help="Folder holding the corpus (or the unpacked Debian package)."),
    out: Path = typer.Argument(..., help="Corpus folder to write (manifest.jsonl, corpus.json)."),
    test_frac: float = typer.Option(0.1, "--test-frac", help="Share of sentences held out."),
) -> None:
    """Turn a real corpus layout into a manifest (audio stays in place)."""
    from toonlab.tts.real_corpora import import_corpus as run_import

    try:
        path = run_import(kind, src, out, test_frac)
    except ValueError as exc:  # ManifestError included
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(path)
