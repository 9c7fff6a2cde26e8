"""Export filters: the parser (precedence, clear errors, no calls or attributes), drop counts, source untouched."""

from __future__ import annotations

import hashlib
import json
import tarfile

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from toonlab.curate.sidecar import write_sidecar
from toonlab.curate.steps.export import FilterError, evaluate, export, parse, to_text

TABLE = pa.table(
    {
        "text_prob": [0.0, 0.05, 0.5, None, 0.02, 0.9],
        "dynamic_score": [0.5, 0.2, 0.9, 0.7, 0.35, 0.1],
        "rating": ["general", "general", "sensitive", "general", None, "explicit"],
        "dup_keep": [True, False, True, True, True, True],
    }
)


def mask(text: str) -> list:
    return evaluate(parse(text), TABLE).to_pylist()


def test_precedence_not_and_or():
    assert parse("a < 1 or b > 2 and not c") == (
        "or",
        [
            ("cmp", "<", ("col", "a"), ("lit", 1)),
            ("and", [("cmp", ">", ("col", "b"), ("lit", 2)), ("not", ("truth", "c"))]),
        ],
    )
    assert parse("(a < 1 or b > 2) and c")[0] == "and"
    assert to_text(parse("not (a = 1 or b != 'x')")) == "not (a == 1 or b != 'x')"


def test_evaluation_with_nulls_literals_left_and_sets():
    assert mask("text_prob < 0.1 and dynamic_score > 0.3") == [True, False, False, None, True, False]
    assert mask("0.3 < dynamic_score") == [True, False, True, True, True, False]  # literal on the left flips
    assert mask("text_prob is null") == [False, False, False, True, False, False]
    assert mask("rating in ('general', 'sensitive')") == [True, True, True, True, None, False]
    assert mask("rating not in ('general')") == [False, False, True, False, None, True]
    assert mask("dup_keep and not rating == 'explicit'") == [True, False, True, True, None, False]
    assert mask("dynamic_score >= 1e-1 or text_prob > .8") == [True, True, True, True, True, True]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("__import__('os')", "function calls are not allowed"),
        ("len(rating) > 2", "function calls are not allowed"),
        ("row.text_prob < 1", "attribute access"),
        ("text_prob < 0.1 and", "expected a column"),
        ("(text_prob < 0.1", "expected \\)"),
        ("text_prob < 0.1 dynamic_score", "unexpected 'dynamic_score'"),
        ("1 < 2", "at least one column"),
        ("", "empty filter"),
        ("text_prob ; 1", "unexpected ';' at column 11"),
        ("rating in (general)", "expected a column, number, string"),
    ],
)
def test_parser_errors_are_clear(text, message):
    with pytest.raises(FilterError, match=message):
        parse(text)


def test_type_errors_are_filter_errors():
    with pytest.raises(FilterError, match="cannot evaluate 'rating < 3'"):
        evaluate(parse("rating < 3"), TABLE)
    with pytest.raises(FilterError, match="not boolean"):
        evaluate(parse("text_prob"), TABLE)


def _dataset(root):
    """Two shards of three rows, with tar samples, plus a sidecar column; returns the file digests."""
    for shard in range(2):
        rows = TABLE.slice(3 * shard, 3).to_pylist()
        keys = [f"v{shard}_{i:04d}" for i in range(3)]
        table = pa.table(
            {"identifier": [f"v{shard}:{i}" for i in range(3)], "key": keys, **pa.Table.from_pylist(rows).to_pydict()}
        )
        (root / "metadata").mkdir(parents=True, exist_ok=True)
        (root / "shards").mkdir(exist_ok=True)
        pq.write_table(table.drop_columns(["dup_keep"]), root / "metadata" / f"{shard:05d}.parquet")
        with tarfile.open(root / "shards" / f"{shard:05d}.tar", "w") as tar:
            for key in keys:
                for ext in ("json", "000001.jpg"):
                    path = root / "member"
                    path.write_bytes(key.encode())
                    tar.add(path, f"{key}.{ext}")
                    path.unlink()
        sidecar = pa.table({"identifier": table.column("identifier"), "dup_keep": table.column("dup_keep")})
        yield f"{shard:05d}", sidecar


def _digests(root):
    return {
        p.relative_to(root): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_export_counts_and_leaves_source_untouched(tmp_path):
    src = tmp_path / "src"
    write_sidecar(src, "dup_cluster", dict(_dataset(src)), {})
    before = _digests(src)
    stats = export(src, tmp_path / "sel", "text_prob < 0.1 and dynamic_score > 0.3 and dup_keep", "webdataset")
    assert _digests(src) == before
    assert (stats["rows_in"], stats["rows_out"]) == (6, 2)
    assert stats["clauses"] == [
        {"clause": "text_prob < 0.1", "failed": 3, "null": 1, "dropped": 3},
        {"clause": "dynamic_score > 0.3", "failed": 2, "null": 0, "dropped": 1},
        {"clause": "dup_keep", "failed": 1, "null": 0, "dropped": 0},
    ]
    assert json.loads((tmp_path / "sel" / "_stats.json").read_text())["rows_out"] == 2
    kept = pq.read_table(tmp_path / "sel" / "metadata").to_pydict()
    assert kept["identifier"] == ["v0:0", "v1:1"] and kept["dup_keep"] == [True, True]
    with tarfile.open(tmp_path / "sel" / "shards" / "00001.tar") as tar:
        assert tar.getnames() == ["v1_0001.json", "v1_0001.000001.jpg"]


def test_export_refuses_bad_destinations_and_unknown_columns(tmp_path):
    src = tmp_path / "src"
    write_sidecar(src, "dup_cluster", dict(_dataset(src)), {})
    with pytest.raises(ValueError, match="outside the source"):
        export(src, src / "inner")
    with pytest.raises(FilterError, match="unknown column.*aesthetic_score"):
        export(src, tmp_path / "sel", "aesthetic_score > 0.5")
    assert not (tmp_path / "sel").exists()
    with pytest.raises(FilterError, match="cannot evaluate"):  # fails while writing: nothing is left behind
        export(src, tmp_path / "sel", "rating < 3")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]
    stats = export(src, tmp_path / "all")  # no filter: everything, parquet only
    assert stats["rows_out"] == 6 and not (tmp_path / "all" / "shards").exists()
    with pytest.raises(ValueError, match="not empty"):
        export(src, tmp_path / "all")
