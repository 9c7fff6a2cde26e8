"""Shared fixtures: the real cartoon media fetched by scripts/fetch_media.sh."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def media_dir() -> Path:
    """Folder of real clips plus manifest.json: `$TOONLAB_MEDIA/clips`, default `.cache/media/clips`.

    Missing media skips the test locally; under CI it is an error, because CI must run the real-media tests.
    """
    clips = Path(os.environ.get("TOONLAB_MEDIA") or ROOT / ".cache" / "media") / "clips"
    if not (clips / "manifest.json").is_file():
        message = f"real media not found in {clips}; fetch it with: bash scripts/fetch_media.sh"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"{message} (CI=true: real-media tests must run)", pytrace=False)
        pytest.skip(message)
    return clips
