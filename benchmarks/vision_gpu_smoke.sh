#!/usr/bin/env bash
# GPU smoke run of the vision models on a lent CUDA machine (a few minutes):
#   the gpu-marked tests (bf16 autocast training on CUDA), the throughput benchmark on CUDA, and a 2-rank NCCL
#   torchrun of the training loop when two GPUs are visible (one rank otherwise).
#   bash benchmarks/vision_gpu_smoke.sh DATA    (DATA: a curated, split dataset, e.g. from build-sprites)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PY:-.venv/bin/python}
DATA=${1:?usage: vision_gpu_smoke.sh DATA}
OUT=${OUT:-runs/gpu-smoke}
"$PY" -m pytest -q -m gpu tests/vision
"$PY" benchmarks/vision_bench.py --device cuda --batch 32 --threads 4
ranks=$("$PY" -c "import torch; print(min(2, torch.cuda.device_count()))")
"$PY" -m torch.distributed.run --nproc_per_node "$ranks" -m toonlab.cli vision train retrieval --data "$DATA" \
  --out "$OUT/partial" --config partial-seq --device cuda --steps 50 --batch-size 64 --eval-every 50
"$PY" -m toonlab.cli vision eval "$OUT/partial" --data "$DATA" --device cuda
