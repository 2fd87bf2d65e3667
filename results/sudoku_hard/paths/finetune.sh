#!/bin/bash
# Fine-tune the 16-valued VMD of seed 0 for equal wall time with objective $1 (paths or steps) at batch $2.
set -e
cd /tmp/s20/wt1 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s20/wt1
NAME=ft-exact16-$1-b$2
python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1 \
  --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
  --data-cache /work/main/data_cache --model vmd --prior discrete --guide exact --components 16 --latent-dim 16 \
  --z-conditioning film --z-strategy fixed \
  --init-denoiser results/sudoku_hard/warm/warm-exact16-film-steps5-top-prob-margin.pt \
  --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3300 --batch-size $2 --lr 3e-4 \
  --anneal-steps 0 --eval-every 0 --objective $1 --train-nfe 5 --train-order top-prob-margin --fill argmax \
  --bound-nfe 5 --bound-sequences 100 --save /tmp/s20/ft/$NAME.pt --out /tmp/s20/ft/train_$NAME.json
echo TRAINED $NAME
