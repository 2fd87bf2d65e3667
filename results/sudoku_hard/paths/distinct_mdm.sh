#!/bin/bash
# Session 25: the equal-time MDMs of both seeds at the passes the VMD spends once its equal grids
# share a check (distinct_vmd.sh: about 115 per test puzzle for every z, about 150 per 17-29-clue
# puzzle): 16 and 18 sampled grids on the test split, 16 on 17-29 clues, each different one
# checked once (budget.sh has 12 grids at 80 passes; distinct.sh 25 at 157).
set -e
cd /tmp/s25/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s25/wt
P=results/sudoku_hard/paths
OUT=/tmp/s25/budget
mkdir -p $OUT
mdm() {  # split puzzles grids checkpoint
  python experiments/sudoku.py solve --threads 1 --puzzles $2 --nfe 5 --checkpoint $P/$4.pt \
    --fill sample --temperature 1 --candidates $3 --select pseudo-likelihood --check-distinct \
    --json $OUT/$1_candidates$3-t1-pseudo-likelihood-distinct_$4_nfe{nfe}.json
}
for CK in ft3-mdm-steps-b64 ft3-mdm-steps-b64-seed1; do
  for N in 16 18; do mdm test results/sudoku_hard/select/test_data0.txt $N $CK; done
  mdm few results/sudoku_hard/warm/few_clues_data0.txt 16 $CK
done
echo "DISTINCT MDM DONE $(date)"
