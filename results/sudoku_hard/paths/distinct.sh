#!/bin/bash
# Session 23: MDM's 16 sampled grids hold only about 4.8 different ones per test puzzle, yet each
# copy paid its own pseudo-likelihood check (5 passes). With --check-distinct each different grid
# is checked once, so at the same 160 passes per puzzle the MDM can sample more grids. This decodes
# both seeds' equal-time MDMs with 24 and 28 sampled grids, the distinct ones checked once, on the
# test split (on 17-29 clues 13.5 of 16 grids differ, so there is little to save).
set -e
cd /tmp/s23/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s23/wt
P=results/sudoku_hard/paths
mkdir -p /tmp/s23/distinct
for N in 24 28; do
  for CK in ft3-mdm-steps-b64 ft3-mdm-steps-b64-seed1; do
    python experiments/sudoku.py solve --checkpoint $P/$CK.pt --fill sample --temperature 1 --candidates $N \
      --select pseudo-likelihood --check-distinct --threads 1 --puzzles results/sudoku_hard/select/test_data0.txt \
      --nfe 5 --json /tmp/s23/distinct/test_candidates$N-t1-pseudo-likelihood-distinct_${CK}_nfe{nfe}.json
  done
done
echo "DISTINCT DONE $(date)"
