#!/bin/bash
# Both seed-0 models of the equal-time table trained on for another 2,100 s side by side (one core
# each): the paths VMD on paths, the equal-time MDM on steps; then both decoded at 160 passes on
# the test and 17-29 splits (one core each). Checkpoints are decoded from where they are committed.
set -e
cd /tmp/s21/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s21/wt
P=results/sudoku_hard/paths
COMMON="--task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1 \
  --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
  --data-cache /work/main/data_cache --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 2100 \
  --lr 3e-4 --eval-every 0 --train-nfe 5 --train-order top-prob-margin --fill argmax \
  --bound-nfe 5 --bound-sequences 100 --quiet"
cp /work/main/$P/ft3-mdm-steps-b64.pt $P/
python experiments/run.py $COMMON --model vmd --prior discrete --guide exact --components 16 --latent-dim 16 \
  --z-conditioning film --z-strategy fixed --init-denoiser $P/ft-exact16-paths-b16.pt --batch-size 16 \
  --anneal-steps 0 --objective paths --save /tmp/s21/ft/ft2-exact16-paths-b16.pt \
  --out /tmp/s21/ft/train_ft2-exact16-paths-b16.json > /tmp/s21/more_vmd.log 2>&1 &
python experiments/run.py $COMMON --model mdm --init-denoiser $P/ft3-mdm-steps-b64.pt --batch-size 64 \
  --objective steps --save /tmp/s21/ft/ft4-mdm-steps-b64.pt --out /tmp/s21/ft/train_ft4-mdm-steps-b64.json \
  > /tmp/s21/more_mdm.log 2>&1
wait
echo "TRAINED $(date)"
cp /tmp/s21/ft/ft2-exact16-paths-b16.pt /tmp/s21/ft/ft4-mdm-steps-b64.pt $P/
for split in test few; do
  [[ $split == test ]] && PUZ=results/sudoku_hard/select/test_data0.txt || PUZ=results/sudoku_hard/warm/few_clues_data0.txt
  python experiments/sudoku.py solve --checkpoint $P/ft2-exact16-paths-b16.pt --fill argmax --threads 1 \
    --z-strategy enumerate --select pseudo-likelihood --puzzles $PUZ --nfe 5 \
    --json /tmp/s21/ft/${split}_enumerate-pseudo-likelihood_ft2-exact16-paths-b16_nfe{nfe}.json &
  python experiments/sudoku.py solve --checkpoint $P/ft4-mdm-steps-b64.pt --fill sample --temperature 1 \
    --candidates 16 --select pseudo-likelihood --threads 1 --puzzles $PUZ --nfe 5 \
    --json /tmp/s21/ft/${split}_candidates16-t1-pseudo-likelihood_ft4-mdm-steps-b64_nfe{nfe}.json
  wait
  echo "DECODED $split $(date)"
done
echo "MORE DONE $(date)"
