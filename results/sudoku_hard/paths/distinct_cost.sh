#!/bin/bash
# Session 23, last: how many passes the equal-time MDM (each different grid checked once) needs
# to come near the VMD's 160-pass solve rate: 40 and 64 sampled grids on the test split, the two
# seeds side by side (one thread each).
set -e
cd /tmp/s23/wt2 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s23/wt2
P=results/sudoku_hard/paths
mkdir -p /tmp/s23/distinct
for CK in ft3-mdm-steps-b64 ft3-mdm-steps-b64-seed1; do
  (for N in 40 64; do
    python experiments/sudoku.py solve --checkpoint $P/$CK.pt --fill sample --temperature 1 --candidates $N \
      --select pseudo-likelihood --check-distinct --threads 1 --puzzles results/sudoku_hard/select/test_data0.txt \
      --nfe 5 --json /tmp/s23/distinct/test_candidates$N-t1-pseudo-likelihood-distinct_${CK}_nfe{nfe}.json
  done) &
done
wait
echo "DISTINCT COST DONE $(date)"
