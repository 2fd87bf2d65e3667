#!/bin/bash
# Session 23, after distinct.sh: 24 grids with each different one checked once cost 151.6 passes
# per test puzzle (seed 0), so 25 may still fit in 160; on 17-29 clues 13.5 of 16 grids differ,
# so about 17 fit. Both seeds' equal-time MDMs, one decode each.
set -e
cd /tmp/s23/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s23/wt
until grep -q "DISTINCT DONE" /tmp/s23/distinct.log; do sleep 20; done
P=results/sudoku_hard/paths
for split in test few; do
  [[ $split == test ]] && N=25 PUZ=results/sudoku_hard/select/test_data0.txt || N=17 PUZ=results/sudoku_hard/warm/few_clues_data0.txt
  for CK in ft3-mdm-steps-b64 ft3-mdm-steps-b64-seed1; do
    python experiments/sudoku.py solve --checkpoint $P/$CK.pt --fill sample --temperature 1 --candidates $N \
      --select pseudo-likelihood --check-distinct --threads 1 --puzzles $PUZ \
      --nfe 5 --json /tmp/s23/distinct/${split}_candidates$N-t1-pseudo-likelihood-distinct_${CK}_nfe{nfe}.json
  done
done
echo "DISTINCT MORE DONE $(date)"
