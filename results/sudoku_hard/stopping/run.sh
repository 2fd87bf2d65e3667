#!/usr/bin/env bash
# Session 26: the stopping decoders of both seeds' `paths` VMDs and their equal-time MDMs on the
# 1,000-puzzle test split (NFE 5, Top-Prob-Margin; MDM: argmax, then 63 sampled grids). Run from
# the repository root with OUT set to a folder; the two seeds run side by side, one thread each.
# SPLIT=few: the 906-puzzle 17-29-clue split instead, into OUT/few_seed0 and OUT/few_seed1.
# Session 27, each adding a prefix to the folders:
#   CHECK_GROUPS=G  a finer check of G passes instead of 5 (OUT/check<G>_few_seed0, ...)
#   VMD_SAMPLES=M   the VMD then tries M grids with sampled tokens under the value of z that scored
#                   best (--vmd-samples); MDM's candidates come from this folder's records of the
#                   same split (--mdm-from), which the VMD's first 16 must reproduce
#                   (OUT/vmd_samples_seed0, ...)
#   SEEDS="1"       only those seeds
set -euo pipefail
OUT=${OUT:?set OUT to the output folder}
P=results/sudoku_hard/paths S=results/sudoku_hard/stopping
PUZZLES=results/sudoku_hard/select/test_data0.txt PREFIX= BUDGETS=
[[ ${SPLIT:-test} == few ]] && PUZZLES=results/sudoku_hard/warm/few_clues_data0.txt PREFIX=few_ \
  BUDGETS="--budgets 15 20 25 30 40 60 80 100 120"
SPLIT_PREFIX=$PREFIX
CHECKS=${CHECK_GROUPS:-5}
[[ $CHECKS != 5 ]] && PREFIX=check${CHECKS}_$PREFIX
[[ ${VMD_SAMPLES:-0} != 0 ]] && PREFIX=vmd_samples_$PREFIX
for seed in ${SEEDS:-0 1}; do
  suffix=$([[ $seed == 1 ]] && echo "-seed1" || true)
  reuse=()
  [[ ${VMD_SAMPLES:-0} != 0 ]] && reuse=(--vmd-samples "$VMD_SAMPLES"
                                         --mdm-from "$S/${SPLIT_PREFIX}seed$seed/stopping.json")
  OMP_NUM_THREADS=1 python experiments/sudoku_stopping.py --vmd $P/ft-exact16-paths-b16$suffix.pt \
    --mdm $P/ft3-mdm-steps-b64$suffix.pt --puzzles $PUZZLES --samples 63 --check-groups $CHECKS \
    --seed $seed $BUDGETS "${reuse[@]}" --out-dir "$OUT/${PREFIX}seed$seed" \
    > "$OUT/${PREFIX}seed$seed.log" 2>&1 &
done
wait
