"""Selection at export time: a small, safe filter language evaluated with pyarrow compute, and `export`.

Language (no Python is evaluated; anything else is a `FilterError` that says where and why):

    expr    := or
    or      := and ("or" and)*
    and     := not ("and" not)*
    not     := "not" not | primary
    primary := "(" expr ")" | operand [op operand] | NAME "is" ["not"] "null" | NAME ["not"] "in" "(" lit, ... ")"
    op      := < <= > >= == != (= means ==)
    operand := NAME | number | 'string' | "string" | true | false

`not` binds tighter than `and`, `and` tighter than `or`. A bare NAME is a boolean column (`dup_keep`). Names are
columns of the metadata or of a sidecar (`split`, `dup_cluster`, ...). Comparisons with a null value are null and
drop the row (SQL semantics), counted per clause as `null`.

Drop reasons: the top-level `and` clauses are evaluated in order; per clause, `failed` counts the rows it rejects on
its own, `null` how many of those were nulls, and `dropped` the rows it removed that the clauses before it had kept
(so `dropped` sums to the rows removed). They go to DEST/_stats.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toonlab.curate.sidecar import metadata_files, read_shard, sidecar_names, sidecar_schema


class FilterError(ValueError):
    """The filter text is not in the language, or does not fit the dataset's columns."""


_TOKEN = re.compile(
    r"\s*(?:(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)|(?P<str>'[^']*'|\"[^\"]*\")"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op><=|>=|==|!=|<|>|=)|(?P<punct>[(),]))"
)
_KEYWORDS = {"and", "or", "not", "is", "in", "null", "true", "false"}
_OPS = {"<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal, "==": pc.equal, "!=": pc.not_equal}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


@dataclass(frozen=True)
class Token:
    kind: str  # num, str, name, kw, op, punct, end
    value: Any
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if not match:
            start = len(text) - len(text[pos:].lstrip())
            char = text[start]
            hint = " (attribute access is not part of the filter language)" if char == "." else ""
            raise FilterError(f"unexpected {char!r} at column {start + 1}{hint}")
        kind = match.lastgroup
        raw = match.group(kind)
        start = match.start(kind)
        if kind == "num":
            value: Any = float(raw) if any(c in raw for c in ".eE") else int(raw)
        elif kind == "str":
            value = raw[1:-1]
        elif kind == "name" and raw.lower() in _KEYWORDS:
            kind, value = "kw", raw.lower()
        else:
            value = "==" if raw == "=" else raw
        tokens.append(Token(kind, value, start))
        pos = match.end()
    tokens.append(Token("end", None, len(text)))
    return tokens


# AST: ("or", [n...]) ("and", [n...]) ("not", n) ("cmp", op, a, b) ("col", name) ("lit", value)
#      ("isnull", name, negated) ("in", name, [values], negated) ("truth", name)
Node = tuple


class _Parser:
    def __init__(self, text: str) -> None:
        self.text, self.tokens, self.i = text, tokenize(text), 0

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def error(self, message: str, token: Token | None = None) -> FilterError:
        token = token or self.peek()
        return FilterError(f"{message} at column {token.pos + 1}: {self.text!r}")

    def expect(self, kind: str, value: Any = None) -> Token:
        token = self.peek()
        if token.kind != kind or (value is not None and token.value != value):
            found = "end of filter" if token.kind == "end" else repr(token.value)
            raise self.error(f"expected {value or kind}, found {found}")
        return self.take()

    def is_kw(self, word: str) -> bool:
        return self.peek().kind == "kw" and self.peek().value == word

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.error("empty filter")
        node = self.parse_or()
        if self.peek().kind != "end":
            raise self.error(f"unexpected {self.peek().value!r}")
        return node

    def parse_or(self) -> Node:
        items = [self.parse_and()]
        while self.is_kw("or"):
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else ("or", items)

    def parse_and(self) -> Node:
        items = [self.parse_not()]
        while self.is_kw("and"):
            self.take()
            items.append(self.parse_not())
        return items[0] if len(items) == 1 else ("and", items)

    def parse_not(self) -> Node:
        if self.is_kw("not"):
            self.take()
            return ("not", self.parse_not())
        return self.parse_primary()

    def parse_primary(self) -> Node:
        if self.peek().kind == "punct" and self.peek().value == "(":
            self.take()
            node = self.parse_or()
            self.expect("punct", ")")
            return node
        left_token = self.peek()
        left = self.operand()
        if left[0] == "col" and self.peek().kind == "punct" and self.peek().value == "(":
            raise self.error(f"function calls are not allowed ({left[1]}(...))")
        if left[0] == "col" and self.is_kw("is"):
            self.take()
            negated = self.is_kw("not") and bool(self.take())
            self.expect("kw", "null")
            return ("isnull", left[1], negated)
        if left[0] == "col" and (self.is_kw("in") or self.is_kw("not")):
            negated = self.is_kw("not") and bool(self.take())
            self.expect("kw", "in")
            self.expect("punct", "(")
            values = [self.literal()]
            while self.peek().kind == "punct" and self.peek().value == ",":
                self.take()
                values.append(self.literal())
            self.expect("punct", ")")
            return ("in", left[1], values, negated)
        if self.peek().kind == "op":
            op = self.take().value
            right = self.operand()
            if left[0] == "lit" and right[0] == "lit":
                raise self.error("a comparison needs at least one column", left_token)
            return ("cmp", op, left, right)
        if left[0] == "lit":
            raise self.error("a literal on its own is not a condition", left_token)
        return ("truth", left[1])

    def operand(self) -> Node:
        token = self.peek()
        if token.kind == "name":
            return ("col", self.take().value)
        return ("lit", self.literal())

    def literal(self) -> Any:
        token = self.take()
        if token.kind in ("num", "str"):
            return token.value
        if token.kind == "kw" and token.value in ("true", "false"):
            return token.value == "true"
        found = "end of filter" if token.kind == "end" else repr(token.value)
        raise self.error(f"expected a column, number, string, true or false, found {found}", token)


def parse(text: str) -> Node:
    """Filter text -> AST (tuples); raises FilterError with the column of the problem."""
    return _Parser(text).parse()


def columns_of(node: Node) -> set[str]:
    kind = node[0]
    if kind in ("and", "or"):
        return set().union(*(columns_of(n) for n in node[1]))
    if kind == "not":
        return columns_of(node[1])
    if kind == "cmp":
        return columns_of(node[2]) | columns_of(node[3])
    if kind == "col":
        return {node[1]}
    if kind in ("isnull", "in", "truth"):
        return {node[1]}
    return set()


def to_text(node: Node) -> str:
    """The AST back to filter text, parenthesised where needed (used to name clauses in the drop reasons)."""
    kind = node[0]
    if kind in ("and", "or"):
        return f" {kind} ".join(f"({to_text(n)})" if n[0] in ("and", "or") else to_text(n) for n in node[1])
    if kind == "not":
        inner = to_text(node[1])
        return f"not ({inner})" if node[1][0] in ("and", "or") else f"not {inner}"
    if kind == "cmp":
        return f"{to_text(node[2])} {node[1]} {to_text(node[3])}"
    if kind == "col":
        return node[1]
    if kind == "lit":
        return json.dumps(node[1]) if not isinstance(node[1], str) else repr(node[1])
    if kind == "isnull":
        return f"{node[1]} is {'not ' if node[2] else ''}null"
    if kind == "in":
        return f"{node[1]} {'not ' if node[3] else ''}in ({', '.join(to_text(('lit', v)) for v in node[2])})"
    return node[1]  # truth


def evaluate(node: Node, table: pa.Table) -> pa.ChunkedArray | pa.Array:
    """Boolean mask (nulls where a compared value is null) of `node` over `table`."""
    kind = node[0]
    try:
        if kind == "and":
            mask = evaluate(node[1][0], table)
            for item in node[1][1:]:
                mask = pc.and_kleene(mask, evaluate(item, table))
            return mask
        if kind == "or":
            mask = evaluate(node[1][0], table)
            for item in node[1][1:]:
                mask = pc.or_kleene(mask, evaluate(item, table))
            return mask
        if kind == "not":
            return pc.invert(evaluate(node[1], table))
        if kind == "cmp":
            op, left, right = node[1], node[2], node[3]
            if left[0] == "lit":  # 0.3 < x  ->  x > 0.3
                op, left, right = _FLIP[op], right, left
            rhs = table.column(right[1]) if right[0] == "col" else pa.scalar(right[1])
            return _OPS[op](table.column(left[1]), rhs)
        if kind == "isnull":
            mask = pc.is_null(table.column(node[1]))
            return pc.invert(mask) if node[2] else mask
        if kind == "in":
            mask = pc.is_in(table.column(node[1]), value_set=pa.array(node[2]))
            mask = pc.if_else(pc.is_null(table.column(node[1])), pa.scalar(None, pa.bool_()), mask)
            return pc.invert(mask) if node[3] else mask
        column = table.column(node[1])  # truth
        if not pa.types.is_boolean(column.type):
            raise FilterError(f"{node[1]} is {column.type}, not boolean: compare it (e.g. {node[1]} > 0)")
        return column
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise FilterError(f"cannot evaluate {to_text(node)!r}: {str(exc).splitlines()[0]}") from None


def clauses(node: Node) -> list[Node]:
    return list(node[1]) if node[0] == "and" else [node]


def dataset_columns(out: Path) -> list[str]:
    names = list(pq.read_schema(metadata_files(out)[0]).names)
    for sidecar in sidecar_names(out):
        names += [n for n in sidecar_schema(out, sidecar).names if n not in names]
    return names


def check_columns(node: Node, available: list[str]) -> None:
    missing = sorted(columns_of(node) - set(available))
    if missing:
        raise FilterError(f"unknown column(s) {', '.join(missing)}; the dataset has: {', '.join(available)}")


@dataclass
class ClauseCount:
    clause: str
    failed: int = 0
    null: int = 0
    dropped: int = 0


def select(table: pa.Table, parts: list[Node], counts: list[ClauseCount]) -> pa.Array:
    """The keep mask of `table` under the `and` of `parts`, adding each clause's drop counts to `counts`."""
    keep = pa.array([True] * len(table))
    for part, count in zip(parts, counts, strict=True):
        raw = evaluate(part, table)
        mask = pc.fill_null(raw, False)
        rejected = pc.invert(mask)
        count.failed += pc.sum(rejected).as_py() or 0
        count.null += raw.null_count
        count.dropped += pc.sum(pc.and_(keep, rejected)).as_py() or 0
        keep = pc.and_(keep, mask)
    return keep.combine_chunks() if isinstance(keep, pa.ChunkedArray) else keep


def _copy_samples(src: Path, dest: Path, keys: set[str]) -> int:
    """Copy every member of the selected samples (`<key>.<ext>`) from one tar to a new one; returns members."""
    copied = 0
    with tarfile.open(src) as source, tarfile.open(dest, "w", format=tarfile.USTAR_FORMAT) as target:
        for member in source:
            if member.isfile() and member.name.split(".", 1)[0] in keys:
                target.addfile(member, source.extractfile(member))
                copied += 1
    return copied


def export(out: Path, dest: Path, filter_text: str | None = None, fmt: str = "parquet") -> dict:
    """Write the rows of dataset `out` that pass `filter_text` (all rows without one) to `dest`.

    `fmt`: parquet (metadata with sidecar columns) or webdataset (that, plus the samples' tar members). The source
    is only read. `dest` is built under a temporary name and renamed into place; it must not exist (or be empty)."""
    if fmt not in ("parquet", "webdataset"):
        raise ValueError(f"--format must be parquet or webdataset, got {fmt!r}")
    out, dest = Path(out).resolve(), Path(dest).resolve()
    if dest == out or out in dest.parents or dest in out.parents:
        raise ValueError(f"--to {dest} must lie outside the source dataset {out} (and not contain it)")
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"--to {dest} already exists and is not empty")
    node = parse(filter_text) if filter_text and filter_text.strip() else None
    parts = clauses(node) if node else []
    if node:
        check_columns(node, dataset_columns(out))
    counts = [ClauseCount(to_text(p)) for p in parts]
    needed = sorted(columns_of(node)) if node else []

    work = dest.parent / f".{dest.name}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    (work / "metadata").mkdir(parents=True)
    if fmt == "webdataset":
        (work / "shards").mkdir()
    try:
        stats = _write_selection(out, work, parts, counts, needed, fmt)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)  # a failed export leaves nothing behind
        raise
    stats = {"source": str(out), "filter": filter_text or None, "format": fmt, **stats}
    (work / "_stats.json").write_text(json.dumps(stats, indent=2))
    if dest.exists():
        dest.rmdir()
    os.replace(work, dest)
    return stats


def _write_selection(
    out: Path, work: Path, parts: list[Node], counts: list[ClauseCount], needed: list[str], fmt: str
) -> dict:
    """Filter shard by shard into `work`; returns the counts."""
    rows_in = rows_out = members = 0
    shards_written = []
    for meta_file in metadata_files(out):
        keep = select(read_shard(out, meta_file, needed), parts, counts)
        rows_in += len(keep)
        kept = pc.sum(keep).as_py() or 0
        if not kept:
            continue
        table = read_shard(out, meta_file).filter(keep)
        pq.write_table(table, work / "metadata" / meta_file.name, compression="zstd")
        if fmt == "webdataset":
            tar = out / "shards" / f"{meta_file.stem}.tar"
            members += _copy_samples(tar, work / "shards" / tar.name, set(table.column("key").to_pylist()))
        rows_out += kept
        shards_written.append(meta_file.stem)
    return {
        "rows_in": rows_in,
        "rows_out": rows_out,
        "rows_dropped": rows_in - rows_out,
        "clauses": [c.__dict__ for c in counts],
        "shards": shards_written,
        "tar_members": members if fmt == "webdataset" else None,
        "sidecars_merged": sidecar_names(out),
    }
