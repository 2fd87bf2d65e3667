#!/bin/bash
# Session 22, after paired.sh: seed 0's steps control solved again with per-puzzle outcomes, to pair
# the paths fine-tune with the control of equal time (session 20 could compare only the rates).
set -e
cd /tmp/s22/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s22/wt
until grep -q "PAIRED DONE" /tmp/s22/paired.log; do sleep 20; done
P=results/sudoku_hard/paths
for split in test few; do
  [[ $split == test ]] && PUZ=results/sudoku_hard/select/test_data0.txt || PUZ=results/sudoku_hard/warm/few_clues_data0.txt
  python experiments/sudoku.py solve --checkpoint $P/ft-exact16-steps-b64.pt --fill argmax --threads 1 \
    --z-strategy enumerate --select pseudo-likelihood --puzzles $PUZ --nfe 5 \
    --json /tmp/s22/paired/${split}_enumerate-pseudo-likelihood_ft-exact16-steps-b64_nfe{nfe}.json
done
echo "PAIRED STEPS DONE $(date)"
