#!/bin/bash
# Session 25: sharper sampled tokens instead of argmax, so that each value of z offers a guess
# of its own rather than a copy of another value's. The seed-0 `paths` VMD decodes every value of
# z once with tokens drawn at temperature T (0.5, 0.3), each different grid checked once; the
# seed-0 equal-time MDM samples 16 and 20 grids at T = 0.5, checked the same way. Test split,
# NFE 5, Top-Prob-Margin. ARG=vmd or ARG=mdm runs one half (they ran side by side).
set -e
cd /tmp/s25/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s25/wt
P=results/sudoku_hard/paths
OUT=/tmp/s25/temperature
mkdir -p $OUT
solve() { python experiments/sudoku.py solve --threads 1 --puzzles results/sudoku_hard/select/test_data0.txt \
  --nfe 5 --fill sample --select pseudo-likelihood --check-distinct "$@"; }
if [[ "$ARG" == vmd ]]; then
  for T in 0.5 0.3; do
    solve --checkpoint $P/ft-exact16-paths-b16.pt --z-strategy enumerate --temperature $T \
      --json $OUT/test_enumerate-t$T-pseudo-likelihood-distinct_ft-exact16-paths-b16_nfe{nfe}.json
  done
else
  for N in 16 20; do
    solve --checkpoint $P/ft3-mdm-steps-b64.pt --candidates $N --temperature 0.5 \
      --json $OUT/test_candidates$N-t0.5-pseudo-likelihood-distinct_ft3-mdm-steps-b64_nfe{nfe}.json
  done
fi
echo "TEMPERATURE DONE $ARG $(date)"
