"""The judges of `toonlab tts evaluate`, validated on real speech before they score any model: each judge's
accuracy on held-out real, vocoded-real and degraded-real utterances, trained with and without degraded copies;
the model-free style measures on the same clips; the style sweep on real recordings; pocketsphinx WER per domain
and its repeatability (the same clips transcribed twice, in opposite orders).

    .venv/bin/python benchmarks/tts_judges.py --corpus .cache/tts/corpus --per-cell 6

Domains: real (as recorded), vocoded (the mel through Griffin-Lim, or `--vocoder`), degraded (the mel smoothed and
compressed, then vocoded; `toonlab.tts.degrade`). Results: OUT/judges.md and OUT/judges.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

DOMAINS = ("real", "vocoded", "degraded")


def _pct(x: float) -> str:
    return "–" if x != x else f"{100 * x:.1f}%"


def classifier_lines(domains: dict, per_cell: int, result: dict[str, Any]) -> tuple[list[str], Any]:
    """Judges trained on vocoded clips alone and with their degraded copies, scored in every domain."""
    from toonlab.tts.judging import build_judges

    lines = ["| judge | trained on | attribute | CV | held-out real | vocoded | degraded |", "|---" * 7 + "|"]
    judges = None
    for augment in (False, True):
        judges = build_judges(domains, per_cell, seed=0, augment=augment)
        trained = "vocoded + degraded" if augment else "vocoded only"
        for attr, j in judges.per_attribute.items():
            h = judges.held_out_accuracy[attr]
            result.setdefault("classifiers", []).append({"augment": augment, "attr": attr, "judge": j.name, **h})
            cells = " | ".join(_pct(h[d]) for d in DOMAINS)
            lines.append(f"| {j.name} | {trained} | {attr} | {_pct(j.cv[j.name])} | {cells} |")
    return lines, judges


def model_free_lines(domains: dict, judges: Any, result: dict[str, Any]) -> list[str]:
    """Nearest-style decisions of the prosody statistics on the held-out clips, per domain, and the statistics."""
    from toonlab.tts.metrics import wilson_interval
    from toonlab.tts.style_measures import MEASURES

    held, stats = judges.held_out, judges.statistics
    lines = [f"| model-free measures ({len(held)} held-out) | attribute | " + " | ".join(DOMAINS) + " |"]
    lines.append("|---" * 5 + "|")
    tables = []
    for attr in stats.means:
        accs: dict[str, Any] = {}
        for d in DOMAINS:
            hits = [
                stats.decide(domains[d].features(u)["prosody"].numpy(), u.attrs.get("speaker"))[attr] == u.attrs[attr]
                for u in held
            ]
            accs[d], accs[f"{d}_interval"] = float(np.mean(hits)), wilson_interval(sum(hits), len(hits))
        result.setdefault("model_free", {})[attr] = accs
        lines.append(f"| nearest style statistics | {attr} | " + " | ".join(_pct(accs[d]) for d in DOMAINS) + " |")
        tables += ["", f"| {attr}: real mean, speaker-normalised | " + " | ".join(MEASURES) + " |", "|---" * 5 + "|"]
        tables += [f"| {v} | " + " | ".join(f"{x:+.2f}" for x in m) + " |" for v, m in stats.means[attr].items()]
    return lines + tables


def sweep_lines(domains: dict, judges: Any, corpus: Any, n: int, result: dict[str, Any]) -> list[str]:
    """The style-sweep rank test on the real recordings of held-out sentence-speaker pairs."""
    from toonlab.tts.evaluate import style_sweeps
    from toonlab.tts.style_measures import MEASURES, sweep_rank

    sweeps = style_sweeps(corpus, n, seed=0)
    if not sweeps:
        return []
    lines = [f"| style sweep on real recordings ({len(sweeps)}): mean Spearman | " + " | ".join(MEASURES) + " |"]
    lines.append("|---" * 5 + "|")
    for d in DOMAINS:
        rho = np.array(
            [
                sweep_rank(
                    {v: domains[d].features(u)["prosody"].numpy() for v, u in sw.real.items()},
                    sw.speaker,
                    judges.statistics,
                    sw.attr,
                )
                for sw in sweeps
            ]
        )  # (S, 4)
        result.setdefault("sweeps", {})[d] = np.nanmean(rho, 0).tolist()
        lines.append(f"| {d} | " + " | ".join(f"{x:.2f}" for x in np.nanmean(rho, 0)) + " |")
    return lines


def asr_lines(domains: dict, judges: Any, n: int, result: dict[str, Any]) -> list[str]:
    """pocketsphinx WER per domain, and whether a clip's transcript depends on the clips before it."""
    from toonlab.tts.classifiers import Recogniser
    from toonlab.tts.metrics import word_error_rate

    rec, held = Recogniser(), judges.held_out
    clips = held[:: max(1, len(held) // n)][:n]
    texts = [u.text for u in clips]
    wers = {d: word_error_rate(texts, [domains[d].transcript(u, rec) for u in clips]) for d in DOMAINS}
    real = [domains["real"].audio(u)[0].numpy() for u in clips]
    rate = domains["real"].params.sample_rate
    forward = [rec.transcribe(w, rate) for w in real]
    backward = [rec.transcribe(w, rate) for w in reversed(real)][::-1]
    same = float(np.mean([a == b for a, b in zip(forward, backward, strict=True)]))
    result["wer"], result["asr_repeatable"] = wers, same
    return [
        f"| pocketsphinx ({len(clips)} held-out clips) | " + " | ".join(DOMAINS) + " |",
        "|---|---|---|---|",
        "| WER | " + " | ".join(_pct(wers[d]) for d in DOMAINS) + " |",
        f"| same transcript in both orders (real) | {_pct(same)} | | |",
    ]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpus", type=Path, required=True)
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/judges"))
    p.add_argument("--per-cell", type=int, default=6, help="Training utterances per attribute combination.")
    p.add_argument("--asr-clips", type=int, default=24)
    p.add_argument("--sweeps", type=int, default=16)
    p.add_argument("--vocoder", default="griffin-lim")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cache", type=Path, default=None, help="Real-audio feature cache (default: CORPUS/features).")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from toonlab.tts.audio import AudioParams
    from toonlab.tts.classifiers import SpeakerEncoder
    from toonlab.tts.judging import real_domains
    from toonlab.tts.manifest import Corpus
    from toonlab.tts.vocoders import make_vocoder

    params = AudioParams()
    corpus = Corpus.load(args.corpus)
    domains = real_domains(corpus, params, SpeakerEncoder(), make_vocoder(args.vocoder, params), args.cache)
    result: dict[str, Any] = {"corpus": str(corpus.root), "vocoder": domains["vocoded"].vocoder.name}
    try:
        lines, judges = classifier_lines(domains, args.per_cell, result)
        lines += ["", *model_free_lines(domains, judges, result)]
        lines += ["", *sweep_lines(domains, judges, corpus, args.sweeps, result)]
        lines += ["", *asr_lines(domains, judges, args.asr_clips, result)]
    finally:
        for d in domains.values():
            d.save()
    table = "\n".join([f"Corpus {corpus.root}; vocoder {result['vocoder']}.", "", *lines])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "judges.md").write_text(table + "\n")
    (args.out / "judges.json").write_text(json.dumps(result, indent=2) + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
