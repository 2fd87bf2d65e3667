#!/bin/bash
# Seed 1's MDM control trained on for the same 3,300 s as seed 1's paths fine-tune (session 20),
# then its 16 sampled grids checked on the test split (160 passes, as the VMD's every z).
set -e
cd /tmp/s21/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s21/wt
NAME=ft-mdm-steps-b64-seed1
python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 1 --threads 1 \
  --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
  --data-cache /work/main/data_cache --model mdm \
  --init-denoiser results/sudoku_hard/warm/warm-mdm-steps5-seed1-top-prob-margin.pt \
  --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3300 --batch-size 64 --lr 3e-4 \
  --eval-every 0 --objective steps --train-nfe 5 --train-order top-prob-margin --fill argmax \
  --bound-nfe 5 --bound-sequences 100 --quiet --save /tmp/s21/ft/$NAME.pt --out /tmp/s21/ft/train_$NAME.json
echo "TRAINED $NAME $(date)"
CK=results/sudoku_hard/paths/$NAME.pt
cp /tmp/s21/ft/$NAME.pt $CK
python experiments/sudoku.py solve --checkpoint $CK --fill sample --temperature 1 --candidates 16 \
  --select pseudo-likelihood --threads 1 --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
  --json /tmp/s21/ft/test_candidates16-t1-pseudo-likelihood_${NAME}_nfe{nfe}.json
echo "SEED1 DONE $(date)"
