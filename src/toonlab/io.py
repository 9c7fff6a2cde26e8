"""The shared toolbelt: file names from untrusted text, atomic writes, retry with backoff."""

from __future__ import annotations

import hashlib
import re

_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def safe_name(text: str, max_len: int = 80) -> str:
    """A single path component made from untrusted text (a metadata key, a shard name): only `[A-Za-z0-9_-]`,
    at most `max_len` characters, never empty, `.` or `..`. Text that had to change gets 8 hex digits of its
    hash, so two different texts never share a name."""
    cleaned = _UNSAFE.sub("_", text)[:max_len].strip("_")
    if cleaned == text and cleaned:
        return cleaned
    return f"{cleaned[: max_len - 9] or 'x'}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
