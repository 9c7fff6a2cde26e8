"""Per-source spool files: encoded keyframes and clips go to disk as they are made, not into memory.

A worker appends each encoded member to its source's spool file and keeps only a `Blob` (offset, size); the
writer copies the bytes into the shard and deletes the spool. Memory stays flat whatever the video's length.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from toonlab.curate.records import Blob


class Spool:
    """Append-only file of one source's shard members. Not thread-safe: the encode queue's threads take turns."""

    def __init__(self, folder: Path | None = None, path: Path | None = None) -> None:
        """A new spool in `folder`, or reopen an existing one at `path` to append to it."""
        if path is None:
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{uuid.uuid4().hex}.spool"
        self.path = path
        self._fh = open(path, "ab")  # noqa: SIM115 - closed by close()
        self._offset = self._fh.tell()

    def put(self, data: bytes, ext: str) -> Blob:
        self._fh.write(data)
        blob = Blob(offset=self._offset, size=len(data), ext=ext)
        self._offset += len(data)
        return blob

    def close(self) -> None:
        self._fh.close()

    def discard(self) -> None:
        self._fh.close()
        self.path.unlink(missing_ok=True)
