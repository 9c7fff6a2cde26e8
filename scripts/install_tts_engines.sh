#!/usr/bin/env bash
# Install the speech engines and voices that `toonlab tts corpus` renders with, and the `fortunes` sayings
# it takes its sentences from (Debian, run as root).
# Idempotent and non-interactive: adds the contrib/non-free apt source (mbrola voices, pico) only when missing,
# then installs every package that exists in the index and names, loudly, any that does not.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
  echo "install_tts_engines.sh: run as root (apt-get needs it)" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive

PACKAGES=(
  espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1
  flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts
  libttspico-utils sox fortunes
)

# contrib + non-free components (mbrola and its voices are contrib, pico is non-free).
codename=""
if [ -r /etc/os-release ]; then
  # shellcheck disable=SC1091
  . /etc/os-release
  codename="${VERSION_CODENAME:-}"
fi
have_contrib() {
  grep -rhsE '^[^#]*(Components:.*\bcontrib\b|deb .*\bcontrib\b)' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    >/dev/null 2>&1
}
if [ "${ID:-}" = "debian" ] && [ -n "$codename" ] && ! have_contrib; then
  echo "install_tts_engines.sh: adding contrib/non-free source for $codename"
  cat > /etc/apt/sources.list.d/contrib-nonfree.sources <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $codename
Components: contrib non-free
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
fi

apt-get -o DPkg::Lock::Timeout=300 update -q

available=()
missing=()
for pkg in "${PACKAGES[@]}"; do
  if apt-cache show "$pkg" >/dev/null 2>&1; then
    available+=("$pkg")
  else
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "!!! install_tts_engines.sh: NOT AVAILABLE in the apt index, skipped: ${missing[*]}" >&2
fi
apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${available[@]}"
echo "install_tts_engines.sh: installed ${available[*]}"
