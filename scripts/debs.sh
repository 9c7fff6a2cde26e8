# Sourced by the fetch scripts: `deb_path PKG` prints the path of PKG's .deb in $DEBS, downloading it with
# `apt-get download` (never installed) when missing. The download goes to $DEBS/.partial first and is moved in
# whole, so an interrupted one is never taken for the package; a failed download is retried once after
# `apt-get update` when running as root. The caller defines `log`, `die` and DEBS.

APT_UPDATED=${APT_UPDATED:-0}
deb_path() { # PKG -> path of the downloaded .deb (downloads it when missing)
  local pkg=$1 found
  found=$(compgen -G "$DEBS/${pkg}_*.deb" | head -n1 || true)
  if [[ -z $found ]]; then
    log "downloading Debian package $pkg"
    local part=$DEBS/.partial
    rm -rf "$part" && mkdir -p "$part"
    if ! (cd "$part" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2); then
      if [[ $APT_UPDATED == 0 && $EUID == 0 ]]; then
        log "apt-get download $pkg failed; refreshing package lists and retrying"
        apt-get update -q >&2 || die "apt-get update failed while fetching $pkg"
        APT_UPDATED=1
        (cd "$part" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2) ||
          die "apt-get download $pkg failed (is it in Debian bookworm main? check: apt-cache show $pkg)"
      else
        die "apt-get download $pkg failed (check: apt-cache show $pkg; as root try: apt-get update)"
      fi
    fi
    mv "$part"/"${pkg}"_*.deb "$DEBS"/
    rmdir "$part"
    found=$(compgen -G "$DEBS/${pkg}_*.deb" | head -n1)
  fi
  printf '%s\n' "$found"
}
