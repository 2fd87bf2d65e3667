#!/usr/bin/env bash
# Posterior diagnostics of VMD on quad-d1 for three priors, into OUT (default runs/diagnostics;
# results/diagnostics/ was made with OUT=results/diagnostics). One thread, one run at a time (a few
# minutes each on a shared 2-core machine). Each run writes to a scratch folder first, so that no run
# sees the outputs of an earlier one and every diagnostics.json records a clean commit.
#   bash experiments/diagnostics_results.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-runs/diagnostics}
scratch=$(mktemp -d)
for prior in gaussian mog discrete; do
    python experiments/diagnose.py --dataset quad-d1 --prior "$prior" --steps 2500 --seed 0 \
        --latent-dim 8 --lr 2e-3 --eval-every 0 --warmup 200 --samples 400 --threads 1 --out "$scratch/$prior"
done
for prior in gaussian mog discrete; do
    mkdir -p "$OUT/$prior"
    cp "$scratch/$prior"/* "$OUT/$prior/"
done
python experiments/diagnostics_summary.py "$OUT"
