#!/bin/bash
# after the 16-valued VMD of seed 1 is trained: decode it as the seed-0 one was decoded
set -e
CK=/tmp/s19/warm/warm-exact16-film-steps5-seed1-top-prob-margin.pt
until [[ -f /tmp/s19/warm/train_warm-exact16-film-steps5-seed1-top-prob-margin.json ]]; do sleep 20; done
cd /tmp/s19/wt4 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s19/wt4
mkdir -p /tmp/s19/seed1 && cp "$CK" results/sudoku_hard/warm/   # decoded from the path it is committed under
CK=results/sudoku_hard/warm/$(basename "$CK")
python experiments/sudoku.py solve --checkpoint "$CK" --fill argmax --threads 1 --z-strategy enumerate \
  --select pseudo-likelihood --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
  --json /tmp/s19/seed1/test_enumerate-pseudo-likelihood_warm-exact16-seed1_nfe{nfe}.json
python experiments/sudoku.py solve --checkpoint "$CK" --fill argmax --threads 1 --z-strategy fixed \
  --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
  --json /tmp/s19/seed1/test_single_warm-exact16-seed1_nfe{nfe}.json
python experiments/sudoku.py solve --checkpoint "$CK" --fill argmax --threads 1 --z-strategy enumerate \
  --select pseudo-likelihood --puzzles results/sudoku_hard/warm/few_clues_data0.txt --nfe 5 --failures \
  --json /tmp/s19/seed1/enumerate-pseudo-likelihood_warm-exact16-seed1_nfe{nfe}.json
python experiments/sudoku.py latent --checkpoint "$CK" --puzzles results/sudoku_hard/select/test_data0.txt \
  --json /tmp/s19/seed1/test_latent_warm-exact16-film-steps5-seed1-top-prob-margin.json
echo SEED1 DONE
