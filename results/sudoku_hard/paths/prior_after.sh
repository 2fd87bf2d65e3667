#!/bin/bash
# After prior_train.sh: put the checkpoint where it is committed, decode it as budget.sh decodes
# the paths VMD (its M most probable z under p(z | puzzle), and its mode) on both splits, and
# measure with `sudoku.py latent` how much of z the new prior predicts (KL(q || p) against I(z; x)).
set -e
until [[ -f /tmp/s24/prior/train_prior-exact16-paths-b16.json ]]; do sleep 20; done
cd /tmp/s24/wt2 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s24/wt2
P=results/sudoku_hard/paths
cp /tmp/s24/prior/prior-exact16-paths-b16.pt $P/
OMP_NUM_THREADS=1 python experiments/sudoku.py latent --checkpoint $P/prior-exact16-paths-b16.pt \
  --puzzles results/sudoku_hard/select/test_data0.txt --json /tmp/s24/budget/latent_prior-exact16-paths-b16.json
PRIOR=1 bash $P/budget.sh
PRIOR=1 SPLIT=few bash $P/budget.sh
echo "PRIOR DECODED $(date)"
