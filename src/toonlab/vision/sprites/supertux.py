"""SuperTux creature animations (`supertux-data`): `.sprite` files -> `Animation`s.

A `.sprite` file is an S-expression: `(supertux-sprite (action (name "walk-left") (fps 14) (images "a.png" ...))
(action (name "walk-right") (mirror-action "walk-left")) ...)`. Every drawing of an action is shown 1000 / fps
ms (SuperTux's default is 10 fps when `fps` is absent); `mirror-action` reuses another action's drawings
mirrored left-right, `clone-action` reuses them as they are. The direction is the action name's `-left` /
`-right` suffix; the character is the creature's folder (Tux's costumes, e.g. `fire-walk-left`, are variants of
one character). Appearances are plain descriptions written for each creature, with no proper names.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from toonlab.vision.sprites.model import Animation, Drawing

PACKAGE = "supertux-data"
LICENCE = "GPL-3+"
IMAGES = Path("usr/share/games/supertux2/images")
DEFAULT_FPS = 10.0
MAX_BYTES = 1_000_000

# creature folder -> (kind, appearance); the names are the game's, the words are ours
CREATURES: dict[str, tuple[str, str]] = {
    "angrystone": ("stone", "an angry stone block with a face"),
    "bag": ("object", "a small hopping sack"),
    "bouncing_snowball": ("snow", "a bouncing snowball with a face"),
    "bsod": ("snow", "a small round snow creature"),
    "crystallo": ("ice", "a crystal creature"),
    "dart": ("trap", "a flying dart"),
    "darttrap": ("trap", "a dart-shooting trap"),
    "dispenser": ("trap", "a cannon that launches creatures"),
    "fatbat": ("animal", "a fat bat"),
    "fish": ("animal", "a jumping fish"),
    "flame": ("fire", "a floating flame"),
    "flame_fish": ("fire", "a fish made of fire"),
    "flying_snowball": ("snow", "a flying snowball with a propeller"),
    "ghosttree": ("plant", "a haunted tree"),
    "ghoul": ("ghost", "a floating ghost"),
    "gold_bomb": ("bomb", "a golden walking bomb"),
    "haywire": ("bomb", "a walking bomb with a burning fuse"),
    "icecrusher": ("ice", "a heavy block of ice with a face"),
    "igel": ("animal", "a hedgehog"),
    "jumpy": ("snow", "a jumping creature"),
    "kirby": ("animal", "a round pink creature"),
    "kugelblitz": ("fire", "a ball of lightning"),
    "laptop": ("object", "a small laptop computer"),
    "leafshot": ("plant", "a leaf that shoots"),
    "livefire": ("fire", "a living flame"),
    "mole": ("animal", "a mole"),
    "mr_bomb": ("bomb", "a walking bomb"),
    "mr_candle": ("fire", "a walking candle"),
    "mr_cherry": ("plant", "a walking cherry"),
    "mr_iceblock": ("ice", "a walking ice cube"),
    "mr_tree": ("plant", "a walking tree"),
    "nolok": ("villain", "a large crowned villain"),
    "owl": ("animal", "an owl"),
    "penny": ("penguin", "a female penguin"),
    "plant": ("plant", "a walking plant"),
    "poison_ivy": ("plant", "a walking poisonous leaf"),
    "short_fuse": ("bomb", "a small bomb with a short fuse"),
    "skullyhop": ("ghost", "a hopping skull"),
    "skydive": ("bomb", "a bomb falling with a parachute"),
    "snail": ("animal", "a snail"),
    "snowball": ("snow", "a walking snowball"),
    "snowjumpy": ("snow", "a jumping snowball"),
    "snowman": ("snow", "a snowman"),
    "spidermite": ("animal", "a small spider"),
    "spike": ("trap", "a spike"),
    "spiky": ("animal", "a spiky walking creature"),
    "stalactite": ("ice", "an icy stalactite"),
    "toad": ("animal", "a toad"),
    "totem": ("object", "a wooden totem"),
    "tumbleweed": ("plant", "a rolling tumbleweed"),
    "tux": ("penguin", "a penguin"),
    "walkingleaf": ("plant", "a walking leaf"),
    "willowisp": ("ghost", "a glowing wisp of light"),
    "yeti": ("animal", "a big furry yeti"),
    "zeekling": ("animal", "a small flying dragon"),
}
# first word of a Tux action name -> what the penguin wears
COSTUMES = {
    "big": "",
    "small": "small ",
    "fire": "fire-helmeted ",
    "ice": "ice-capped ",
    "air": "aviator-capped ",
    "earth": "miner-helmeted ",
    "santa": "red-hatted ",
}
PHRASES = {
    "": "walking",
    "walk": "walking",
    "stand": "standing",
    "idle": "idling",
    "jump": "jumping",
    "fall": "falling",
    "duck": "ducking",
    "skid": "skidding",
    "kick": "kicking",
    "fly": "flying",
    "flying": "flying",
    "swim": "swimming",
    "swimming": "swimming",
    "swimjump": "leaping out of the water",
    "climbing": "climbing",
    "buttjump": "slamming down to the ground",
    "backflip": "doing a backflip",
    "walljump": "jumping off a wall",
    "floating": "floating",
    "melting": "melting",
    "ground-melting": "melting on the ground",
    "squished": "being squashed flat",
    "flat": "lying flat",
    "iced": "frozen in ice",
    "ticking": "about to explode",
    "explosion": "exploding",
    "burning": "burning",
    "sleeping": "sleeping",
    "waking": "waking up",
    "attack": "attacking",
    "charge": "charging",
    "dead": "dying",
    "hit": "being hit",
    "roll": "rolling",
    "rolling": "rolling",
    "collapse": "collapsing",
    "run": "running",
    "grow": "growing",
    "fade": "fading away",
    "vanishing": "vanishing",
    "dizzy": "dizzy",
    "recovering": "recovering",
    "appearing": "appearing",
    "peeking": "peeking out",
    "warping": "warping away",
    "extinguish": "going out",
    "loading": "loading",
    "normal": "moving",
    "active": "moving",
}
SKIP = {"editor"}  # icons for the level editor, not animations
OVERLAYS = {"powerups", "light"}  # drawn over another sprite (Tux's helmets, glows), not characters on their own


def tokenize(text: str) -> list[str]:
    return re.findall(r'\(|\)|"(?:[^"\\]|\\.)*"|[^\s()"]+', text)


def parse_sexpr(text: str) -> list:
    """S-expression text -> nested lists of strings (quoted strings lose their quotes). Raises ValueError."""
    stack: list[list] = [[]]
    for token in tokenize(text):
        if token == "(":
            stack.append([])
        elif token == ")":
            if len(stack) == 1:
                raise ValueError("unbalanced ')' in sprite file")
            done = stack.pop()
            stack[-1].append(done)
        else:
            stack[-1].append(token[1:-1] if token.startswith('"') else token)
    if len(stack) != 1:
        raise ValueError("unbalanced '(' in sprite file")
    return stack[0]


def _fields(action: list) -> dict[str, list]:
    return {item[0]: item[1:] for item in action[1:] if isinstance(item, list) and item and isinstance(item[0], str)}


def read_sprite(path: Path) -> dict[str, dict]:
    """A `.sprite` file -> {action name: {"images": [Path], "fps": float, "flip": bool}}, mirrors and clones
    resolved. Actions that point at a missing action or image are left out."""
    path = Path(path)
    if path.stat().st_size > MAX_BYTES:
        raise ValueError(f"{path} is larger than {MAX_BYTES} bytes")
    tree = parse_sexpr(path.read_text(encoding="utf-8", errors="replace"))
    if not tree or not isinstance(tree[0], list) or tree[0][:1] != ["supertux-sprite"]:
        raise ValueError(f"{path} is not a supertux-sprite file")
    raw = {}
    for item in tree[0][1:]:
        if isinstance(item, list) and item[:1] == ["action"]:
            fields = _fields(item)
            name = str((fields.get("name") or ["default"])[0])
            raw[name] = fields
    actions: dict[str, dict] = {}
    for name, fields in raw.items():
        flip = False
        source = fields
        for key in ("mirror-action", "clone-action"):
            if key in fields:
                source = raw.get(str(fields[key][0]), {})
                flip = key == "mirror-action"
                break
        names = [i for i in source.get("images", []) if isinstance(i, str)]
        if not names or any(".." in Path(n).parts or Path(n).is_absolute() for n in names):
            continue
        images = [path.parent / n for n in names]
        if not all(i.is_file() for i in images):
            continue
        fps = _fps(fields.get("fps") or source.get("fps"))
        actions[name] = {"images": images, "fps": fps, "flip": flip}
    return actions


def _fps(value: list | None) -> float:
    try:
        fps = float(value[0]) if value else DEFAULT_FPS
    except (TypeError, ValueError):
        return DEFAULT_FPS
    return fps if fps > 0 else DEFAULT_FPS


def split_action(name: str) -> tuple[str, str]:
    """`walk-left` -> ("walk", "left"); `left` -> ("", "left"); `explosion` -> ("explosion", "")."""
    match = re.fullmatch(r"(.*?)-?(left|right)", name)
    return (match.group(1), match.group(2)) if match else (name, "")


def sprite_animations(path: Path, creature: str, min_drawings: int = 3) -> Iterator[Animation]:
    kind, appearance = CREATURES.get(creature, ("creature", "a small creature"))
    for name, action in read_sprite(path).items():
        if len(set(action["images"])) < min_drawings or name in SKIP:
            continue
        base, direction = split_action(name)
        variant = path.stem
        if creature == "tux" and base.split("-")[0] in COSTUMES:
            costume, _, base = base.partition("-")
            variant = costume
            look = f"a {COSTUMES[costume]}penguin"
        else:
            look = appearance
        phrase = PHRASES.get(base) or PHRASES.get(base.split("-")[0]) or base.replace("-", " ").replace("_", " ")
        ms = 1000.0 / action["fps"]
        drawings = [Drawing(image, ms, action["flip"]) for image in action["images"]]
        slug = re.sub(r"[^a-z0-9]+", "-", f"{creature} {path.stem} {name}".lower()).strip("-")
        labels = {
            "character": creature,
            "variant": variant,
            "kind": kind,
            "action": base or "walk",
            "direction": direction or "none",
            "package": PACKAGE,
            "licence": LICENCE,
        }
        yield Animation(f"supertux-{slug}", drawings, labels, look, phrase, align="topleft")


def read(root: Path, min_drawings: int = 3) -> Iterator[Animation]:
    """All creature animations under an unpacked `supertux-data` (the folder holding `usr/`)."""
    creatures = Path(root) / IMAGES / "creatures"
    for sprite in sorted(creatures.rglob("*.sprite")):
        creature = sprite.relative_to(creatures).parts[0]
        if sprite.stem in OVERLAYS or sprite.stem.endswith(("-overlay", "-glow", "-light")):
            continue
        try:
            yield from sprite_animations(sprite, creature, min_drawings)
        except (OSError, ValueError):
            continue
