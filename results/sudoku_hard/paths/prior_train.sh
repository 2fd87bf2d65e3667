#!/bin/bash
# Session 24: can a prior that reads the puzzle pick the value of z a `paths` VMD should hold?
# After `paths` training each value of z is a whole-grid guess (9.6 of 16 solve a test puzzle on
# average), so p(z | puzzle) would let one decode (5 passes) do what checking every z does with 160.
# Session 15's probe found that a head on the denoiser's features predicts none of a `steps` VMD's
# z; this asks the same of the `paths` VMD of seed 0. The `discrete-features` prior is given to it
# with --init-denoiser (denoiser, z embedding and pi copied; the head starts at zero, so training
# begins from exactly that VMD) and only prior.head is trained, on the `paths` objective: with the
# denoiser and the exact guide fixed, its gradient is the cross-entropy from the exact posterior
# given the whole path to p(z | puzzle). One CPU thread, 3,000 s.
set -e
cd /tmp/s24/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s24/wt
NAME=prior-exact16-paths-b16
mkdir -p /tmp/s24/prior
python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1 \
  --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
  --data-cache /tmp/s24/data_cache --model vmd --prior discrete-features --guide exact --components 16 --latent-dim 16 \
  --z-conditioning film --z-strategy fixed \
  --init-denoiser results/sudoku_hard/paths/ft-exact16-paths-b16.pt --train-only prior.head \
  --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3000 --batch-size 16 --lr 1e-3 \
  --anneal-steps 0 --eval-every 0 --objective paths --train-nfe 5 --train-order top-prob-margin --fill argmax \
  --bound-nfe 5 --bound-sequences 100 --save /tmp/s24/prior/$NAME.pt --out /tmp/s24/prior/train_$NAME.json
echo "TRAINED $NAME $(date)"
