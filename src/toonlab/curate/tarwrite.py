"""Append-only writer of shard tars: the bytes `tarfile` writes (USTAR, mtime 0, mode 0644), made faster.

A shard member is a 512-byte header, the data, and zero padding to the next 512 bytes; the archive ends with two
zero blocks and is padded to a multiple of `tarfile.RECORDSIZE`. `tarfile.TarFile.addfile` spends ~26 us per
member building each header from a `TarInfo` (deep copy, field by field) and copies the data through a chunked
loop; a shard of 2,000 keyframes has 4,000 members, a 20,000-frame source ~26,000. Here a header is a template
with the name, size and checksum filled in, and the data goes straight to the file (no copy loop). Names over
100 bytes and sizes USTAR cannot hold in 11 octal digits take `tarfile`'s own header (its prefix field, or its
error). The output is byte-identical to `tarfile` (tests); `benchmarks/shard_bench.py` times both.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

BLOCK = tarfile.BLOCKSIZE  # 512
_TEMPLATE = tarfile.TarInfo("").tobuf(tarfile.USTAR_FORMAT)  # mode 0644, uid/gid 0, mtime 0, regular file
# POSIX ustar fields filled per member: name [0, 100), size [124, 136), checksum [148, 156); the rest is fixed
_MIDDLE, _AFTER_SIZE, _TAIL = _TEMPLATE[100:124], _TEMPLATE[136:148], _TEMPLATE[156:]
_FIXED_SUM = sum(_MIDDLE) + sum(_AFTER_SIZE) + sum(_TAIL) + 8 * ord(" ")  # the checksum counts its own field as spaces
_ZEROS = bytes(BLOCK)
_MAX_SIZE = 8**11  # 11 octal digits


def ustar_header(name: str, size: int) -> bytes:
    """The 512-byte header `tarfile` writes for a regular file `name` of `size` bytes with mtime 0."""
    raw = name.encode("utf-8", "surrogateescape")  # as tarfile encodes names
    if len(raw) > 100 or not 0 <= size < _MAX_SIZE:
        info = tarfile.TarInfo(name)
        info.size, info.mtime = size, 0
        return info.tobuf(tarfile.USTAR_FORMAT)
    size_field = b"%011o\0" % size
    checksum = _FIXED_SUM + sum(raw) + sum(size_field)
    return b"".join((raw.ljust(100, b"\0"), _MIDDLE, size_field, _AFTER_SIZE, b"%06o\0 " % checksum, _TAIL))


def member_bytes(size: int) -> int:
    """Bytes a member of `size` data bytes takes in the archive (header + data + padding)."""
    return BLOCK + -(-size // BLOCK) * BLOCK


class TarAppender:
    """Writes one tar file member by member; `close()` ends the archive as `tarfile` does."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fh = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.offset = 0  # bytes written

    def add(self, name: str, data: bytes) -> int:
        """Append one regular file; returns the bytes it takes in the archive."""
        self._fh.write(ustar_header(name, len(data)))
        self._fh.write(data)
        self._fh.write(_ZEROS[: -len(data) % BLOCK])
        taken = member_bytes(len(data))
        self.offset += taken
        return taken

    def close(self) -> None:
        if self._fh.closed:
            return
        end = self.offset + 2 * BLOCK
        self._fh.write(bytes(2 * BLOCK + -end % tarfile.RECORDSIZE))
        self._fh.close()
