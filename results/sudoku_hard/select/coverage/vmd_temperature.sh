#!/bin/bash
# wait for the 4-grid reruns to finish, stop the driver before its 32-grid reruns, then decode the
# 16-valued VMD with sampled tokens at two temperatures
until grep -q "candidates4-t1-pseudo-likelihood_warm-mdm-seed1_nfe5.json old" /tmp/s19/coverage.log; do sleep 10; done
pkill -f "coverage.py" ; sleep 1; pkill -f "candidates32-t1-pseudo-likelihood" ; sleep 2
cd /tmp/s19/wt3 && . /work/main/.venv/bin/activate && export PYTHONPATH=/tmp/s19/wt3
for T in 0.5 0.25; do
  python experiments/sudoku.py solve --checkpoint results/sudoku_hard/warm/warm-exact16-film-steps5-top-prob-margin.pt \
    --fill sample --temperature $T --threads 1 --z-strategy enumerate --select pseudo-likelihood \
    --puzzles results/sudoku_hard/select/test_data0.txt --nfe 5 \
    --json /tmp/s19/vmdtemp/test_enumerate-t$T-pseudo-likelihood_warm-exact16_nfe{nfe}.json
done
echo QUEUE2 DONE
