"""The report's stylesheet and gallery script (vanilla JS, no network), written beside the HTML pages."""

from __future__ import annotations

from pathlib import Path

CSS = """
:root { --ink: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f6f7f9; --card: #fff; --accent: #3b6ea8; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
       background: var(--bg); }
header { background: #1d2330; color: #fff; padding: 18px 28px 10px; }
header h1 { margin: 0 0 2px; font-size: 20px; }
header .sub { color: #b8c0cc; font-size: 12px; word-break: break-all; }
header nav a { color: #cfe0f5; margin-right: 16px; text-decoration: none; font-size: 13px; }
main { padding: 8px 28px 40px; max-width: 1500px; margin: 0 auto; }
h2 { margin: 28px 0 10px; font-size: 17px; }
.muted { color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 10px; }
.stat { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.stat b { display: block; font-size: 20px; }
.stat span { color: var(--muted); font-size: 12px; }
.plots { display: grid; grid-template-columns: repeat(auto-fill, minmax(420px, 1fr)); gap: 14px; align-items: start; }
figure { margin: 0; background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px; }
figure img { width: 100%; height: auto; display: block; }
figure.wide { grid-column: 1 / -1; }
figure.wide img { max-width: 980px; }
figcaption { color: var(--muted); font-size: 12px; margin-top: 4px; }
.nc { background: repeating-linear-gradient(45deg, #fff, #fff 8px, #f8f9fb 8px, #f8f9fb 16px);
      border: 1px dashed #c9ced6; border-radius: 8px; padding: 10px 14px; margin-top: 14px; color: var(--muted); }
.nc ul { margin: 4px 0 0; padding-left: 18px; }
.nc li b { color: var(--ink); font-weight: 600; }
.nc h3 { margin: 0 0 4px; font-size: 14px; color: var(--ink); }
form#filters { display: flex; flex-wrap: wrap; gap: 10px 22px; align-items: flex-end; background: var(--card);
               border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; margin-bottom: 12px; }
form#filters fieldset { border: 0; padding: 0; margin: 0; }
form#filters legend { font-size: 12px; color: var(--muted); padding: 0; }
form#filters input[type=range] { width: 110px; vertical-align: middle; }
form#filters output { font: 12px ui-monospace, monospace; display: inline-block; min-width: 3.2em; }
#shown { font-weight: 600; margin-left: auto; }
#grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 12px; }
a.shot { display: block; background: var(--card); border: 1px solid var(--line); border-radius: 8px;
         overflow: hidden; color: inherit; text-decoration: none; }
a.shot:hover { border-color: var(--accent); box-shadow: 0 2px 10px rgba(30, 60, 110, .15); }
a.shot img, .noimg { width: 100%; height: auto; aspect-ratio: 4 / 3; object-fit: cover; background: #dde2e8;
                     display: block; }
.noimg { display: flex; align-items: center; justify-content: center; color: var(--muted); font-size: 12px; }
.meta { padding: 6px 8px 8px; font-size: 12px; }
.meta .id { font-weight: 600; word-break: break-all; }
.pill { display: inline-block; border-radius: 9px; padding: 0 7px; margin: 2px 3px 0 0; font-size: 11px;
        background: #eef2f7; color: #344054; }
.pill.t-ones { background: #fde2e4; } .pill.t-twos { background: #e2ecfd; } .pill.t-threes { background: #e3f6e8; }
table { border-collapse: collapse; background: var(--card); font-size: 12.5px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f0f2f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.stages { flex: 1; min-width: 380px; max-width: 620px; }
.tables { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
details pre { background: var(--card); border: 1px solid var(--line); padding: 10px; overflow: auto; }
.strip { display: flex; flex-wrap: wrap; gap: 8px; }
.strip figure { padding: 4px; width: 250px; }
.row td:first-child { font-family: ui-monospace, monospace; white-space: nowrap; }
.row td { max-width: 900px; word-break: break-word; }
"""

JS = """
(() => {
  const grid = document.getElementById("grid");
  const form = document.getElementById("filters");
  if (!grid || !form) return;
  const cards = Array.from(grid.querySelectorAll("a.shot"));
  const ranges = Array.from(form.querySelectorAll("fieldset[data-key]"));
  const shown = document.getElementById("shown");

  function bounds(fieldset) {
    const [lo, hi] = fieldset.querySelectorAll("input[type=range]");
    const a = Number(lo.value), b = Number(hi.value);
    const outs = fieldset.querySelectorAll("output");
    outs[0].textContent = Math.min(a, b).toFixed(2);
    outs[1].textContent = Math.max(a, b).toFixed(2);
    const full = Math.min(a, b) <= Number(lo.min) && Math.max(a, b) >= Number(lo.max);
    return { key: fieldset.dataset.key, lo: Math.min(a, b), hi: Math.max(a, b), full };
  }

  function apply() {
    const limits = ranges.map(bounds);
    const words = form.elements.tags.value.toLowerCase().split(/\\s+/).filter(Boolean);
    const timings = new Set(Array.from(form.querySelectorAll("input[name=timing]:checked"), (i) => i.value));
    let count = 0;
    for (const card of cards) {
      let keep = timings.has(card.dataset.timing);
      for (const limit of limits) {
        const raw = card.dataset[limit.key];
        if (raw === undefined || raw === "") keep = keep && limit.full;
        else keep = keep && Number(raw) >= limit.lo - 1e-9 && Number(raw) <= limit.hi + 1e-9;
      }
      const tags = card.dataset.tags.split(" ");
      for (const word of words) keep = keep && tags.some((tag) => tag.startsWith(word));
      card.hidden = !keep;
      count += keep ? 1 : 0;
    }
    shown.textContent = `${count} of ${cards.length} shots shown`;
  }

  function sort() {
    const [key, direction] = form.elements.sort.value.split(":");
    const value = (card) => (key === "key" ? card.dataset.key : Number(card.dataset[key] || -1));
    const sign = direction === "desc" ? -1 : 1;
    cards
      .slice()
      .sort((a, b) => (value(a) > value(b) ? sign : value(a) < value(b) ? -sign : 0))
      .forEach((card) => grid.appendChild(card));
  }

  form.addEventListener("input", apply);
  form.elements.sort.addEventListener("change", sort);
  form.addEventListener("reset", () => setTimeout(() => { apply(); sort(); }, 0));
  apply();
})();
"""


def write_assets(dest: Path) -> None:
    (dest / "static").mkdir(parents=True, exist_ok=True)
    (dest / "static" / "report.css").write_text(CSS.lstrip())
    (dest / "static" / "report.js").write_text(JS.lstrip())
