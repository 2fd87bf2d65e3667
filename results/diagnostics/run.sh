#!/usr/bin/env bash
# Regenerates results/diagnostics/: posterior diagnostics of VMD on quad-d1 for three priors.
# One thread, one run at a time (a few minutes each on a shared 2-core machine).
set -euo pipefail
cd "$(dirname "$0")/../.."
for prior in gaussian mog discrete; do
    python experiments/diagnose.py --dataset quad-d1 --prior "$prior" --steps 2500 --seed 0 \
        --warmup 200 --samples 400 --threads 1 --out "results/diagnostics/$prior"
done
