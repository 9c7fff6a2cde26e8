"""`toonlab vision build-sprites OUT`: sprite packages -> rendered clips -> a curated, labelled, split dataset.

Steps (each resumable: a rerun renders only missing clips and curates only new sources):
1. read every package found under the sprites folder (`scripts/fetch_sprites.sh` fills it): one folder per
   Debian package, holding its unpacked `usr/`;
2. plan clips: each animation, plus its mirror image for Wesnoth units (the game flips a unit that turns round),
   once per background style (plain colour, real SuperTux tile), the colour or tile picked by a hash of the clip;
3. render them to `OUT/sprite_clips/*.mp4` (24 fps, holds honoured) and write `OUT/sprite_labels.parquet`;
4. `toonlab curate` the clips into OUT, join the labels per shot (sidecar `sprite_labels`), then dedup and split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from toonlab.vision.sprites import captions, frozen_bubble, labels, render, supertux, timing, wesnoth
from toonlab.vision.sprites.groups import character_groups
from toonlab.vision.sprites.model import Animation, mirrored

READERS: dict[str, Callable[[Path, int], Iterator[Animation]]] = {
    wesnoth.PACKAGE: wesnoth.read,
    supertux.PACKAGE: supertux.read,
    frozen_bubble.PACKAGE: frozen_bubble.read,
}
MIRRORED = {wesnoth.PACKAGE}
COLOURS = [(158, 200, 230), (196, 222, 170), (236, 214, 170), (210, 190, 226), (200, 200, 200), (120, 140, 170)]
TILE_FOLDERS = ("castle", "forest", "jungle", "lava", "water", "blocks")
CLIPS_DIR = "sprite_clips"


@dataclass(frozen=True)
class BuildConfig:
    size: int = 256  # output frame side, pixels
    min_seconds: float = 2.0  # clips shorter than this loop (or hold their last drawing)
    backgrounds: tuple[str, ...] = ("plain", "tiled")
    mirror: bool = True
    min_drawings: int = 3
    limit: int | None = None  # animations per package (quick runs)
    workers: int = 1


@dataclass(frozen=True)
class ClipJob:
    anim: Animation
    background: render.Background
    dest: Path


def find_tiles(root: Path) -> list[Path]:
    """Opaque, textured 32x32 SuperTux tiles (ground, walls, water), for tiled backgrounds."""
    base = Path(root) / supertux.PACKAGE / supertux.IMAGES / "tiles"
    tiles = []
    for folder in TILE_FOLDERS:
        for png in sorted((base / folder).glob("*.png")):
            try:
                rgba = render.load_rgba(png)
            except (OSError, ValueError):
                continue
            if rgba.shape[:2] == (32, 32) and rgba[..., 3].min() == 255 and rgba[..., :3].std() >= 8:
                tiles.append(png)
    return tiles


def read_animations(root: Path, config: BuildConfig) -> list[Animation]:
    """Every animation of every package present under `root` (mirrors added where the game mirrors)."""
    anims: list[Animation] = []
    for package, reader in READERS.items():
        folder = Path(root) / package
        if not (folder / "usr").is_dir():
            continue
        found = list(reader(folder, config.min_drawings))[: config.limit]
        anims.extend(found)
        if config.mirror and package in MIRRORED:
            anims.extend(mirrored(a) for a in found)
    linked = character_groups(anims)
    for anim in anims:
        anim.labels["character_group"] = linked[anim.labels["character"]]
    return anims


def _pick(clip_id: str, n: int) -> int:
    return int.from_bytes(hashlib.sha256(clip_id.encode()).digest()[:4], "big") % n


def plan(anims: list[Animation], tiles: list[Path], out: Path, config: BuildConfig) -> list[ClipJob]:
    jobs = []
    for anim in anims:
        for style in config.backgrounds:
            if style == "tiled" and not tiles:
                continue
            clip_id = f"{anim.clip_id}-{style}"
            colour = COLOURS[_pick(clip_id, len(COLOURS))]
            tile = tiles[_pick(clip_id + "tile", len(tiles))] if style == "tiled" else None
            jobs.append(ClipJob(anim, render.Background(colour, tile), Path(out) / CLIPS_DIR / f"{clip_id}.mp4"))
    return jobs


def _render(job: ClipJob, config: BuildConfig) -> str | None:
    """Render one clip unless it exists; returns an error message or None."""
    if job.dest.is_file() and job.dest.stat().st_size > 0:
        return None
    try:
        render.render_clip(job.anim, job.dest, job.background, config.size, config.min_seconds * 1000)
    except (OSError, ValueError) as exc:
        return f"{job.dest.stem}: {exc}"
    return None


def _row(job: ClipJob, config: BuildConfig, root: Path) -> dict:
    anim = job.anim
    _, durations = timing.repeat_to([d.duration_ms for d in anim.drawings], config.min_seconds * 1000, anim.loops)
    holds = render.holds(timing.schedule(durations))
    return {
        "clip_id": job.dest.stem,
        **{c: anim.labels.get(c) for c in labels.LABEL_COLUMNS + labels.OPTIONAL_COLUMNS},
        "background": job.background.style
        + (f":{job.background.tile.relative_to(root)}" if job.background.tile else ""),
        "caption": captions.appearance_action(anim),
        "caption_description": captions.with_description(anim),
        "description": anim.description or None,
        "drawings": anim.distinct_drawings(),
        "play_ms": float(sum(d.duration_ms for d in anim.drawings)),
        "frames": sum(holds),
        "mean_hold": sum(holds) / len(holds) if holds else None,
    }


def render_all(jobs: list[ClipJob], config: BuildConfig, on_done: Callable[[], None] | None = None) -> list[str]:
    """Render every job (in `config.workers` processes); returns the errors."""
    if jobs:
        jobs[0].dest.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    if config.workers <= 1:
        results: Iterator[str | None] = (_render(j, config) for j in jobs)
        for error in results:
            errors += [error] if error else []
            on_done and on_done()
        return errors
    with ProcessPoolExecutor(config.workers) as pool:
        for error in pool.map(_render, jobs, [config] * len(jobs), chunksize=8):
            errors += [error] if error else []
            on_done and on_done()
    return errors


def render_dataset(root: Path, out: Path, config: BuildConfig, on_total=None, on_done=None) -> dict:
    """Steps 1-3: clips and the label table. Returns counts."""
    root, out = Path(root), Path(out)
    anims = read_animations(root, config)
    if not anims:
        raise FileNotFoundError(
            f"no sprite package under {root} (expected {', '.join(READERS)} folders); run scripts/fetch_sprites.sh"
        )
    jobs = plan(anims, find_tiles(root), out, config)
    on_total and on_total(len(jobs))
    out.mkdir(parents=True, exist_ok=True)
    errors = render_all(jobs, config, on_done)
    failed = {e.split(":", 1)[0] for e in errors}
    rows = [_row(j, config, root) for j in jobs if j.dest.stem not in failed]
    labels.write_labels(out, rows)
    return {
        "animations": len(anims),
        "clips": len(rows),
        "render_errors": errors,
        "characters": len({r["character"] for r in rows}),
        "packages": sorted({r["package"] for r in rows}),
    }


def build(
    root: Path,
    out: Path,
    config: BuildConfig,
    val: float = 0.1,
    test: float = 0.2,
    seed: int = 0,
    on_total: Callable[[int], None] | None = None,
    on_done: Callable[[], None] | None = None,
) -> dict:
    """All four steps; returns the counts of each (clips, shots, characters, split sizes, test queries)."""
    from toonlab.curate.config import CurateConfig
    from toonlab.curate.run import run_curate
    from toonlab.curate.steps.dedup import run_dedup
    from toonlab.curate.steps.split import run_split

    out = Path(out)
    stats = {"render": render_dataset(root, out, config, on_total, on_done)}
    curate_config = CurateConfig(clips="copy")  # every frame of each shot, beside its keyframes
    curated = run_curate([str(out / CLIPS_DIR)], out, curate_config, workers=max(1, config.workers))
    stats["curate"] = curated.as_dict()
    stats["labels"] = labels.attach(out)
    stats["dedup"] = run_dedup(out)
    # Grouped by characters that share drawings (groups.py), not by pHash clusters: on small sprites over flat
    # backgrounds those chain unrelated characters together (`cross_character_dup_clusters` counts them).
    stats["split"] = run_split(out, val, test, seed, group_dups=False, group_by="character_group")
    stats["summary"] = summarize(out)
    return stats


def summarize(out: Path) -> dict:
    """Shots, characters and captions per split (test shots are the text->video queries)."""
    from toonlab.curate.sidecar import read_dataset

    columns = ["identifier", "split", "character", "character_group", "caption", "package", "dup_cluster"]
    columns += ["keyframe_indices"]
    table = read_dataset(out, columns).to_pylist()
    summary: dict[str, dict] = {}
    for name in ("train", "val", "test"):
        rows = [r for r in table if r["split"] == name]
        summary[name] = {
            "shots": len(rows),
            "characters": len({r["character"] for r in rows}),
            "groups": len({r["character_group"] for r in rows}),
            "unique_captions": len({r["caption"] for r in rows}),
        }
    clusters: dict[str, set[str]] = {}
    for r in table:
        if r["dup_cluster"] is not None:
            clusters.setdefault(r["dup_cluster"], set()).add(r["character_group"])
    keyframes = sorted(len(r["keyframe_indices"] or []) for r in table)
    summary["all"] = {
        "shots": len(table),
        "characters": len({r["character"] for r in table}),
        "groups": len({r["character_group"] for r in table}),
        "per_package": {p: sum(r["package"] == p for r in table) for p in sorted({r["package"] for r in table})},
        "dup_clusters": len(clusters),
        "cross_character_dup_clusters": sum(len(g) > 1 for g in clusters.values()),
        "keyframes_per_shot_median": keyframes[len(keyframes) // 2] if keyframes else 0,
        "shots_with_one_keyframe": sum(k == 1 for k in keyframes),
    }
    return summary
