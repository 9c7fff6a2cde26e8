#!/usr/bin/env bash
# GPU smoke run of the vision models on a lent CUDA machine (a few minutes):
#   the gpu-marked tests (bf16 autocast training on CUDA), the throughput benchmark on CUDA, and a 2-rank NCCL
#   torchrun of the training loop when two GPUs are visible (one rank otherwise); the scan / VideoMamba / SVD
#   benchmark on CUDA (mamba_ssm's kernel beside the pure scan when it is installed), a VideoMamba training run and
#   a tiny-SVD train + eval.
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
"$PY" benchmarks/mamba_svd_bench.py --device cuda --batch 8 --threads 4
"$PY" -m toonlab.cli vision train classify --data "$DATA" --out "$OUT/mamba" --config mamba-frozen-text \
  --device cuda --steps 50 --batch-size 32 --eval-every 50
"$PY" -m toonlab.cli vision eval "$OUT/mamba" --data "$DATA" --device cuda
rm -rf "$OUT/tiny-svd" && "$PY" -m toonlab.cli vision tiny-svd "$OUT/tiny-svd"
"$PY" -m toonlab.cli vision train svd --data "$DATA" --svd-dir "$OUT/tiny-svd" --out "$OUT/svd" --device cuda \
  --frames 8 --size 64 --steps 50 --eval-every 50 --lr 1e-4
"$PY" -m toonlab.cli vision eval "$OUT/svd" --device cuda --generate 4 --sample-steps 4
