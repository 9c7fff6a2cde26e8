#!/usr/bin/env bash
# Fetch real recorded speech from Debian packages into a git-ignored cache (for `toonlab tts import-corpus`).
#
#   scripts/fetch_speech.sh     -> .cache/media/speech/hedgewars/usr/share/games/hedgewars/Data/Sounds/voices/
#                                  .cache/media/speech/fillets/usr/share/games/fillets-ng/{sound,script}/
#
# hedgewars-data (145 MB .deb): 15 voice packs speaking the same phrases; only the voices are unpacked (20 MB).
# fillets-ng-data (71 MB, its dialogue scripts) + fillets-ng-data-cs (39 MB, Czech acted dialogue).
# Packages are downloaded with `apt-get download` (never installed) into .cache/media/debs, shared with
# scripts/fetch_media.sh. Idempotent: a package already unpacked (its stamp exists) is skipped; each package is
# unpacked into a temporary folder first and its stamp is written last, so an interrupted run is redone.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEDIA=${TOONLAB_MEDIA:-$ROOT/.cache/media}
DEBS=$MEDIA/debs
SPEECH=$MEDIA/speech

log() { printf 'fetch_speech: %s\n' "$*" >&2; }
die() {
  printf 'fetch_speech: ERROR: %s\n' "$*" >&2
  exit 1
}
for tool in apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || die "'$tool' not found"
done
mkdir -p "$DEBS" "$SPEECH"

source "$ROOT/scripts/debs.sh" # deb_path PKG

unpack() { # NAME PKG MEMBER_GLOB... : unpack members of PKG into $SPEECH/NAME (several packages may share NAME)
  local name=$1 pkg=$2
  shift 2
  local stamp=$SPEECH/$name/.$pkg.done
  [[ -f $stamp ]] && return 0
  local deb tmp
  deb=$(deb_path "$pkg")
  tmp=$SPEECH/.$name.$pkg.partial
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "unpacking $pkg"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards "${@/#/./}" || die "could not unpack $pkg"
  mkdir -p "$SPEECH/$name"
  cp -a "$tmp"/. "$SPEECH/$name"/
  rm -rf "$tmp"
  dpkg-deb -f "$deb" Version >"$stamp"
}

unpack hedgewars hedgewars-data 'usr/share/games/hedgewars/Data/Sounds/voices/*'
unpack fillets fillets-ng-data 'usr/share/games/fillets-ng/script/*'
unpack fillets fillets-ng-data-cs 'usr/share/games/fillets-ng/sound/*'
log "done: $SPEECH"
