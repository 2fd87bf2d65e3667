#!/usr/bin/env bash
# The Sudoku results of results/sudoku/ (README "Sudoku"). Run from the repository root with the
# virtualenv active. Stages (pass one as $1, default all CPU stages):
#   train-cpu  MDM then VMD (Gaussian prior), CPU config, same steps, one thread each, one at a time
#   eval-cpu   both CPU checkpoints on the 1,000-puzzle test split: 3 orders x NFE 5/10/20/50
#   report     markdown table (table.md) and plot (solve_rate.png) from eval_cpu_*.json
set -euo pipefail
OUT=results/sudoku
STAGE=${1:-all}
COMMON=(--task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --no-validate)

if [[ $STAGE == train-cpu || $STAGE == all ]]; then
  python experiments/run.py "${COMMON[@]}" --model mdm vmd --prior gaussian --sudoku-config cpu \
    --steps 2500 --batch-size 32 --eval-every 500 --threads 1 \
    --nfe 10 --order top-prob-margin --save $OUT/cpu.pt --out $OUT/train_cpu.json
fi
if [[ $STAGE == eval-cpu || $STAGE == all ]]; then
  # One process per model and order (each JSON complete on its own; about 7 min each on one
  # shared thread). The committed MDM numbers came from one process over all three orders
  # (its JSON's "command"); the sampler's random stream differs, the evaluation does not.
  for MODEL in mdm vmd; do
    for ORDER in top-prob-margin top-prob random; do
      python experiments/run.py "${COMMON[@]}" --model $MODEL --order $ORDER --threads 1 \
        --checkpoint $OUT/cpu-$MODEL.pt --out $OUT/eval_cpu_${MODEL}_$ORDER.json
    done
  done
fi
if [[ $STAGE == report || $STAGE == all ]]; then
  python experiments/sudoku_report.py --out-dir $OUT $OUT/eval_cpu_*.json
fi
