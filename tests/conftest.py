"""Shared fixtures: the real cartoon media fetched by scripts/fetch_media.sh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fetched(folder: str, needed: tuple[str, ...], fetch: str) -> Path:
    """`$TOONLAB_MEDIA/<folder>` (default `.cache/media/<folder>`) when it holds every `needed` entry.

    Missing media skips the test locally; under CI it is an error, because CI must run the real-media tests.
    """
    path = Path(os.environ.get("TOONLAB_MEDIA") or ROOT / ".cache" / "media") / folder
    if not all((path / name).exists() for name in needed):
        message = f"real media not found in {path}; fetch it with: {fetch}"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message} (CI=true: real-media tests must run)", pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Folder of real clips plus manifest.json: `$TOONLAB_MEDIA/clips`, default `.cache/media/clips`."""
    return _fetched("clips", ("manifest.json",), "bash scripts/fetch_media.sh")


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    """Real recorded speech (hedgewars voice packs, fillets-ng dialogue): `$TOONLAB_MEDIA/speech`."""
    return _fetched("speech", ("hedgewars", "fillets"), "bash scripts/fetch_speech.sh")


@pytest.fixture(scope="session")
def sprites_dir() -> Path:
    """Unpacked sprite packages (Wesnoth, SuperTux, Frozen Bubble): `$TOONLAB_MEDIA/sprites`."""
    packages = ("wesnoth-1.16-data", "supertux-data", "frozen-bubble-data")
    return _fetched("sprites", tuple(f"{p}/VERSION" for p in packages), "bash scripts/fetch_sprites.sh")
