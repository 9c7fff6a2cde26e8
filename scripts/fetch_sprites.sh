#!/usr/bin/env bash
# Fetch the artist-made sprite animations of three Debian games into a git-ignored cache, for
# `toonlab vision build-sprites OUT` (a labelled set of real hand-drawn animation).
#
#   scripts/fetch_sprites.sh  -> .cache/media/sprites/wesnoth-1.16-data/usr/share/games/wesnoth/1.16/data/core/
#                                    {units,macros,images/units}/   (unit .cfg files, WML macros, unit drawings)
#                                .cache/media/sprites/supertux-data/usr/share/games/supertux2/images/
#                                    {creatures,tiles/<6 tile sets>}/   (.sprite files, drawings, background tiles)
#                                .cache/media/sprites/frozen-bubble-data/usr/share/games/frozen-bubble/gfx/pinguins/
#                                each with its usr/share/doc/PKG/copyright and a VERSION file
#
# Downloads 330 MB of .debs (wesnoth-1.16-data 146 MB, supertux-data 162 MB, frozen-bubble-data 22 MB) into
# .cache/media/debs, shared with the other fetch scripts, with `apt-get download` (never installed), and unpacks
# about 56 MB. About 15 s to download on a fast mirror and 40 s to unpack (measured on a loaded 2-core machine).
# Idempotent: a package whose folder has its VERSION file is skipped; each is unpacked into a temporary folder
# and renamed, so an interrupted run is redone, never half-used.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEDIA=${TOONLAB_MEDIA:-$ROOT/.cache/media}
DEBS=$MEDIA/debs
SPRITES=$MEDIA/sprites

log() { printf 'fetch_sprites: %s\n' "$*" >&2; }
die() {
  printf 'fetch_sprites: ERROR: %s\n' "$*" >&2
  exit 1
}
for tool in apt-get dpkg-deb tar; do
  command -v "$tool" >/dev/null || die "'$tool' not found (this script targets Debian 12)"
done
mkdir -p "$DEBS" "$SPRITES"

source "$ROOT/scripts/debs.sh" # deb_path PKG

unpack() { # PKG MEMBER_GLOB... : unpack the members (paths inside the package) into $SPRITES/PKG
  local pkg=$1
  shift
  [[ -s $SPRITES/$pkg/VERSION ]] && return 0
  local deb tmp=$SPRITES/.$pkg.partial
  deb=$(deb_path "$pkg")
  rm -rf "$tmp" && mkdir -p "$tmp"
  log "unpacking $pkg"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards "${@/#/./}" "./usr/share/doc/$pkg/copyright" ||
    die "could not unpack $pkg ($deb)"
  dpkg-deb -f "$deb" Version >"$tmp/VERSION"
  rm -rf "${SPRITES:?}/$pkg" && mv "$tmp" "$SPRITES/$pkg"
  log "ready: $pkg ($(du -sh "$SPRITES/$pkg" | cut -f1))"
}

WESNOTH=usr/share/games/wesnoth/1.16/data/core
unpack wesnoth-1.16-data "$WESNOTH/units/*" "$WESNOTH/macros/*" "$WESNOTH/images/units/*"
SUPERTUX=usr/share/games/supertux2/images
unpack supertux-data "$SUPERTUX/creatures/*" "$SUPERTUX"/tiles/{castle,forest,jungle,lava,water,blocks}/"*"
unpack frozen-bubble-data "usr/share/games/frozen-bubble/gfx/pinguins/*"
echo "$SPRITES"
