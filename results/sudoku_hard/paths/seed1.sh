#!/bin/bash
# The paths fine-tune on the 16-valued VMD of seed 1 (after the seed-0 decodes), then its test-split decode.
set -e
cd /tmp/s20/wt1 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s20/wt1
until grep -q "VMD DECODED" /tmp/s20/ft/after.log; do sleep 20; done
NAME=ft-exact16-paths-b16-seed1
python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 1 --threads 1 \
  --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
  --data-cache /work/main/data_cache --model vmd --prior discrete --guide exact --components 16 --latent-dim 16 \
  --z-conditioning film --z-strategy fixed \
  --init-denoiser results/sudoku_hard/warm/warm-exact16-film-steps5-seed1-top-prob-margin.pt \
  --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3300 --batch-size 16 --lr 3e-4 \
  --anneal-steps 0 --eval-every 0 --objective paths --train-nfe 5 --train-order top-prob-margin --fill argmax \
  --bound-nfe 5 --bound-sequences 100 --quiet --save /tmp/s20/ft/$NAME.pt --out /tmp/s20/ft/train_$NAME.json
CK=results/sudoku_hard/paths/$NAME.pt
cp /tmp/s20/ft/$NAME.pt $CK
python experiments/sudoku.py solve --checkpoint $CK --fill argmax --threads 1 --z-strategy enumerate \
  --select pseudo-likelihood --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
  --json /tmp/s20/ft/test_enumerate-pseudo-likelihood_${NAME}_nfe{nfe}.json
echo SEED1 DONE
