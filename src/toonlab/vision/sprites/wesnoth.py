"""Battle for Wesnoth unit animations (`wesnoth-1.16-data`): unit `.cfg` files -> `Animation`s.

A unit type gives its name, race, gender(s), description and attacks; its animation tags (`[attack_anim]`,
`[idle_anim]`, `[defend]`, ...) hold `[frame]`s whose `image=` lists drawings with their durations in ms, in the
game's square-bracket shorthand (`archer-bow-attack[1~4].png:[75*2,100,130]` is four drawings of 75, 75, 100 and
130 ms). `[if]`/`[else]` branches (hit or miss, facing north or south) become separate animations. `[female]` and
`[variation]` blocks with animations of their own are variants of the same character (same unit type), since
they share drawings with it. Image path functions (`~CROP(...)`, `~RC(...)`) are dropped, except `~FL()`, which
mirrors. Only animations with at least `min_drawings` distinct drawings that all exist on disk are kept.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from pathlib import Path

from toonlab.vision.sprites import wml
from toonlab.vision.sprites.model import Animation, Drawing

PACKAGE = "wesnoth-1.16-data"
LICENCE = "GPL-2+"
DATA = Path("usr/share/games/wesnoth/1.16/data/core")

# animation tag -> (action label, plain phrase)
ACTIONS = {
    "attack_anim": ("attacking", "attacking"),
    "idle_anim": ("idling", "idling"),
    "standing_anim": ("standing", "standing ready"),
    "movement_anim": ("moving", "moving"),
    "defend": ("defending", "recoiling from a blow"),
    "death": ("dying", "collapsing and dying"),
    "healing_anim": ("healing", "casting a healing spell"),
    "healed_anim": ("healed", "being healed"),
    "leading_anim": ("leading", "rallying its allies"),
    "recruit_anim": ("appearing", "appearing"),
    "levelin_anim": ("levelling", "glowing as it grows stronger"),
    "victory_anim": ("celebrating", "celebrating a victory"),
    "pre_movement_anim": ("taking off", "taking off"),
    "post_movement_anim": ("landing", "landing"),
    "draw_weapon_anim": ("drawing weapon", "drawing its weapon"),
    "sheath_weapon_anim": ("sheathing weapon", "putting its weapon away"),
    "poisoned_anim": ("poisoned", "reeling from poison"),
}
ONE_SHOT = {"death", "recruit_anim", "levelin_anim", "draw_weapon_anim", "sheath_weapon_anim", "pre_movement_anim"}
# race -> plain noun (no game-specific names)
RACES = {
    "bats": "bat",
    "drake": "winged dragon-like warrior",
    "dwarf": "dwarf",
    "elf": "elf",
    "falcon": "bird of prey",
    "goblin": "goblin",
    "gryphon": "gryphon",
    "human": "human",
    "dunefolk": "desert-dwelling human",
    "lizard": "lizard-like warrior",
    "mechanical": "machine",
    "merman": "merfolk warrior with a fish tail",
    "monster": "monster",
    "naga": "snake-bodied warrior",
    "ogre": "ogre",
    "orc": "orc",
    "troll": "troll",
    "undead": "undead creature",
    "wolf": "wolf",
    "wose": "walking tree creature",
    "horse": "horse",
}


def direction_label(filter_value: str) -> str:
    """A `direction=` filter (e.g. `s,se,sw`, `ne`) -> the way the drawings face: right, up-right, away, ..."""
    ways = {w.strip() for w in filter_value.split(",") if w.strip()}
    if not ways or "se" in ways:
        return "right"
    for key, label in (("ne", "up-right"), ("nw", "up-left"), ("sw", "left"), ("n", "away"), ("s", "towards")):
        if key in ways:
            return label
    return "right"


def expand_brackets(value: str) -> list[str] | None:
    """Wesnoth's square-bracket expansion: `a[1~3].png:[50*2,100]` -> three values (None if the groups disagree)."""
    groups = re.findall(r"\[([^\[\]]*)\]", value)
    if not groups:
        return [value]
    lists = [_bracket_items(g) for g in groups]
    if any(items is None for items in lists) or len({len(items) for items in lists}) != 1:
        return None
    out = []
    for i in range(len(lists[0])):
        parts = iter([items[i] for items in lists])
        out.append(re.sub(r"\[([^\[\]]*)\]", lambda _m, parts=parts: next(parts), value))
    return out


def _bracket_items(group: str) -> list[str] | None:
    items: list[str] = []
    for item in group.split(","):
        item = item.strip()
        base, star, times = item.partition("*")
        count = int(times) if star and times.isdigit() else 1
        lo, tilde, hi = base.partition("~")
        if tilde and lo.lstrip("-").isdigit() and hi.lstrip("-").isdigit():
            a, b = int(lo), int(hi)
            width = len(lo) if lo.startswith("0") and len(lo) > 1 else 0
            step = 1 if b >= a else -1
            values = [str(n).zfill(width) for n in range(a, b + step, step)]
        elif tilde:
            return None
        else:
            values = [base]
        items.extend(v for v in values for _ in range(count))
    return items


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside parentheses."""
    out, depth, cur = [], 0, []
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == sep and depth == 0:
            out.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    out.append("".join(cur))
    return [p.strip() for p in out if p.strip()]


def parse_image(item: str) -> tuple[str, bool, float | None]:
    """`units/a.png~FL()~RC(magenta>red):120` -> ("units/a.png", True, 120.0)."""
    duration = None
    match = re.search(r":(\d+(?:\.\d+)?)$", item)
    if match:
        duration = float(match.group(1))
        item = item[: match.start()]
    path, _, functions = item.partition("~")
    flip = bool(re.search(r"(^|~)FL\((|horiz|horizontal)\)", functions))
    return path.strip(), flip, duration


def frame_drawings(frame: wml.Tag) -> list[tuple[str, bool, float]] | None:
    """One `[frame]` -> its drawings (path, flip, ms); None when it cannot be read."""
    image = frame.keys.get("image", "")
    if not image:
        return []
    images = expand_brackets(image)
    durations = expand_brackets(frame.keys.get("duration", "")) if "duration" in frame.keys else None
    if images is None or (durations is not None and len(durations) not in (1, len(images))):
        return None
    default = None
    if "begin" in frame.keys and "end" in frame.keys:
        try:
            default = float(frame.keys["end"]) - float(frame.keys["begin"])
        except ValueError:
            default = None
    out = []
    for i, value in enumerate(images):
        for item in _split_top(value):
            path, flip, ms = parse_image(item)
            if ms is None and durations is not None:
                ms = _number(durations[i if len(durations) > 1 else 0])
            ms = ms if ms is not None else default
            if ms is None:
                return None  # no duration anywhere: timing unknown, do not invent one
            out.append((path, flip, ms))
    return out


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def variants(anim: wml.Tag, limit: int = 4) -> list[tuple[list[tuple[str, bool, float]], str]]:
    """The frame sequences of an animation tag, one per combination of its `[if]`/`[else]` branches
    (at most `limit`), each with its direction filter ("" when none)."""
    pieces: list[list[tuple[list[wml.Tag], str]]] = []  # per position, alternatives (frames, direction)
    for child in anim.children:
        if child.name == "frame":
            pieces.append([([child], "")])
        elif child.name == "if":
            pieces.append([(child.all("frame"), child.keys.get("direction", ""))])
        elif child.name == "else" and pieces and len(pieces[-1]) >= 1 and pieces[-1][0][0] is not None:
            pieces[-1].append((child.all("frame"), child.keys.get("direction", "")))
    out = []
    for combo in itertools.islice(itertools.product(*pieces), limit):
        drawings: list[tuple[str, bool, float]] = []
        direction = anim.keys.get("direction", "")
        ok = True
        for frames, branch_direction in combo:
            direction = branch_direction or direction
            for frame in frames:
                got = frame_drawings(frame)
                if got is None:
                    ok = False
                    break
                drawings.extend(got)
        if ok and drawings:
            out.append((drawings, direction))
    return out


def _attack_phrase(anim: wml.Tag, attacks: dict[str, wml.Tag]) -> tuple[str, dict[str, str]]:
    filt = anim.first("filter_attack")
    name = (filt.keys.get("name", "") if filt else "").split(",")[0].strip()
    attack = attacks.get(name)
    if attack is None:
        rng = filt.keys.get("range", "") if filt else ""
        return ("attacking" + (f" at {rng} range" if rng else ""), {"attack": name, "attack_range": rng})
    words = (attack.keys.get("description") or name).lower()
    rng = attack.keys.get("range", "")
    verb = "shooting" if rng == "ranged" else "striking with"
    extra = {"attack": words, "attack_range": rng, "attack_type": attack.keys.get("type", "")}
    return f"{verb} {_with_article(words)}", extra


def _article(noun: str) -> str:
    """ "a"/"an" for a singular noun phrase, "" for a plural one ("claws", "fangs")."""
    if noun.endswith("s") and not noun.endswith("ss"):
        return ""
    return "an" if noun[:1].lower() in "aeiou" else "a"


def _with_article(noun: str) -> str:
    return f"{_article(noun)} {noun}".strip()


def _appearance(race: str, gender: str, attacks: dict[str, wml.Tag]) -> str:
    """`gender` is "" for a unit type drawn in one gender only (the default, male, says nothing about the art)."""
    noun = RACES.get(race, "creature")
    who = f"{gender} {noun}" if gender else noun
    weapons = []
    for attack in attacks.values():
        words = (attack.keys.get("description") or attack.keys.get("name", "")).lower()
        if words and words not in weapons:
            weapons.append(words)
    armed = f" armed with {' and '.join(_with_article(w) for w in weapons[:3])}" if weapons else ""
    return f"{_with_article(who)}{armed}"


def _drawings(items: list[tuple[str, bool, float]], images: Path) -> list[Drawing] | None:
    out = []
    for path, flip, ms in items:
        file = images / path
        if not path or ".." in Path(path).parts or Path(path).is_absolute() or not file.is_file():
            return None
        out.append(Drawing(file, ms, flip))
    return out


def unit_animations(unit: wml.Tag, images: Path, min_drawings: int = 3) -> Iterator[Animation]:
    """Every usable animation of one `[unit_type]` (and of its `[female]` and `[variation]` blocks)."""
    uid = unit.keys.get("id", "")
    if not uid:
        return
    race = unit.keys.get("race", "")
    description = unit.keys.get("description", "").strip()
    base_gender = unit.keys.get("gender", "male").split(",")[0].strip() or "male"
    blocks = [(unit, base_gender)]
    blocks += [(b, b.keys.get("gender", "female")) for b in unit.all("female")]
    blocks += [(v, v.keys.get("variation_id", "variation")) for v in unit.all("variation")]
    attacks = {a.keys.get("name", ""): a for a in unit.all("attack")}
    for block, variant in blocks:
        own_attacks = {a.keys.get("name", ""): a for a in block.all("attack")} or attacks
        gender = variant if variant in ("male", "female") else base_gender
        both = "," in unit.keys.get("gender", "") or bool(unit.all("female"))
        appearance = _appearance(block.keys.get("race", race), gender if both else "", own_attacks)
        counts: dict[str, int] = {}
        seen: set[tuple[Drawing, ...]] = set()  # hit/miss branches often differ only in sound
        for anim in block.children:
            if anim.name not in ACTIONS:
                continue
            action, phrase = ACTIONS[anim.name]
            extra: dict[str, str] = {}
            if anim.name == "attack_anim":
                phrase, extra = _attack_phrase(anim, own_attacks)
            for items, direction in variants(anim):
                drawings = _drawings(items, images)
                if drawings is None or len({(d.image, d.flip) for d in drawings}) < min_drawings:
                    continue
                if tuple(drawings) in seen:
                    continue
                seen.add(tuple(drawings))
                n = counts[action] = counts.get(action, 0) + 1
                slug = re.sub(r"[^a-z0-9]+", "-", f"{uid} {variant} {action} {extra.get('attack', '')} {n}".lower())
                labels = {
                    "character": uid,
                    "variant": variant,
                    "kind": race or "unknown",
                    "action": action,
                    "direction": direction_label(direction),
                    "package": PACKAGE,
                    "licence": LICENCE,
                    **extra,
                }
                yield Animation(
                    clip_id=f"wesnoth-{slug.strip('-')}",
                    drawings=drawings,
                    labels=labels,
                    appearance=appearance,
                    action_phrase=phrase,
                    description=description,
                    loops=anim.name not in ONE_SHOT,
                    extra={"team_colour": "1"},
                )


def read(root: Path, min_drawings: int = 3) -> Iterator[Animation]:
    """All unit animations under an unpacked `wesnoth-1.16-data` (the folder holding `usr/`)."""
    data = Path(root) / DATA
    macros = wml.load_macros(data / "macros")
    for cfg in sorted((data / "units").rglob("*.cfg")):
        try:
            tree = wml.read_file(cfg, macros)
        except wml.WMLError:
            continue
        for unit in tree.all("unit_type"):
            yield from unit_animations(unit, data / "images", min_drawings)
