"""Near-duplicates on real curated shards: a re-encode at another size and codec clusters with its original, a clip
with other drawings does not; then the dataset-wide steps chained through the CLI."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pyarrow.parquet as pq
import pytest
from synth import ShotSpec, write_clip
from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.curate.config import CurateConfig
from toonlab.curate.run import run_curate
from toonlab.curate.sidecar import read_dataset
from toonlab.curate.steps.dedup import cluster, phash, run_dedup


@pytest.fixture(scope="module")
def curated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dups")
    shot = [ShotSpec(36, 2, seed=41)]
    write_clip(folder / "orig.mp4", shot)
    write_clip(folder / "reupload.avi", shot, size=(416, 312), codec="mpeg4")  # other size, codec and quality
    write_clip(folder / "other.mp4", [ShotSpec(36, 2, seed=42)])
    out = tmp_path_factory.mktemp("dataset")
    run_curate([str(folder)], out, CurateConfig(shard_max_samples=2))  # two shards: clusters span shards
    return out


def _by_video(out):
    table = read_dataset(out).to_pylist()
    return {row["video_id"].split("-")[0]: row for row in table}


def test_reencode_clusters_other_drawing_does_not(curated):
    stats = run_dedup(curated)
    rows = _by_video(curated)
    assert set(rows) == {"orig", "reupload", "other"} and len(list((curated / "metadata").glob("*.parquet"))) == 2
    assert rows["orig"]["dup_cluster"] is not None
    assert rows["orig"]["dup_cluster"] == rows["reupload"]["dup_cluster"]
    assert rows["orig"]["dup_size"] == 2 and rows["orig"]["dup_keep"] != rows["reupload"]["dup_keep"]
    assert rows["other"]["dup_cluster"] is None and rows["other"]["dup_size"] == 1 and rows["other"]["dup_keep"]
    assert stats["clusters"] == 1 and stats["shots_dropped_by_dup_keep"] == 1
    again = run_dedup(curated)  # a rerun reuses the stored hashes and gives the same answer
    assert again["hashes_reused"] == 3 and _by_video(curated) == rows


def test_phash_is_robust_to_scale_but_not_to_content():
    rng = np.random.default_rng(0)
    image = (rng.random((120, 160, 3)) * 255).astype(np.uint8).repeat(4, 0).repeat(4, 1)  # blocky, like cels
    half = image[::2, ::2]
    other = np.ascontiguousarray(image[::-1])
    distance = lambda a, b: bin(phash(a) ^ phash(b)).count("1")  # noqa: E731
    assert distance(image, half) <= 4 and distance(image, other) > 20
    assert phash(np.full((64, 64), 128, np.uint8)) is None  # flat frames carry no identity


def test_cluster_is_transitive_and_skips_large_buckets():
    # found by LSH with probability 0.9996 (2 bits) and ~1 (1 bit); positions are fixed, so the result is too
    base = np.uint64(0x0123456789ABCDEF)
    near = base ^ np.uint64(0b11)  # 2 bits away
    nearer = near ^ np.uint64(0b1 << 40)  # 3 from base, 1 from near
    far = ~base
    roots, counts = cluster([np.array([base]), np.array([nearer]), np.array([far]), np.array([near])], 2)
    assert roots.tolist() == [0, 0, 2, 0]  # base-near-nearer chain, far alone
    same = [np.array([base]) for _ in range(5)]
    roots, counts = cluster(same, 3, max_bucket=4)
    assert roots.tolist() == [0, 1, 2, 3, 4] and counts["skipped_buckets"] == 1  # one frame in 5 > 4 shots


def test_cli_dedup_split_export_chain(curated, tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["dedup", str(curated)]).exit_code == 0
    result = runner.invoke(app, ["split", str(curated), "--val", "0.3", "--test", "0.3", "--seed", "3"])
    assert result.exit_code == 0, result.output
    splits = pq.read_table(curated / "columns" / "split").to_pylist()
    by_id = {r["identifier"].split("-")[0]: r["split"] for r in splits}
    assert by_id["orig"] == by_id["reupload"]  # near-duplicates never straddle splits
    dest = tmp_path / "kept"
    args = ["export", str(curated), "--to", str(dest), "--filter", "dup_keep", "--format", "webdataset"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    stats = json.loads((dest / "_stats.json").read_text())
    assert (stats["rows_in"], stats["rows_out"]) == (3, 2)
    keys = set(pq.read_table(dest / "metadata").column("key").to_pylist())
    members = set()
    for tar in (dest / "shards").glob("*.tar"):
        with tarfile.open(tar) as t:
            members |= {name.split(".", 1)[0] for name in t.getnames()}
    assert members == keys
    bad = runner.invoke(app, ["export", str(curated), "--to", str(tmp_path / "x"), "--filter", "open('f')"])
    assert bad.exit_code == 2 and "function calls are not allowed" in bad.output


def test_lsh_finds_planted_reencodes_among_many_shots():
    rng = np.random.default_rng(5)
    hashes = [rng.integers(0, 2**64, 4, dtype=np.uint64) for _ in range(5000)]
    planted = []
    for source in range(50):  # copies with 0-3 flipped bits per frame: a re-encode's typical distance
        flips = [sum(1 << int(b) for b in rng.choice(64, rng.integers(0, 4), replace=False)) for _ in range(4)]
        hashes.append(hashes[source] ^ np.array(flips, np.uint64))
        planted.append((source, len(hashes) - 1))
    roots, counts = cluster(hashes)
    assert all(roots[a] == roots[b] for a, b in planted)
    assert len(set(roots.tolist())) == 5000 and counts["matched_pairs"] == 50  # and no random pair merged
