# toonlab: `make demo` sets up a fresh Debian 12 machine and curates the real media; `make test` runs the tests.
# Setup is idempotent and fast on a rerun (scripts/setup.sh), so every target may depend on it.

VENV  := .venv
PY    := $(VENV)/bin/python
RUFF  := $(VENV)/bin/ruff
MEDIA := $(or $(TOONLAB_MEDIA),.cache/media)
DEMO  := out/demo
LINTED := src tests benchmarks scripts

.PHONY: setup media demo test lint format bench

setup:
	bash scripts/setup.sh

media:
	bash scripts/fetch_media.sh
	bash scripts/fetch_sprites.sh

demo: setup
	$(VENV)/bin/toonlab curate $(MEDIA)/clips --out $(DEMO) --workers 2 --annotate text,motion,quality,caption
	$(VENV)/bin/toonlab report $(DEMO)
	@echo "demo dataset: $(DEMO) (metadata/*.parquet, shards/*.tar, errors.parquet, _stats.json)"
	@echo "demo report:  $(DEMO)/report/index.html"

test: setup
	$(PY) -m pytest -q
	$(RUFF) check $(LINTED)

lint:
	$(RUFF) check $(LINTED)
	$(RUFF) format --check $(LINTED)

format:
	$(RUFF) format $(LINTED)
	$(RUFF) check --fix $(LINTED)

bench: setup
	$(PY) benchmarks/curate_bench.py
