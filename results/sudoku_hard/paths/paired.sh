#!/bin/bash
# Session 22: the equal-time decodes of seed 0 (and seed 1's paths VMD on the test split) solved
# again, unchanged, now that solve --json keeps each puzzle's outcome, so that sudoku.py compare
# can pair them puzzle by puzzle. Runs on the core seed1_steps.sh leaves free.
set -e
cd /tmp/s22/wt && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s22/wt
until grep -q "SEED1 STEPS DONE" /tmp/s22/steps.log; do sleep 20; done
P=results/sudoku_hard/paths
mkdir -p /tmp/s22/paired
for split in test few; do
  [[ $split == test ]] && PUZ=results/sudoku_hard/select/test_data0.txt || PUZ=results/sudoku_hard/warm/few_clues_data0.txt
  for CK in ft-exact16-paths-b16 ft2-exact16-paths-b16; do
    python experiments/sudoku.py solve --checkpoint $P/$CK.pt --fill argmax --threads 1 --z-strategy enumerate \
      --select pseudo-likelihood --puzzles $PUZ --nfe 5 \
      --json /tmp/s22/paired/${split}_enumerate-pseudo-likelihood_${CK}_nfe{nfe}.json
  done
  for CK in ft3-mdm-steps-b64 ft4-mdm-steps-b64; do
    python experiments/sudoku.py solve --checkpoint $P/$CK.pt --fill sample --temperature 1 --candidates 16 \
      --select pseudo-likelihood --threads 1 --puzzles $PUZ --nfe 5 \
      --json /tmp/s22/paired/${split}_candidates16-t1-pseudo-likelihood_${CK}_nfe{nfe}.json
  done
  echo "PAIRED $split $(date)"
done
python experiments/sudoku.py solve --checkpoint $P/ft-exact16-paths-b16-seed1.pt --fill argmax --threads 1 \
  --z-strategy enumerate --select pseudo-likelihood --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
  --json /tmp/s22/paired/test_enumerate-pseudo-likelihood_ft-exact16-paths-b16-seed1_nfe{nfe}.json
echo "PAIRED DONE $(date)"
