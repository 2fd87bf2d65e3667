#!/bin/bash
# Session 24: solve rate against passes below 160 on the test split, NFE 5, Top-Prob-Margin.
# The seed-0 `paths` VMD decodes only the M values of z its prior finds most probable (--z-values
# M; its prior ignores the puzzle, so the same M values for every puzzle), each checked
# (10 M passes), and once at the prior's most probable value, unchecked (--z-strategy mode, 5
# passes); the equal-time MDM of seed 0 samples N grids, each different one checked once, and
# decodes once by argmax. With PRIOR=1 it decodes the VMD with the puzzle-reading prior of
# prior_train.sh the same way (its short list differs per puzzle). SEED=1: the seed-1 pair.
# SPLIT=few: the 906-puzzle 17-29-clue split instead of the test split.
set -e
cd /tmp/s24/wt2 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s24/wt2
P=results/sudoku_hard/paths
if [[ "$SPLIT" == few ]]; then
  TEST=results/sudoku_hard/warm/few_clues_data0.txt
else
  SPLIT=test TEST=results/sudoku_hard/select/test_data0.txt
fi
OUT=/tmp/s24/budget
mkdir -p $OUT
solve() { python experiments/sudoku.py solve --threads 1 --puzzles $TEST --nfe 5 "$@"; }
if [[ -n "$PRIOR" ]]; then
  NAME=prior-exact16-paths-b16; VMD=$P/$NAME.pt  # copied there by prior_after.sh
else
  NAME=ft-exact16-paths-b16${SEED:+-seed$SEED}; VMD=$P/$NAME.pt
fi
solve --checkpoint $VMD --fill argmax --z-strategy mode --json $OUT/${SPLIT}_mode_${NAME}_nfe{nfe}.json
for M in 1 2 4 8; do
  solve --checkpoint $VMD --fill argmax --z-strategy enumerate --z-values $M --select pseudo-likelihood \
    --json $OUT/${SPLIT}_enumerate$M-pseudo-likelihood_${NAME}_nfe{nfe}.json
done
if [[ -z "$PRIOR" ]]; then
  CK=ft3-mdm-steps-b64${SEED:+-seed$SEED}
  solve --checkpoint $P/$CK.pt --fill argmax --json $OUT/${SPLIT}_argmax_${CK}_nfe{nfe}.json
  for N in 2 4 8 12; do
    solve --checkpoint $P/$CK.pt --fill sample --temperature 1 --candidates $N --select pseudo-likelihood \
      --check-distinct --json $OUT/${SPLIT}_candidates$N-t1-pseudo-likelihood-distinct_${CK}_nfe{nfe}.json
  done
fi
echo "BUDGET DONE $NAME $(date)"
