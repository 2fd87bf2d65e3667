#!/usr/bin/env bash
# Session 27: the stopping VMDs of run.sh given 48 more candidates, grids with sampled tokens under
# the value of z whose argmax candidate scored best (--vmd-samples 48), so that each decoder has 64.
# MDM's candidates are taken from run.sh's records (--mdm-from), which the VMD's first 16
# candidates must reproduce. Run from the repository root with OUT set to a folder; the two seeds
# run side by side, one thread each, into OUT/vmd_samples_seed0 and OUT/vmd_samples_seed1.
# SPLIT=few: the 906-puzzle 17-29-clue split instead, into OUT/vmd_samples_few_seed0 and so on.
# SEEDS="1": only those seeds.
set -euo pipefail
OUT=${OUT:?set OUT to the output folder}
P=results/sudoku_hard/paths S=results/sudoku_hard/stopping
PUZZLES=results/sudoku_hard/select/test_data0.txt PREFIX= BUDGETS=
[[ ${SPLIT:-test} == few ]] && PUZZLES=results/sudoku_hard/warm/few_clues_data0.txt PREFIX=few_ \
  BUDGETS="--budgets 15 20 25 30 40 60 80 100 120"
for seed in ${SEEDS:-0 1}; do
  suffix=$([[ $seed == 1 ]] && echo "-seed1" || true)
  OMP_NUM_THREADS=1 python experiments/sudoku_stopping.py --vmd $P/ft-exact16-paths-b16$suffix.pt \
    --mdm $P/ft3-mdm-steps-b64$suffix.pt --puzzles $PUZZLES --samples 63 --vmd-samples 48 \
    --mdm-from $S/${PREFIX}seed$seed/stopping.json --seed $seed $BUDGETS \
    --out-dir "$OUT/vmd_samples_${PREFIX}seed$seed" > "$OUT/vmd_samples_${PREFIX}seed$seed.log" 2>&1 &
done
wait
