#!/bin/bash
# Session 25: the VMD's checks shared among equal grids. Of its 16 decodes per test puzzle the
# `paths` VMD holds about 7.1 different grids, yet each paid its own pseudo-likelihood check
# (5 passes). With --check-distinct (since aeb1053) a grid that several values of z decode is
# checked once, under the most probable of them. This decodes the M values of z its prior ranks
# highest (M = 2, 4, 8, and 16 = every value), each different grid checked once, NFE 5, argmax,
# Top-Prob-Margin. SEED=1: the seed-1 VMD; SPLIT=few: the 906-puzzle 17-29-clue split.
set -e
cd /tmp/s25/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s25/wt
P=results/sudoku_hard/paths
if [[ "$SPLIT" == few ]]; then
  TEST=results/sudoku_hard/warm/few_clues_data0.txt
else
  SPLIT=test TEST=results/sudoku_hard/select/test_data0.txt
fi
OUT=/tmp/s25/budget
mkdir -p $OUT
NAME=ft-exact16-paths-b16${SEED:+-seed$SEED}
for M in 2 4 8 16; do
  python experiments/sudoku.py solve --threads 1 --puzzles $TEST --nfe 5 --checkpoint $P/$NAME.pt \
    --fill argmax --z-strategy enumerate --z-values $M --select pseudo-likelihood --check-distinct \
    --json $OUT/${SPLIT}_enumerate$M-pseudo-likelihood-distinct_${NAME}_nfe{nfe}.json
done
echo "DISTINCT VMD DONE $NAME $SPLIT $(date)"
