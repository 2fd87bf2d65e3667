#!/usr/bin/env bash
# Regenerates results/diagnostics/: posterior diagnostics of VMD on quad-d1 for three priors.
# One thread, one run at a time (a few minutes each on a shared 2-core machine). Each run writes
# to a scratch folder first, so that no run sees the tracked results of an earlier one and every
# diagnostics.json records a clean commit.
set -euo pipefail
cd "$(dirname "$0")/../.."
scratch=$(mktemp -d)
for prior in gaussian mog discrete; do
    python experiments/diagnose.py --dataset quad-d1 --prior "$prior" --steps 2500 --seed 0 \
        --warmup 200 --samples 400 --threads 1 --out "$scratch/$prior"
done
for prior in gaussian mog discrete; do
    cp "$scratch/$prior"/* "results/diagnostics/$prior/"
done
python results/diagnostics/summarize.py
