"""A small reader for Wesnoth Markup Language: macro preprocessing, then a tree of tags and keys.

Enough of WML for unit files: `#define NAME ARGS ... #enddef` (with `#arg NAME default #endarg` optional
arguments), `{NAME arg ...}` substitution (arguments split on whitespace, grouped by quotes, parentheses and
nested braces), `#ifdef`/`#ifndef`/`#else`/`#endif` against a set of defined symbols, `#textdomain` and comments
dropped, `_ "translatable"` strings, `+` string concatenation across lines, `[+tag]` amendments merged into the
previous tag of that name. File inclusions (`{path/}`) and undefined macros expand to nothing. Substitution depth
and output size are bounded, so a self-referencing or exploding macro is an error, not a hang.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

MAX_DEPTH = 64
MAX_CHARS = 2_000_000


class WMLError(ValueError):
    """Malformed WML (unbalanced tags, runaway macros)."""


@dataclass
class Macro:
    params: list[str]
    body: str
    optional: dict[str, str] = field(default_factory=dict)


@dataclass
class Tag:
    """One `[name] ... [/name]` block: its keys (last assignment wins) and child tags in order."""

    name: str
    keys: dict[str, str] = field(default_factory=dict)
    children: list[Tag] = field(default_factory=list)

    def all(self, name: str) -> list[Tag]:
        return [c for c in self.children if c.name == name]

    def first(self, name: str) -> Tag | None:
        return next((c for c in self.children if c.name == name), None)


def _strip_comment(line: str) -> str:
    """Drop a `#` comment that is outside a quoted string (preprocessor lines are handled before this)."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == "#" and not quoted:
            return line[:i]
    return line


def collect_macros(text: str, macros: dict[str, Macro] | None = None) -> dict[str, Macro]:
    """Add every `#define` of `text` to `macros` (a new dict when None) and return it."""
    macros = {} if macros is None else macros
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        head = lines[i].strip()
        i += 1
        if not head.startswith("#define "):
            continue
        name, *params = head[len("#define ") :].split("#", 1)[0].split()
        body: list[str] = []
        optional: dict[str, str] = {}
        while i < len(lines) and not lines[i].strip().startswith("#enddef"):
            line = lines[i]
            i += 1
            if "#enddef" in line:  # `value#enddef` closes the macro on its last line
                body.append(line.split("#enddef", 1)[0])
                i -= 1
                lines[i] = "#enddef"
                continue
            if line.strip().startswith("#arg "):
                arg = line.strip()[5:].strip()
                default: list[str] = []
                while i < len(lines) and not lines[i].strip().startswith("#endarg"):
                    default.append(lines[i])
                    i += 1
                i += 1
                optional[arg] = "\n".join(default).strip()
                continue
            if not line.strip().startswith("#"):  # comments and nested directives are dropped
                body.append(_strip_comment(line))
        i += 1
        macros[name] = Macro(params, "\n".join(body), optional)
    return macros


def _split_args(text: str) -> list[str]:
    """`A "b c" (d e) {F g}` -> ['A', 'b c', 'd e', '{F g}']."""
    args, cur, depth_paren, depth_brace, quoted = [], [], 0, 0, False
    for ch in text:
        if ch == '"' and not depth_brace:
            quoted = not quoted
            if depth_paren:
                cur.append(ch)
            continue
        if not quoted:
            if ch == "(" and not depth_brace:
                depth_paren += 1
                if depth_paren == 1:
                    continue
            elif ch == ")" and not depth_brace and depth_paren:
                depth_paren -= 1
                if depth_paren == 0:
                    continue
            elif ch == "{":
                depth_brace += 1
            elif ch == "}":
                depth_brace -= 1
            elif ch.isspace() and not depth_paren and not depth_brace:
                if cur:
                    args.append("".join(cur))
                    cur = []
                continue
        cur.append(ch)
    if cur:
        args.append("".join(cur))
    return args


def _find_close(text: str, start: int) -> int:
    """Index of the `}` matching the `{` at `start` (-1 when unbalanced)."""
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
    return -1


def expand(text: str, macros: dict[str, Macro], depth: int = 0) -> str:
    """Substitute every `{NAME args}` in `text` (recursively)."""
    if depth > MAX_DEPTH:
        raise WMLError("macro expansion nested too deeply (a macro that refers to itself?)")
    out: list[str] = []
    pos = 0
    total = 0
    while True:
        start = text.find("{", pos)
        if start < 0:
            out.append(text[pos:])
            break
        end = _find_close(text, start)
        if end < 0:
            raise WMLError("unbalanced '{' in WML")
        out.append(text[pos:start])
        call = text[start + 1 : end].strip()
        pos = end + 1
        name, _, rest = call.partition(" ")
        macro = macros.get(name.strip())
        if macro is None:
            continue  # a file inclusion or an unknown macro: nothing
        values = _split_args(rest)
        optional = dict(macro.optional)
        positional = []
        for value in values:
            key, eq, val = value.partition("=")
            if eq and key in optional:
                optional[key] = val
            else:
                positional.append(value)
        bound = dict(zip(macro.params, positional, strict=False))
        bound.update(optional)
        body = macro.body
        for param, value in bound.items():
            body = body.replace("{" + param + "}", expand(value, macros, depth))
        piece = expand(body, macros, depth + 1)
        total += len(piece)
        if total > MAX_CHARS:
            raise WMLError(f"macro expansion exceeds {MAX_CHARS} characters")
        out.append(piece)
    return "".join(out)


def preprocess(text: str, macros: dict[str, Macro], defines: frozenset[str] = frozenset()) -> str:
    """Drop directives and inactive `#ifdef` branches, collect local `#define`s, then expand macros."""
    local = collect_macros(text, dict(macros))
    kept: list[str] = []
    active: list[bool] = []
    in_define = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#define "):
            in_define = True
            continue
        if in_define:
            in_define = "#enddef" not in line
            continue
        if line.startswith(("#ifdef ", "#ifndef ", "#ifhave ", "#ifnhave ", "#ifver ", "#ifnver ")):
            word, _, symbol = line.partition(" ")
            hit = symbol.split()[0] in defines if symbol.split() else False
            active.append(hit if word in ("#ifdef", "#ifhave", "#ifver") else not hit)
            continue
        if line.startswith("#else"):
            if active:
                active[-1] = not active[-1]
            continue
        if line.startswith("#endif"):
            if active:
                active.pop()
            continue
        if not all(active):
            continue
        kept.append(_strip_comment(raw))
    return expand("\n".join(kept), local)


_TAG = re.compile(r"^\[(/?)(\+?)([A-Za-z0-9_]+)\]$")


def _value(text: str) -> str:
    """A key's right-hand side: `_ "a" + "b"` -> `ab`; unquoted text is stripped."""
    parts = re.findall(r'"((?:[^"]|"")*)"', text)
    if parts:
        return "".join(p.replace('""', '"') for p in parts)
    return text.strip()


def _statements(text: str) -> list[str]:
    """Logical lines: a quoted string may span lines; a trailing `+` continues the value."""
    out: list[str] = []
    buf = ""
    for line in text.splitlines():
        buf = f"{buf}\n{line}" if buf else line
        if buf.count('"') % 2:
            continue
        if buf.rstrip().endswith("+"):
            continue
        if buf.strip():
            out.append(buf.strip())
        buf = ""
    if buf.strip():
        out.append(buf.strip())
    return out


def parse(text: str) -> Tag:
    """Preprocessed WML text -> a root `Tag` whose children are the top-level tags."""
    root = Tag("")
    stack = [root]
    for stmt in _statements(text):
        match = _TAG.match(stmt)
        if match:
            closing, amend, name = match.groups()
            if closing:
                if len(stack) == 1 or stack[-1].name != name:
                    raise WMLError(f"[/{name}] closes [{stack[-1].name or 'nothing'}]")
                stack.pop()
                continue
            parent = stack[-1]
            previous = parent.all(name)
            if amend and previous:
                tag = previous[-1]
            else:
                tag = Tag(name)
                parent.children.append(tag)
            stack.append(tag)
            continue
        key, eq, rhs = stmt.partition("=")
        if eq and re.fullmatch(r"[A-Za-z0-9_, ]+", key.strip()):
            names = [k.strip() for k in key.split(",")]
            values = [_value(rhs)] if len(names) == 1 else [v.strip() for v in _value(rhs).split(",")]
            for i, k in enumerate(names):
                stack[-1].keys[k] = values[i] if i < len(values) else ""
    if len(stack) != 1:
        raise WMLError(f"[{stack[-1].name}] is never closed")
    return root


def load_macros(folder: Path) -> dict[str, Macro]:
    """Every `#define` in the `.cfg` files of `folder` (sorted, so later files win like the game's load order)."""
    macros: dict[str, Macro] = {}
    for path in sorted(Path(folder).glob("*.cfg")):
        collect_macros(path.read_text(encoding="utf-8", errors="replace"), macros)
    return macros


def read_file(path: Path, macros: dict[str, Macro], defines: frozenset[str] = frozenset()) -> Tag:
    """Parse one WML file with the given macros."""
    return parse(preprocess(Path(path).read_text(encoding="utf-8", errors="replace"), macros, defines))
