#!/bin/bash
# Session 24: the equal-time MDMs of both seeds with 5 and 6 sampled grids, each different one checked
# once, on the test split: about 40 passes, the VMD's cost on its 4 most probable z (budget.sh has
# 4 grids at 30 passes and 8 at 55).
set -e
cd /tmp/s24/wt3 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s24/wt3
P=results/sudoku_hard/paths
for CK in ft3-mdm-steps-b64 ft3-mdm-steps-b64-seed1; do
  for N in 5 6; do
    python experiments/sudoku.py solve --threads 1 --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
      --checkpoint $P/$CK.pt --fill sample --temperature 1 --candidates $N --select pseudo-likelihood \
      --check-distinct --json /tmp/s24/budget/test_candidates$N-t1-pseudo-likelihood-distinct_${CK}_nfe{nfe}.json
  done
done
echo "MDM40 DONE $(date)"
