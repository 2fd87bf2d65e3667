#!/bin/bash
# Seed 1's MDM trained on to seed 1's VMD total time (session 22): two chunks of 3,100 s after its
# 3,300 s fine-tune (4,371 + 6,200 s against the paths VMD's 10,568 s after `mdm.pt`), as seed 0's
# MDM was (chunks of 3,050 s); then its 16 sampled grids checked on the test and 17-29 splits.
set -e
cd /tmp/s22/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s22/wt
P=results/sudoku_hard/paths
PREV=$P/ft-mdm-steps-b64-seed1.pt
for CHUNK in ft2 ft3; do
  NAME=$CHUNK-mdm-steps-b64-seed1
  python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 1 --threads 1 \
    --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
    --data-cache /work/main/data_cache --model mdm --init-denoiser $PREV \
    --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3100 --batch-size 64 --lr 3e-4 \
    --eval-every 0 --objective steps --train-nfe 5 --train-order top-prob-margin --fill argmax \
    --bound-nfe 5 --bound-sequences 100 --quiet --save /tmp/s22/ft/$NAME.pt --out /tmp/s22/ft/train_$NAME.json
  echo "TRAINED $NAME $(date)"
  cp /tmp/s22/ft/$NAME.pt $P/
  PREV=$P/$NAME.pt
done
for split in test few; do
  [[ $split == test ]] && PUZ=results/sudoku_hard/select/test_data0.txt || PUZ=results/sudoku_hard/warm/few_clues_data0.txt
  python experiments/sudoku.py solve --checkpoint $PREV --fill sample --temperature 1 --candidates 16 \
    --select pseudo-likelihood --threads 1 --puzzles $PUZ --nfe 5 \
    --json /tmp/s22/ft/${split}_candidates16-t1-pseudo-likelihood_ft3-mdm-steps-b64-seed1_nfe{nfe}.json
  echo "DECODED $split $(date)"
done
echo "SEED1 MDM DONE $(date)"
