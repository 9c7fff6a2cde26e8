"""`toonlab tts ...`: corpus building, training and synthesis commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Multi-reference Tacotron: corpus, train, say, evaluate, demo.", no_args_is_help=True)


@app.command()
def corpus(
    out: Path = typer.Argument(..., help="Corpus folder (manifest.jsonl, wavs/, corpus.json)."),
    sentences: int = typer.Option(120, "--sentences", "-n", help="Sentences per speaker and style."),
    voices: str = typer.Option("", help="Comma-separated voice names (default: the first 8 known voices)."),
    styles: str = typer.Option("neutral,happy,sad,angry", help="Comma-separated style names."),
    jobs: int = typer.Option(0, "--jobs", "-j", help="Parallel render processes (0 = all cores)."),
    test_frac: float = typer.Option(0.1, "--test-frac", help="Fraction of sentences held out as test."),
    text: Path | None = typer.Option(None, help="Use this file's lines as sentences instead of `fortunes`."),
    list_voices: bool = typer.Option(False, "--list-voices", help="List the known voices and styles, then exit."),
) -> None:
    """Build a fully crossed voice x style x sentence corpus with Debian speech engines (resumable)."""
    from toonlab.tts.corpus import run_cli

    run_cli(out, sentences, voices, styles, jobs, test_frac, text, list_voices)


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
) -> None:
    """Train a multi-reference Tacotron (run under `torchrun` for DDP)."""
    from toonlab.tts.configs import get_config
    from toonlab.tts.train import train as run_training

    cfg = get_config(config)
    overrides = {k: v for k, v in {"batch_size": batch_size, "val_every": val_every}.items() if v is not None}
    if overrides:
        cfg = cfg.with_overrides(train=overrides)
    run_training(corpus, cfg, out, steps, resume, cache, threads, stop_when_aligned)


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
) -> None:
    """Synthesise TEXT, setting each style attribute independently (unset attributes use mean tokens)."""
    from toonlab.tts.synthesize import Synthesizer, check_output, parse_controls, split_text

    try:
        check_output(output)
        split_text(text, max_chars)
        synth = Synthesizer.load(run, vocoder, griffin_lim_iters)
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
) -> None:
    """Measure speaker/style control, fidelity, WER, length leakage and embedding probes on crossed cases, beside
    real, vocoded and degraded real targets (resumes an interrupted run in OUT)."""
    from toonlab.tts.evaluate import run_cli

    run_cli(run, corpus, out, cases, per_cell, seed, asr, vocoded, sweeps, vocoder, cache)


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
) -> None:
    """Write a static listening page: control grid, interpolation, token weights, evaluation table."""
    from toonlab.tts.demo import build_demo

    try:
        typer.echo(build_demo(run, corpus, out, text=text, eval_dir=eval_dir, vocoder=vocoder))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command("import-corpus")
def import_corpus(
    kind: str = typer.Argument(..., help="Layout: ljspeech, vctk, esd, hedgewars, fillets."),
    src: Path = typer.Argument(..., help="Folder holding the corpus (or the unpacked Debian package)."),
    out: Path = typer.Argument(..., help="Corpus folder to write (manifest.jsonl, corpus.json)."),
    test_frac: float = typer.Option(0.1, "--test-frac", help="Share of sentences held out."),
) -> None:
    """Turn a real corpus layout into a manifest (audio stays in place)."""
    from toonlab.tts.corpora import import_corpus as run_import

    try:
        path = run_import(kind, src, out, test_frac)
    except ValueError as exc:  # ManifestError included
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(path)
