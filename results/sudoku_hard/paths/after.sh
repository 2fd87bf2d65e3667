#!/bin/bash
# After the two VMD fine-tunes: start MDM's equal-time fine-tune (one core) and decode both VMDs
# (the other core); then decode the MDM. Checkpoints are decoded from the paths they are committed under.
set -e
cd /tmp/s20/wt1 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s20/wt1
for n in paths-b16 steps-b64; do
  until [[ -f /tmp/s20/ft/train_ft-exact16-$n.json ]]; do sleep 20; done
done
mkdir -p results/sudoku_hard/paths
(python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1 \
  --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
  --data-cache /work/main/data_cache --model mdm \
  --init-denoiser results/sudoku_hard/warm/warm-mdm-steps5-top-prob-margin.pt \
  --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3300 --batch-size 64 --lr 3e-4 \
  --eval-every 0 --objective steps --train-nfe 5 --train-order top-prob-margin --fill argmax \
  --bound-nfe 5 --bound-sequences 100 --quiet --save /tmp/s20/ft/ft-mdm-steps-b64.pt \
  --out /tmp/s20/ft/train_ft-mdm-steps-b64.json > /tmp/s20/ft/mdm.log 2>&1; echo MDM TRAINED >> /tmp/s20/ft/mdm.log) &
for n in paths-b16 steps-b64; do
  CK=results/sudoku_hard/paths/ft-exact16-$n.pt
  cp /tmp/s20/ft/ft-exact16-$n.pt $CK
  python experiments/sudoku.py solve --checkpoint $CK --fill argmax --threads 1 --z-strategy enumerate \
    --select pseudo-likelihood --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
    --json /tmp/s20/ft/test_enumerate-pseudo-likelihood_ft-exact16-${n}_nfe{nfe}.json
  python experiments/sudoku.py solve --checkpoint $CK --fill argmax --threads 1 --z-strategy enumerate \
    --select pseudo-likelihood --puzzles results/sudoku_hard/warm/few_clues_data0.txt --nfe 5 \
    --json /tmp/s20/ft/few_enumerate-pseudo-likelihood_ft-exact16-${n}_nfe{nfe}.json
  OMP_NUM_THREADS=1 python experiments/sudoku.py latent --checkpoint $CK --puzzles results/sudoku_hard/select/test_data0.txt \
    --json /tmp/s20/ft/latent_ft-exact16-$n.json
done
echo VMD DECODED
wait
CK=results/sudoku_hard/paths/ft-mdm-steps-b64.pt
cp /tmp/s20/ft/ft-mdm-steps-b64.pt $CK
python experiments/sudoku.py solve --checkpoint $CK --fill sample --temperature 1 --candidates 16 \
  --select pseudo-likelihood --threads 1 --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
  --json /tmp/s20/ft/test_candidates16-t1-pseudo-likelihood_ft-mdm-steps-b64_nfe{nfe}.json &
python experiments/sudoku.py solve --checkpoint $CK --fill sample --temperature 1 --candidates 16 \
  --select pseudo-likelihood --threads 1 --puzzles results/sudoku_hard/warm/few_clues_data0.txt --nfe 5 \
  --json /tmp/s20/ft/few_candidates16-t1-pseudo-likelihood_ft-mdm-steps-b64_nfe{nfe}.json
wait
echo ALL DONE
