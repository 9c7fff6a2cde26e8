"""`toonlab tts ...`: corpus building, training and synthesis commands."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(help="Multi-reference Tacotron: corpus, train, say.", no_args_is_help=True)


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
) -> None:
    """Synthesise TEXT, setting each style attribute independently (unset attributes use mean tokens)."""
    from toonlab.tts.synthesize import Synthesizer, parse_controls

    try:
        synth = Synthesizer.load(run, griffin_lim_iters=griffin_lim_iters)
        controls = parse_controls(ref, tokens, interp, random_tokens, synth.params, seed)
        result = synth.say(text, controls, seed=seed)
    except (ValueError, KeyError, FileNotFoundError) as exc:  # bad text, style option, reference or run
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    synth.write(result, output)
    typer.echo(f"{output}: {result.seconds:.2f} s of audio, {result.steps} decoder steps")
