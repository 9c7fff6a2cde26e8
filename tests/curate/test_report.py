"""`toonlab report`: files, plots and honesty about what was not computed; then the report in headless Chromium.

The browser test drives Debian's chromium over the DevTools protocol (a websocket, no browser download): it
loads the report from disk, scrolls every lazy image into view, asserts that every plot and thumbnail decoded
(naturalWidth > 0), that the gallery filters change what is shown, and that nothing was logged as an error.
It skips when chromium is missing, except under CI=true where it fails.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from chromium_devtools import browser_fixture  # noqa: F401  (the `browser` fixture)
from typer.testing import CliRunner

from toonlab.cli import app
from toonlab.curate.readers.report import build_report
from toonlab.curate.readers.report.gallery import tar_members
from toonlab.curate.run import run_curate
from toonlab.curate.steps.split import run_split

TAGS = ("solo", "outdoors", "1girl", "sky", "no_humans", "fighting", "smears", "effects")
TAXONOMY = {
    "Taxonomy_Time": ("daylight", "night", "Others"),
    "Taxonomy_Venue": ("outdoors", "indoors", "Others"),
    "Taxonomy_Character": ("solo", "multiple", "no_humans"),
}


@pytest.fixture(scope="module")
def curated(tmp_path_factory, two_clips):
    """Curate output of the two synthetic clips plus one broken file (an error row)."""
    root = tmp_path_factory.mktemp("report")
    broken = root / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    out = root / "out"
    run_curate([*(str(c.path) for c in two_clips), str(broken)], out)
    return out


def _annotated(curated: Path, dest: Path) -> Path:
    """A copy of `curated` whose metadata also carries annotator-like columns (test values, not model output)."""
    shutil.copytree(curated, dest)
    for path in (dest / "metadata").glob("*.parquet"):
        table = pq.read_table(path)
        h = [zlib.crc32(k.encode()) for k in table.column("key").to_pylist()]
        columns = {
            "aesthetic_score": pa.array([(x % 1000) / 1000 for x in h], pa.float64()),
            "text_prob": pa.array([(x % 97) / 970 for x in h], pa.float64()),
            "anime_tags": pa.array([" ".join(TAGS[x % 5 : x % 5 + 3]) for x in h]),
            "text_description": pa.array([" ".join(["word"] * (15 + x % 50)) for x in h]),
            "rating": pa.array(["general" if x % 4 else "sensitive" for x in h]),
            **{axis: pa.array([f"{names[x % 3]}(label: {x % 3})" for x in h]) for axis, names in TAXONOMY.items()},
        }
        for name, values in columns.items():
            table = table.drop_columns([name]) if name in table.column_names else table
            table = table.append_column(name, values)
        pq.write_table(table, path)
    run_split(dest, val=0.25, test=0.25)  # a sidecar column, joined in by the report
    return dest


def test_report_of_a_plain_run_says_what_was_not_computed(curated, tmp_path):
    index = build_report(curated, tmp_path / "rep")
    html = index.read_text()
    for plot in ("clip_length", "dynamic_score", "timing", "stage_seconds"):
        assert (tmp_path / "rep" / "plots" / f"{plot}.png").stat().st_size > 5000
        assert f'src="plots/{plot}.png"' in html
    missing = html.split("<h3>Not computed</h3>")[1].split("</ul>")[0]
    for title in ("Aesthetic score", "Caption length", "Taxonomy", "Top tags", "Rating"):
        assert f"<b>{title}</b>: " in missing and f'alt="{title}"' not in html
    rows = pq.read_table(curated / "metadata").num_rows
    assert html.count('class="shot"') == rows  # gallery smaller than the cap: every shot
    assert len(list((tmp_path / "rep" / "shots").glob("*.html"))) == rows
    assert "broken.mp4" in html and "Errors by reason" in html
    for shard in (curated / "shards").glob("*.tar"):  # the header walk agrees with tarfile
        with tarfile.open(shard) as tar:
            assert list(tar_members(shard)) == [(m.name, m.offset_data, m.size) for m in tar]


@pytest.mark.parametrize("hostile", ["../../escaped", "/tmp/toonlab-absolute-key", "..", "a/../../b"])
def test_tampered_keys_never_write_outside_the_report(curated, tmp_path, hostile):
    """A `key` edited into a path (relative climb or absolute) names no file outside the report folder."""
    data = tmp_path / "data" / "out"
    shutil.copytree(curated, data)
    path = sorted((data / "metadata").glob("*.parquet"))[0]
    table = pq.read_table(path)
    keys = table.column("key").to_pylist()
    table = table.set_column(table.schema.get_field_index("key"), "key", pa.array([hostile, *keys[1:]]))
    pq.write_table(table, path)
    before = {p for p in tmp_path.rglob("*")}
    index = build_report(data, tmp_path / "data" / "report", gallery_size=len(keys))
    report = index.parent.resolve()
    written = {p for p in tmp_path.rglob("*")} - before
    assert written and all(p.resolve() == report or report in p.resolve().parents for p in written)
    assert not Path("/tmp/toonlab-absolute-key.html").exists() and not (tmp_path / "escaped.html").exists()
    pages = sorted(p.name for p in (report / "shots").iterdir())
    assert len(pages) == len(keys) and all(".." not in name and "/" not in name for name in pages)


def test_gallery_is_capped_and_deterministic(curated, tmp_path):
    first = build_report(curated, tmp_path / "a", gallery_size=2).read_text()
    second = build_report(curated, tmp_path / "b", gallery_size=2).read_text()
    cards = [line for line in first.split("<a ") if 'class="shot"' in line]
    assert len(cards) == 2 and "a deterministic sample of 2 of" in first
    assert [c[:80] for c in cards] == [c[:80] for c in second.split("<a ") if 'class="shot"' in c]
    assert len(list((tmp_path / "a" / "thumbs").iterdir())) == 2


def test_gallery_draws_from_a_capped_number_of_shards(two_clips, tmp_path, monkeypatch):
    from toonlab.curate.config import CurateConfig
    from toonlab.curate.readers.report import data

    out = tmp_path / "out"
    run_curate([str(c.path) for c in two_clips], out, CurateConfig(shard_max_samples=1))  # one shot per shard
    monkeypatch.setattr(data, "GALLERY_SHARDS", 1)
    html = build_report(out, tmp_path / "rep").read_text()
    summary = data.gather(out)
    shards = sum(len(c.shot_ranges) for c in two_clips)
    assert summary.shards == shards and len({row["shard"] for row in summary.gallery}) == 1
    assert f"from 1 of {shards} shards" in html and summary.rows > len(summary.gallery)


def test_cli_report_writes_into_out_by_default(curated, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(curated, out)
    result = CliRunner().invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report" / "index.html").exists() and "index.html" in result.output
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nothing")])
    assert missing.exit_code != 0 and "metadata" in missing.output


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_a_folder_that_is_not_a_report_is_refused_untouched(curated, tmp_path):
    """`--out ~`-like: a user's own shots/, static/ and files are never removed; one clear line, exit 2."""
    home = tmp_path / "home"
    for name in ("shots/holiday.jpg", "static/site.css", "plots/mine.png", "thumbs/a/b.jpg", "notes.txt"):
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(name)
    before = _tree(home)
    with pytest.raises(ValueError, match="not a toonlab report"):
        build_report(curated, home)
    result = CliRunner().invoke(app, ["report", str(curated), "--out", str(home)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    assert "not a toonlab report" in result.output
    assert _tree(home) == before and sorted(p.name for p in tmp_path.iterdir()) == ["home"]  # no scratch left


def test_a_report_is_rebuilt_in_place_but_files_it_did_not_write_stop_it(curated, tmp_path):
    dest = tmp_path / "rep"
    dest.mkdir()  # an empty folder is fine
    build_report(curated, dest, gallery_size=3)
    first = _tree(dest)
    assert ".toonlab-report.json" in first and len([k for k in first if k.startswith("shots/")]) == 3
    build_report(curated, dest, gallery_size=2)  # a rerun replaces its own earlier report, stale pages included
    assert len(list((dest / "shots").iterdir())) == 2 and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    (dest / "shots" / "my-notes.txt").write_text("mine")
    before = _tree(dest)
    with pytest.raises(ValueError, match="did not write.*shots/my-notes.txt"):
        build_report(curated, dest)
    assert _tree(dest) == before and sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_dollar_signs_in_tags_ratings_and_classes_are_plain_text(curated, tmp_path):
    """Values are data, not mathtext: `$` (balanced, unbalanced, with TeX commands) renders as written."""
    out = _annotated(curated, tmp_path / "dollars")
    odd = ["$x^$", r"$\undefined{", "a$b$c", "$$"]
    for path in (out / "metadata").glob("*.parquet"):
        table = pq.read_table(path)
        n = table.num_rows
        values = {
            "anime_tags": pa.array([f"{odd[i % 4]} solo" for i in range(n)]),
            "rating": pa.array([odd[(i + 1) % 4] for i in range(n)]),
            "Taxonomy_Time": pa.array([f"{odd[(i + 2) % 4]}(label: 0)" for i in range(n)]),
        }
        for name, column in values.items():
            table = table.set_column(table.column_names.index(name), name, column)
        pq.write_table(table, path)
    html = build_report(out, tmp_path / "rep").read_text()
    for name in ("rating", "top_tags", "taxonomy"):
        assert (tmp_path / "rep" / "plots" / f"{name}.png").stat().st_size > 5000
    assert "a$b$c" in html


# --- headless Chromium ----------------------------------------------------------------------------------


# Scroll every image into view (lazy ones start loading), wait until all settle, return the ones that failed.
ALL_IMAGES_LOADED = """
(async () => {
  const images = Array.from(document.images);
  for (const image of images) { image.scrollIntoView(); await new Promise((r) => setTimeout(r, 20)); }
  const deadline = Date.now() + 30000;
  while (Date.now() < deadline && !images.every((i) => i.complete)) await new Promise((r) => setTimeout(r, 50));
  window.scrollTo(0, 0);
  return {count: images.length, lazy: images.filter((i) => i.loading === "lazy").length,
          failed: images.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.getAttribute("src"))};
})()
"""

SHOWN = "document.querySelectorAll('#grid a.shot:not([hidden])').length"


def _set(selector: str, value: str) -> str:
    """JS that sets a form control and fires the input event the filter script listens to."""
    return (
        f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)}; "
        "e.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )


def test_report_renders_in_headless_chromium(curated, tmp_path, browser):
    out = _annotated(curated, tmp_path / "annotated")
    index = build_report(out, tmp_path / "report")
    rows = pq.read_table(out / "metadata").to_pylist()
    browser.call("Emulation.setDeviceMetricsOverride", width=1280, height=900, deviceScaleFactor=1, mobile=False)
    browser.open(index)

    images = browser.evaluate(ALL_IMAGES_LOADED)
    plots = len(list((tmp_path / "report" / "plots").glob("*.png")))
    assert plots >= 11  # length, dynamic, timing, aesthetic, text_prob, caption, rating, split, taxonomy, tags, stages
    assert images["failed"] == [] and images["count"] == plots + len(rows) and images["lazy"] == len(rows)
    browser.screenshot(tmp_path / "report_top.png")
    browser.evaluate("document.getElementById('gallery').scrollIntoView()")
    browser.screenshot(tmp_path / "report_gallery.png")

    # the filters: dynamic score from 0.5 up, then a tag, then reset
    assert browser.evaluate(SHOWN) == len(rows)
    browser.evaluate(_set("input[name=dynamic_score_from]", "0.5"))
    assert browser.evaluate(SHOWN) == sum(r["dynamic_score"] >= 0.5 - 1e-9 for r in rows)
    browser.evaluate(_set("input[name=dynamic_score_from]", "0"))
    browser.evaluate(_set("input[name=tags]", "sky"))
    assert browser.evaluate(SHOWN) == sum("sky" in r["anime_tags"].split() for r in rows)
    text = browser.evaluate("document.getElementById('shown').textContent")
    assert text == f"{browser.evaluate(SHOWN)} of {len(rows)} shots shown"

    # a shot's page: its keyframe strip loads and links back
    browser.open(tmp_path / "report" / "shots" / f"{rows[0]['key']}.html")
    strip = browser.evaluate(ALL_IMAGES_LOADED)
    assert strip["failed"] == [] and strip["count"] == min(12, rows[0]["key_frame_number"])
    assert browser.errors() == []

    shot = tmp_path / "report_top.png"
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000  # not a blank page
