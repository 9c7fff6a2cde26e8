"""The `--filter` language: Python's expression grammar (parsed by `ast`) cut down to a whitelist of nodes, and
evaluated with pyarrow compute. No Python is ever evaluated.

    text_prob < 0.1 and dynamic_score > 0.3 and dup_keep
    not (rating in ('explicit', 'questionable') or aesthetic_score is null)
    0.2 <= dynamic_score < 0.8                  (a chain is the `and` of its comparisons)

Allowed: `and`, `or`, `not`; comparisons `< <= > >= == !=` (`=` means `==`) between a column and a literal or two
columns; `NAME is [not] null`; `NAME [not] in (literal, ...)`; a bare NAME for a boolean column (`dup_keep`).
Literals: numbers (int64 range, finite), strings, `true`, `false`. Keywords in any case. Anything else (calls,
attributes, arithmetic, subscripts, ...) is a `FilterError` that names the construct and its column. Limits keep a
hostile filter cheap: at most `MAX_LENGTH` characters, `MAX_DEPTH` levels of nesting, `MAX_CONDITIONS` conditions,
`MAX_SET` values in one `in`, `MAX_STRING` characters in one string literal.

Names are columns of the metadata or of a sidecar (`split`, `dup_cluster`, ...). Comparisons with a null value are
null and drop the row (SQL semantics), counted per clause as `null`. Drop reasons: the top-level `and` clauses are
evaluated in order; per clause, `failed` counts the rows it rejects on its own, `null` how many of those were
nulls, and `dropped` the rows it removed that the clauses before it had kept (so `dropped` sums to the rows removed).
"""

from __future__ import annotations

import ast
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from toonlab.curate.sidecar import metadata_files, sidecar_names, sidecar_schema

MAX_LENGTH = 4000
MAX_DEPTH = 24
MAX_CONDITIONS = 200
MAX_SET = 1000
MAX_STRING = 1000
_INT64 = (-(2**63), 2**63 - 1)


class FilterError(ValueError):
    """The filter text is not in the language, or does not fit the dataset's columns."""


# AST: ("or", [n...]) ("and", [n...]) ("not", n) ("cmp", op, a, b) ("col", name) ("lit", value)
#      ("isnull", name, negated) ("in", name, [values], negated) ("truth", name)
Node = tuple

_OPS = {"<": pc.less, "<=": pc.less_equal, ">": pc.greater, ">=": pc.greater_equal, "==": pc.equal, "!=": pc.not_equal}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_CMP = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "==", ast.NotEq: "!="}
_WORDS = {"and": "and", "or": "or", "not": "not", "is": "is", "in": "in", "null": "None", "true": "True"}
_WORDS["false"] = "False"
# a string literal, a word, or a single `=` (not part of ==, <=, >=, !=)
_LEXEME = re.compile(r"""(?P<str>'[^']*'|"[^"]*")|(?P<word>[A-Za-z_][A-Za-z0-9_]*)|(?P<eq>(?<![<>=!])=(?!=))""")
_CONSTRUCTS = {
    ast.Call: "function calls are not allowed",
    ast.Attribute: "attribute access is not part of the filter language",
    ast.Subscript: "subscripts are not part of the filter language",
    ast.BinOp: "arithmetic is not part of the filter language",
}


class _Converter:
    """Python AST (from `ast.parse`) -> our tuple AST, refusing every node outside the whitelist."""

    def __init__(self, text: str, lead: int, inserted: list[int]) -> None:
        self.text, self.lead, self.inserted, self.conditions = text, lead, inserted, 0

    def column(self, node: ast.AST) -> int:
        """1-based column in the user's text of a node of the parsed text (which lost `lead` leading spaces)."""
        return _user_column(getattr(node, "col_offset", 0) + self.lead, self.inserted)

    def error(self, message: str, node: ast.AST) -> FilterError:
        return FilterError(f"{message} at column {self.column(node)}: {self.text!r}")

    def refuse(self, node: ast.AST) -> FilterError:
        message = next((m for kind, m in _CONSTRUCTS.items() if isinstance(node, kind)), None)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            message = f"function calls are not allowed ({node.func.id}(...))"
        return self.error(message or f"{type(node).__name__} is not part of the filter language", node)

    def condition(self, node: ast.AST, depth: int = 0) -> Node:
        if depth > MAX_DEPTH:
            raise self.error(f"the filter nests deeper than {MAX_DEPTH} levels", node)
        if isinstance(node, ast.BoolOp):
            kind = "and" if isinstance(node.op, ast.And) else "or"
            return (kind, [self.condition(v, depth + 1) for v in node.values])
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ("not", self.condition(node.operand, depth + 1))
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise self.error(f"the filter has more than {MAX_CONDITIONS} conditions", node)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            return ("truth", node.id)
        if isinstance(node, ast.Constant | ast.UnaryOp):
            raise self.error("a literal on its own is not a condition", node)
        raise self.refuse(node)

    def compare(self, node: ast.Compare) -> Node:
        parts, left = [], node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            parts.append(self.one_comparison(left, op, right))
            left = right
        return parts[0] if len(parts) == 1 else ("and", parts)

    def one_comparison(self, left: ast.AST, op: ast.cmpop, right: ast.AST) -> Node:
        if isinstance(op, ast.Is | ast.IsNot):
            if not (isinstance(left, ast.Name) and isinstance(right, ast.Constant) and right.value is None):
                raise self.error("`is` takes a column and null (`x is null`, `x is not null`)", left)
            return ("isnull", left.id, isinstance(op, ast.IsNot))
        if isinstance(op, ast.In | ast.NotIn):
            if not isinstance(left, ast.Name):
                raise self.error("`in` takes a column on its left", left)
            items = right.elts if isinstance(right, ast.Tuple | ast.List) else [right]
            if len(items) > MAX_SET:
                raise self.error(f"`in` takes at most {MAX_SET} values", right)
            return ("in", left.id, [self.literal(v) for v in items], isinstance(op, ast.NotIn))
        a, b = self.operand(left), self.operand(right)
        if a[0] == "lit" and b[0] == "lit":
            raise self.error("a comparison needs at least one column", left)
        return ("cmp", _CMP[type(op)], a, b)

    def operand(self, node: ast.AST) -> Node:
        if isinstance(node, ast.Name):
            return ("col", node.id)
        return ("lit", self.literal(node))

    def literal(self, node: ast.AST) -> Any:
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
            sign, node = (-1 if isinstance(node.op, ast.USub) else 1), node.operand
            if not (isinstance(node, ast.Constant) and type(node.value) in (int, float)):
                raise self.error("a sign applies to a number only", node)
        if not isinstance(node, ast.Constant):
            if isinstance(node, ast.Name):
                raise self.error(f"expected a number, string, true or false, found the name {node.id!r}", node)
            raise self.refuse(node)
        value = node.value
        if value is None:
            raise self.error("null compares with `is null` / `is not null`", node)
        if type(value) is int:
            if not _INT64[0] <= sign * value <= _INT64[1]:
                raise self.error("integer literal outside the 64-bit range", node)
            return sign * value
        if type(value) is float:
            if not math.isfinite(value):
                raise self.error("number literal too large (not finite)", node)
            return sign * value
        if type(value) is bool:
            return value
        if type(value) is str:
            if len(value) > MAX_STRING:
                raise self.error(f"string literal longer than {MAX_STRING} characters", node)
            return value
        raise self.error(f"{type(value).__name__} literals are not part of the filter language", node)


def _python_spelling(text: str) -> tuple[str, list[int]]:
    """Our spelling -> Python's: keywords lower-cased, null/true/false as None/True/False, a single `=` as `==`.
    Returns the text and the offsets (in it) of the characters inserted, to give columns in the user's text."""
    out, inserted, pos = [], [], 0
    for match in _LEXEME.finditer(text):
        out.append(text[pos : match.start()])
        if match.lastgroup == "word":
            word = match.group()
            out.append(_WORDS.get(word.lower(), word))
        elif match.lastgroup == "eq":
            inserted.append(sum(map(len, out)))
            out.append("==")
        else:
            out.append(match.group())
        pos = match.end()
    out.append(text[pos:])
    return "".join(out), inserted


def parse(text: str) -> Node:
    """Filter text -> AST (tuples); raises FilterError naming the problem and its column."""
    if len(text) > MAX_LENGTH:
        raise FilterError(f"the filter is {len(text)} characters long; at most {MAX_LENGTH} are allowed")
    flat = re.sub(r"\s", " ", text)  # one line, same columns
    if not flat.strip():
        raise FilterError("empty filter")
    python, inserted = _python_spelling(flat)
    stripped = python.lstrip()
    lead = len(python) - len(stripped)
    try:
        tree = ast.parse(stripped, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(text, lead, inserted, exc) from None
    except (RecursionError, MemoryError):
        raise FilterError(f"the filter nests deeper than {MAX_DEPTH} levels") from None
    return _Converter(text, lead, inserted).condition(tree.body)


def _user_column(offset: int, inserted: list[int]) -> int:
    """0-based offset in the rewritten text -> 1-based column in the user's text."""
    return offset - sum(1 for p in inserted if p < offset) + 1


def _syntax_error(text: str, lead: int, inserted: list[int], exc: SyntaxError) -> FilterError:
    message = exc.msg or ""
    if "too many nested" in message:
        return FilterError(f"the filter nests deeper than {MAX_DEPTH} levels: {text[:80]!r}...")
    if "never closed" in message:
        return FilterError(f"expected ')' to close a '(': {text!r}")
    if "unmatched" in message:
        return FilterError(f"unmatched ')': {text!r}")
    if not exc.offset or exc.lineno != 1 or exc.offset - 1 + lead >= len(text) + len(inserted):
        return FilterError(f"the filter ends early: expected a column, number, string, true or false: {text!r}")
    column = _user_column(exc.offset - 1 + lead, inserted)
    if message.startswith("unterminated string"):
        return FilterError(f"unterminated string at column {column}: {text!r}")
    found = (text[column - 1 :].split(" ", 1)[0] or text[column - 1])[:40]
    return FilterError(f"unexpected {found!r} at column {column}: {text!r}")


def columns_of(node: Node) -> set[str]:
    kind = node[0]
    if kind in ("and", "or"):
        return set().union(*(columns_of(n) for n in node[1]))
    if kind == "not":
        return columns_of(node[1])
    if kind == "cmp":
        return columns_of(node[2]) | columns_of(node[3])
    if kind in ("col", "isnull", "in", "truth"):
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
        if kind in ("and", "or"):
            combine = pc.and_kleene if kind == "and" else pc.or_kleene
            mask = evaluate(node[1][0], table)
            for item in node[1][1:]:
                mask = combine(mask, evaluate(item, table))
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
