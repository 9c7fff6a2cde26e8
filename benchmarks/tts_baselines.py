"""Baselines side by side: single GST, multi-reference without intercross, multi-reference with intercross (the
paper), and intercross + adversaries, each trained with the same step budget on the same corpus, then evaluated by
`toonlab tts evaluate` into one table (markdown + json) with each run's training minutes.

    .venv/bin/python benchmarks/tts_baselines.py --corpus .cache/tts/corpus --steps 800 \
        --out .cache/tts/runs/baselines [--configs tiny-fs-gst,tiny-fs-multi,tiny-fs] [--cases 128] \
        [--vocoder FILE] [--eval-cache DIR]

Runs train one at a time, each as its own `toonlab tts train` process (so other users see it with
`pgrep -f "tts train"`); the script refuses to start while another `tts train` runs (the CPU is shared) unless
--force. A config whose run already reached the budget is not retrained, so a rerun only evaluates.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASELINES = {
    "tiny-gst": "single GST (N=1, reference = target)",
    "tiny-multi": "multi-reference, no intercross",
    "tiny": "multi-reference + intercross (paper)",
    "tiny-adv": "intercross + adversarial",
    "tiny-fs-gst": "FastSpeech: single GST (N=1, reference = target)",
    "tiny-fs-multi": "FastSpeech: multi-reference, no intercross",
    "tiny-fs": "FastSpeech: multi-reference + intercross (paper)",
}


def other_training() -> list[str]:
    """Command lines of `tts train` processes not started by this script."""
    found = subprocess.run(["pgrep", "-af", "tts train"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in found if int(line.split()[0]) != os.getpid() and "pgrep" not in line]


def trained_steps(run: Path) -> int:
    summary = run / "summary.json"
    return int(json.loads(summary.read_text())["steps"]) if summary.exists() else 0


def train(config: str, corpus: Path, run: Path, steps: int, threads: int, cache: Path | None) -> float:
    """Train (or resume) one config to `steps`; returns wall minutes spent now."""
    toonlab = Path(sys.executable).with_name("toonlab")
    cmd = [str(toonlab), "tts", "train", "--corpus", str(corpus), "--config", config, "--out", str(run)]
    cmd += ["--steps", str(steps), "--threads", str(threads), "--resume"]
    cmd += ["--cache", str(cache)] if cache else []
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    with (run / "train.log").open("a") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT)
    return (time.time() - t0) / 60


def row(config: str, report: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
    """One table row from an evaluation report and a training summary."""
    control, probes = report["control"], report.get("probes", {})
    own = [v[sub]["accuracy"] for sub, v in probes.items() if sub in v]
    cross = [acc["accuracy"] for sub, v in probes.items() for attr, acc in v.items() if attr != sub]
    spk = control.get("speaker", {})
    it = report.get("intelligibility", {})

    def acc(attr: str, kind: str = "classifier") -> float | None:
        return control.get(attr, {}).get(kind, {}).get("output", {}).get("accuracy")

    def mean(v: dict[str, Any] | None) -> float | None:
        return (v or {}).get("mean")

    return {
        "config": config,
        "what": BASELINES.get(config, config),
        "steps": summary.get("steps"),
        "train_minutes": summary.get("minutes_total", summary.get("minutes")),
        "speaker_acc": acc("speaker"),
        "style_acc": acc("style"),
        "style_acc_model_free": acc("style", "model_free"),
        "cos_speaker_ref": mean(spk.get("cos_speaker_ref")),
        "cos_other_ref": mean(spk.get("cos_other_ref")),
        "mcd_db": mean(report["fidelity"]["mcd_db"]),
        "f0_rmse_hz": mean(report["fidelity"]["f0_rmse_hz"]),
        "wer": it.get("output", {}).get("wer"),
        "wer_real": it.get("vocoded", {}).get("wer"),
        "length_r_style_ref": report["length"].get("style", {}).get("pearson"),
        "length_partial_style_ref": report["length"].get("style", {}).get("partial"),
        "probe_own": sum(own) / len(own) if own else None,
        "probe_other": sum(cross) / len(cross) if cross else None,
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    def f(x: Any, pct: bool = False) -> str:
        if x is None or x != x:
            return "–"
        return f"{100 * x:.1f}%" if pct else f"{x:.2f}"

    head = (
        "| model | steps | train min | speaker acc | style acc (model-free) | cos spk ref / other ref | MCD dB | "
        "F0 RMSE Hz | WER (vocoded real) | length r style ref (partial) | probe own / other |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['what']} | {r['steps']} | {f(r['train_minutes'])} | {f(r['speaker_acc'], True)} | "
            f"{f(r['style_acc'], True)} ({f(r['style_acc_model_free'], True)}) | "
            f"{f(r['cos_speaker_ref'])} / {f(r['cos_other_ref'])} | {f(r['mcd_db'])} | "
            f"{f(r['f0_rmse_hz'])} | {f(r['wer'], True)} ({f(r['wer_real'], True)}) | "
            f"{f(r['length_r_style_ref'])} ({f(r['length_partial_style_ref'])}) | "
            f"{f(r['probe_own'], True)} / {f(r['probe_other'], True)} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path(".cache/tts/runs/baselines"))
    p.add_argument("--steps", type=int, default=800, help="Equal step budget for every baseline.")
    p.add_argument("--configs", default=",".join(BASELINES), help="Comma-separated config names.")
    p.add_argument("--cases", type=int, default=48, help="Crossed cases per evaluation.")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, default=None, help="Feature cache shared by the runs.")
    p.add_argument("--eval-cache", type=Path, default=None, help="Real-audio cache shared by the evaluations.")
    p.add_argument("--vocoder", default="griffin-lim", help="griffin-lim, world or a mel-to-linear file.")
    p.add_argument("--sweeps", type=int, default=16, help="Style sweeps per evaluation.")
    p.add_argument("--force", action="store_true", help="Start even while another `tts train` runs.")
    args = p.parse_args(argv)

    from toonlab.tts.evaluate import evaluate

    busy = other_training()
    if busy and not args.force:
        print("another `tts train` is running; not starting (use --force):\n" + "\n".join(busy), file=sys.stderr)
        return 3
    rows = []
    for config in args.configs.split(","):
        run = args.out / config
        if trained_steps(run) < args.steps:
            print(f"{config}: training to {args.steps} steps -> {run}", flush=True)
            train(config, args.corpus, run, args.steps, args.threads, args.cache)
        summary = json.loads((run / "summary.json").read_text())
        print(f"{config}: evaluating", flush=True)
        report = evaluate(
            run,
            args.corpus,
            run / "eval",
            n_cases=args.cases,
            n_sweeps=args.sweeps,
            vocoder=args.vocoder,
            cache=args.eval_cache,
        )  # resumes run/eval/partial.jsonl: evaluations run apart with the same settings are not repeated
        rows.append(row(config, report, summary))
        table = markdown(rows)
        (args.out / "baselines.md").write_text(table + "\n")
        (args.out / "baselines.json").write_text(json.dumps(rows, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
