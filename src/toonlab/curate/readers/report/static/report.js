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
    const words = form.elements.tags.value.toLowerCase().split(/\s+/).filter(Boolean);
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
