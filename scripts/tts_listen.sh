#!/usr/bin/env bash
# Hear the TTS: build a small crossed corpus, train for a bounded time (resumably), evaluate, write the page.
#
#   scripts/tts_listen.sh [OUT] [MINUTES]        (make tts-listen; OUT default out/tts-listen, MINUTES default 30)
#
# Every stage resumes: the corpus build skips rendered files, training continues OUT/run/checkpoint.pt for MINUTES
# more minutes (`tts train --minutes`: it validates and saves before it stops), the evaluation continues
# OUT/eval/partial.jsonl. Rerun it to train further.
# Environment: TOONLAB (the CLI, default .venv/bin/toonlab), TTS_CONFIG (default tiny-fs), TTS_SENTENCES (sentences
# per voice and style, default 24), TTS_MAX_STEPS (default 100000), TTS_CASES (evaluation cases, default 32),
# TTS_PER_CELL (real clips per voice x style for the judges, default 6),
# TTS_THREADS (default: all cores), TTS_VOCODER (griffin-lim, world or a mel-to-linear file; default griffin-lim).
set -euo pipefail

OUT=${1:-out/tts-listen}
MINUTES=${2:-30}
TOONLAB=${TOONLAB:-.venv/bin/toonlab}
CONFIG=${TTS_CONFIG:-tiny-fs}
THREADS=${TTS_THREADS:-$(nproc)}
VOCODER=${TTS_VOCODER:-griffin-lim}
RUN=$OUT/run

log() { printf 'tts-listen: %s\n' "$*" >&2; }
trained_steps() { # steps in the run's last summary (0 before the first chunk)
  if [[ -f $RUN/summary.json ]]; then
    sed -n 's/^ *"steps": *\([0-9]*\).*/\1/p' "$RUN/summary.json" | head -1
  else
    echo 0
  fi
}

t0=$(date +%s)
log "corpus -> $OUT/corpus"
"$TOONLAB" tts corpus "$OUT/corpus" -n "${TTS_SENTENCES:-24}" -j "$THREADS" >&2
t1=$(date +%s)

start_steps=$(trained_steps)
resume=()
[[ -f $RUN/checkpoint.pt ]] && resume=(--resume)
log "training $CONFIG for $MINUTES min -> $RUN (log: $RUN.log)"
mkdir -p "$RUN"
"$TOONLAB" tts train --corpus "$OUT/corpus" --config "$CONFIG" --out "$RUN" --steps "${TTS_MAX_STEPS:-100000}" \
  --minutes "$MINUTES" --threads "$THREADS" "${resume[@]}" >"$RUN.log" 2>&1 || {
  tail -20 "$RUN.log" >&2
  exit 1
}
t2=$(date +%s)

log "evaluating -> $OUT/eval"
"$TOONLAB" tts evaluate "$RUN" --corpus "$OUT/corpus" --out "$OUT/eval" --cases "${TTS_CASES:-32}" --sweeps 4 \
  --per-cell "${TTS_PER_CELL:-6}" --vocoder "$VOCODER" >"$OUT/eval.md"
t3=$(date +%s)
log "listening page -> $OUT/page"
"$TOONLAB" tts demo "$RUN" --corpus "$OUT/corpus" --out "$OUT/page" --eval "$OUT/eval" --vocoder "$VOCODER" >&2
t4=$(date +%s)

cat <<SUMMARY
corpus:   $OUT/corpus ($(wc -l <"$OUT/corpus/manifest.jsonl") utterances; $((t1 - t0)) s)
training: $RUN, steps $start_steps -> $(trained_steps) ($((t2 - t1)) s)
report:   $OUT/eval/report.md ($((t3 - t2)) s)
page:     $OUT/page/index.html ($((t4 - t3)) s)
SUMMARY
