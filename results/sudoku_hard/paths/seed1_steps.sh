#!/bin/bash
# Seed 1's steps control (session 22): the 16-valued VMD of seed 1 trained on for 3,300 s on the
# objective it was trained with (steps, batch 64), as seed 0's control was; then it and seed 1's
# paths VMD decoded with every z checked (160 passes) on the 17-29 split (and the control on the
# test split), and seed 1's MDM + 3,300 s with 16 checked grids on the 17-29 split.
set -e
cd /tmp/s22/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s22/wt
P=results/sudoku_hard/paths
NAME=ft-exact16-steps-b64-seed1
python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 1 --threads 1 \
  --order top-prob-margin --nfe 5 --test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200 \
  --data-cache /work/main/data_cache --model vmd --prior discrete --guide exact --components 16 --latent-dim 16 \
  --z-conditioning film --z-strategy fixed \
  --init-denoiser results/sudoku_hard/warm/warm-exact16-film-steps5-seed1-top-prob-margin.pt \
  --train-clues 17 40 --sudoku-config cpu --steps 100000 --time-budget 3300 --batch-size 64 --lr 3e-4 \
  --anneal-steps 0 --eval-every 0 --objective steps --train-nfe 5 --train-order top-prob-margin --fill argmax \
  --bound-nfe 5 --bound-sequences 100 --quiet --save /tmp/s22/ft/$NAME.pt --out /tmp/s22/ft/train_$NAME.json
echo "TRAINED $NAME $(date)"
cp /tmp/s22/ft/$NAME.pt $P/
for CK in ft-exact16-steps-b64-seed1 ft-exact16-paths-b16-seed1; do
  for split in test few; do
    [[ $split == test && $CK == *paths* ]] && continue  # decoded in session 20
    [[ $split == test ]] && PUZ=results/sudoku_hard/select/test_data0.txt || PUZ=results/sudoku_hard/warm/few_clues_data0.txt
    python experiments/sudoku.py solve --checkpoint $P/$CK.pt --fill argmax --threads 1 --z-strategy enumerate \
      --select pseudo-likelihood --puzzles $PUZ --nfe 5 \
      --json /tmp/s22/ft/${split}_enumerate-pseudo-likelihood_${CK}_nfe{nfe}.json
    echo "DECODED $CK $split $(date)"
  done
done
python experiments/sudoku.py solve --checkpoint $P/ft-mdm-steps-b64-seed1.pt --fill sample --temperature 1 \
  --candidates 16 --select pseudo-likelihood --threads 1 --puzzles results/sudoku_hard/warm/few_clues_data0.txt \
  --nfe 5 --json /tmp/s22/ft/few_candidates16-t1-pseudo-likelihood_ft-mdm-steps-b64-seed1_nfe{nfe}.json
echo "SEED1 STEPS DONE $(date)"
