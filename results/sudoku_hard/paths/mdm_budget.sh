#!/bin/bash
# Seed 0's MDM control trained on to the VMD's total training time, in two chunks of 3,050 s
# (each from the previous checkpoint by --init-denoiser, as the session-20 fine-tunes were).
set -e
cd /tmp/s21/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s21/wt
INIT=results/sudoku_hard/paths/ft-mdm-steps-b64.pt
for chunk in 2 3; do
  NAME=ft${chunk}-mdm-steps-b64
  python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1 \
    --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
    --data-cache /work/main/data_cache --model mdm --init-denoiser $INIT \
    --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3050 --batch-size 64 --lr 3e-4 \
    --eval-every 0 --objective steps --train-nfe 5 --train-order top-prob-margin --fill argmax \
    --bound-nfe 5 --bound-sequences 100 --quiet --save /tmp/s21/ft/$NAME.pt \
    --out /tmp/s21/ft/train_$NAME.json
  echo "TRAINED $NAME $(date)"
  INIT=/tmp/s21/ft/$NAME.pt
done
echo "MDM DONE $(date)"
