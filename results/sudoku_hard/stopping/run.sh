#!/usr/bin/env bash
# Session 26: the stopping decoders of both seeds' `paths` VMDs and their equal-time MDMs on the
# 1,000-puzzle test split (NFE 5, Top-Prob-Margin; MDM: argmax, then 63 sampled grids). Run from
# the repository root with OUT set to a folder; the two seeds run side by side, one thread each.
# SPLIT=few: the 906-puzzle 17-29-clue split instead, into OUT/few_seed0 and OUT/few_seed1.
# CHECK_GROUPS=G (session 27): a finer check of G passes instead of 5, into OUT/check<G>_few_seed0 ...
set -euo pipefail
OUT=${OUT:?set OUT to the output folder}
P=results/sudoku_hard/paths
PUZZLES=results/sudoku_hard/select/test_data0.txt PREFIX=
[[ ${SPLIT:-test} == few ]] && PUZZLES=results/sudoku_hard/warm/few_clues_data0.txt PREFIX=few_
CHECKS=${CHECK_GROUPS:-5}
[[ $CHECKS != 5 ]] && PREFIX=check${CHECKS}_$PREFIX
for seed in 0 1; do
  suffix=$([[ $seed == 1 ]] && echo "-seed1" || true)
  OMP_NUM_THREADS=1 python experiments/sudoku_stopping.py --vmd $P/ft-exact16-paths-b16$suffix.pt \
    --mdm $P/ft3-mdm-steps-b64$suffix.pt --puzzles $PUZZLES \
    --samples 63 --check-groups $CHECKS --seed $seed --out-dir "$OUT/${PREFIX}seed$seed" > "$OUT/${PREFIX}seed$seed.log" 2>&1 &
done
wait
