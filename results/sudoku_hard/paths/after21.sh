#!/bin/bash
# Session 21's decodes. On the core that seed 1's MDM fine-tune frees: the MDM halfway to equal
# total time (ft2), then the paths VMD at NFE 20 and 50. When chunk 3 is done: the equal-time MDM
# (ft3) with 16 checked grids on both splits (one core each) and one argmax decode at NFE 10-50.
# Checkpoints are decoded from the paths they are committed under.
set -e
cd /tmp/s21/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s21/wt
P=results/sudoku_hard/paths
TEST=results/sudoku_hard/select/test_data0.txt
FEW=results/sudoku_hard/warm/few_clues_data0.txt
until grep -q "SEED1 DONE" /tmp/s21/mdm_seed1.log; do sleep 30; done
until [[ -f /tmp/s21/ft/train_ft2-mdm-steps-b64.json ]]; do sleep 30; done
cp /tmp/s21/ft/ft2-mdm-steps-b64.pt $P/
python experiments/sudoku.py solve --checkpoint $P/ft2-mdm-steps-b64.pt --fill sample --temperature 1 \
  --candidates 16 --select pseudo-likelihood --threads 1 --puzzles $TEST --nfe 5 \
  --json /tmp/s21/ft/test_candidates16-t1-pseudo-likelihood_ft2-mdm-steps-b64_nfe{nfe}.json
echo "FT2 DECODED $(date)"
python experiments/sudoku.py solve --checkpoint $P/ft-exact16-paths-b16.pt --fill argmax --threads 1 \
  --z-strategy enumerate --select pseudo-likelihood --puzzles $TEST --nfe 20 50 \
  --json /tmp/s21/ft/test_enumerate-pseudo-likelihood_ft-exact16-paths-b16_nfe{nfe}.json
echo "PATHS NFE 20 50 DECODED $(date)"
until grep -q "MDM DONE" /tmp/s21/mdm_budget.log; do sleep 30; done
cp /tmp/s21/ft/ft3-mdm-steps-b64.pt $P/
python experiments/sudoku.py solve --checkpoint $P/ft3-mdm-steps-b64.pt --fill sample --temperature 1 \
  --candidates 16 --select pseudo-likelihood --threads 1 --puzzles $TEST --nfe 5 \
  --json /tmp/s21/ft/test_candidates16-t1-pseudo-likelihood_ft3-mdm-steps-b64_nfe{nfe}.json &
python experiments/sudoku.py solve --checkpoint $P/ft3-mdm-steps-b64.pt --fill sample --temperature 1 \
  --candidates 16 --select pseudo-likelihood --threads 1 --puzzles $FEW --nfe 5 \
  --json /tmp/s21/ft/few_candidates16-t1-pseudo-likelihood_ft3-mdm-steps-b64_nfe{nfe}.json
wait
python experiments/sudoku.py solve --checkpoint $P/ft3-mdm-steps-b64.pt --fill argmax --threads 1 \
  --puzzles $TEST --nfe 10 20 50 --json /tmp/s21/ft/test_argmax_ft3-mdm-steps-b64_nfe{nfe}.json
echo "ALL DONE $(date)"
