"""The shard tar writer writes exactly the bytes `tarfile` writes (so every tar reader reads them), header by header
and archive by archive, including the cases it hands to `tarfile` (long names, oversized members)."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from toonlab.curate.tarwrite import TarAppender, member_bytes, ustar_header

NAMES = [
    "a.json",
    "v-1234abcd_0001_000012.jpg",
    "x" * 100,  # the longest name the name field holds
    "dir/" + "z" * 120,  # longer: tarfile splits it into its prefix field
    "y" * 101,  # longer, no directory to split at: tarfile refuses it
    "vidé_0001_000001.jpg",  # UTF-8
    "bad\udcff.jpg",  # undecodable byte from a file name, kept as tarfile keeps it
]
SIZES = [0, 1, 511, 512, 513, 30_000, 8**11 - 1, 8**11]


def _tarfile_header(name: str, size: int) -> bytes | str:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = size, 0
    try:
        return info.tobuf(tarfile.USTAR_FORMAT)
    except ValueError as exc:
        return f"ValueError: {exc}"


@pytest.mark.parametrize("name", NAMES)
def test_header_is_tarfiles(name):
    for size in SIZES:
        try:
            ours: bytes | str = ustar_header(name, size)
        except ValueError as exc:
            ours = f"ValueError: {exc}"
        assert ours == _tarfile_header(name, size), (name, size)


@pytest.mark.parametrize("count", [0, 1, 7, 40])
def test_archive_is_tarfiles(tmp_path, count):
    rng = random.Random(count)
    members = [(f"k_{i:06d}.{rng.choice(['jpg', 'json'])}", rng.randbytes(rng.randint(0, 3000))) for i in range(count)]
    with tarfile.open(tmp_path / "lib.tar", "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 0
            tar.addfile(info, io.BytesIO(data))
    ours = TarAppender(tmp_path / "ours.tar")
    taken = sum(ours.add(name, data) for name, data in members)
    ours.close()
    ours.close()  # a second close writes nothing
    assert (tmp_path / "ours.tar").read_bytes() == (tmp_path / "lib.tar").read_bytes()
    assert taken == ours.offset == sum(member_bytes(len(data)) for _, data in members)
    with tarfile.open(tmp_path / "ours.tar") as tar:
        assert [(m.name, tar.extractfile(m).read()) for m in tar] == members
