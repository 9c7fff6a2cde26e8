#!/usr/bin/env bash
# Fetch anime-style stills (Ren'Py "The Question": character sprites and painted backgrounds, labels in the
# file names) into a git-ignored cache, for the image annotators' real-data tests.
#
#   scripts/fetch_stills.sh      -> .cache/media/stills/the_question/{bg_*.jpg,sylvie_*.png} + VERSION, copyright
#
# The Debian package is downloaded with `apt-get download` (never installed) and only its images are unpacked.
# Spaces in the released file names become underscores. Idempotent: skipped when the folder is complete.
# Needs: apt-get, dpkg-deb, tar. 7.6 MB download.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEDIA=${TOONLAB_MEDIA:-$ROOT/.cache/media}
PKG=renpy-thequestion
OUT=$MEDIA/stills/the_question
IMAGES=usr/share/games/renpy/the_question/game/images

log() { printf 'fetch_stills: %s\n' "$*" >&2; }
die() {
  printf 'fetch_stills: ERROR: %s\n' "$*" >&2
  exit 1
}

if [[ -s $OUT/VERSION && $(find "$OUT" -maxdepth 1 -name '*.png' -o -maxdepth 1 -name '*.jpg' | wc -l) -ge 12 ]]; then
  echo "$OUT"
  exit 0
fi
for tool in apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || die "'$tool' not found (this script targets Debian 12)"
done
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
source "$ROOT/scripts/debs.sh"
deb=$(DEBS=$WORK deb_path "$PKG") # into the temporary folder: the .deb is not kept
dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$WORK" --wildcards "./$IMAGES/*" "./usr/share/doc/$PKG/copyright" ||
  die "could not unpack the images from $deb"
mkdir -p "$OUT.tmp"
for file in "$WORK/$IMAGES"/*; do
  [[ -f $file ]] && cp "$file" "$OUT.tmp/$(basename "$file" | tr ' ' '_')"
done
cp "$WORK/usr/share/doc/$PKG/copyright" "$OUT.tmp/copyright"
dpkg-deb -f "$deb" Version >"$OUT.tmp/VERSION"
rm -rf "$OUT" && mv "$OUT.tmp" "$OUT"
log "ready: $(ls "$OUT" | wc -l) files in $OUT"
echo "$OUT"
