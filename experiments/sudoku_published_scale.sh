#!/usr/bin/env bash
# Published-scale Sudoku (issue 12): one prepared run for a session that is lent a GPU for a few
# minutes (not run yet: no session so far had one). Run from the repository root:
#
#   DEVICE=cpu SCALE=smoke RUN_DIR=/tmp/s bash experiments/sudoku_published_scale.sh  # CPU check
#
# On the device machine (python3 there has torch, not Pyro; Pyro and pyroapi are pure Python, so
# the virtualenv's copies travel): here, once,
#   echo /.gpu_site/ >> .git/info/exclude; mkdir -p .gpu_site
#   cp -r .venv/lib/python3.11/site-packages/{pyro,pyroapi} .gpu_site/
# then one device run with carry [".gpu_site", "data_cache"] and the command
#   PYTHONPATH=.gpu_site:. PYTHON=python3 bash experiments/sudoku_published_scale.sh
# ($OUT set there: the JSON, tables and plots come back packed in $OUT/sudoku_published_scale.tgz;
# checkpoints of 6M parameters are too large to come back and stay in RUN_DIR).
#
# Every run trains the `full` config (~6M parameters, plain transformer as published) under a
# wall-clock budget, so the whole script fits the device time (about 10 minutes at the default
# budgets; TIME_MDM, TIME_FT set them in seconds):
#   1. mdm        MDM from scratch on the continuous NELBO, 30-40-clue grids (TIME_MDM)
#   2. ft-mdm     its MDM control: TIME_FT more seconds on B_1 + B_2 from mdm's denoiser
#   3. ft-vmd     VMD warm-started from mdm the same way: a discrete z with 8 values in every layer
#                 (FiLM), summed out with its exact posterior (--guide exact): the recipe whose
#                 latent is used on the CPU models (results/sudoku_levers, "Warm starts")
#   4. each checkpoint on the 1,000-puzzle test split, Top-Prob-Margin, NFE 5/10/20/50, sampled
#      and argmax tokens (VMD: z fixed), and B_1, B_2 on all 1,000 test puzzles (4 orders)
set -euo pipefail
RUN_DIR=${RUN_DIR:-runs/sudoku_published_scale}
PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
SCALE=${SCALE:-full}             # smoke: the cpu config and a few steps, to check the script
TIME_MDM=${TIME_MDM:-240}
TIME_FT=${TIME_FT:-90}
mkdir -p "$RUN_DIR"
if [[ $SCALE == smoke ]]; then
  NET=(--sudoku-config cpu --batch-size 16 --steps 20 --eval-every 10)
  FT_STEPS=(--steps 10 --eval-every 5)
  TEST=(--test-puzzles 50 --val-puzzles 20)
else
  NET=(--sudoku-config full --batch-size 256 --lr 1e-3 --steps 100000 --eval-every 2000)
  FT_STEPS=(--steps 100000 --lr 3e-4 --eval-every 1000)
  TEST=(--test-puzzles 1000 --val-puzzles 200)
fi
COMMON=(--task sudoku --clues 30 40 "${TEST[@]}" --seed 0 --device "$DEVICE" --quiet
        --order top-prob-margin)
FEW=(--objective steps --train-nfe 1 2)
VMD=(--model vmd --prior discrete --guide exact --components 8 --latent-dim 16
     --z-conditioning film --z-init-std 0.05 --z-strategy fixed)
SKIP_BOUNDS=(--bound-nfe 1 --bound-sequences 1)   # training runs: the bounds come in step 4

$PYTHON experiments/run.py "${COMMON[@]}" "${NET[@]}" --model mdm --time-budget "$TIME_MDM" \
  --nfe 5 10 20 50 "${SKIP_BOUNDS[@]}" --save "$RUN_DIR/mdm.pt" --out "$RUN_DIR/train_mdm.json"
# the warm starts keep the network (--init-denoiser refuses another): later options win
$PYTHON experiments/run.py "${COMMON[@]}" "${NET[@]}" "${FT_STEPS[@]}" --model mdm "${FEW[@]}" \
  --init-denoiser "$RUN_DIR/mdm.pt" --time-budget "$TIME_FT" --nfe 5 "${SKIP_BOUNDS[@]}" \
  --save "$RUN_DIR/ft-mdm.pt" --out "$RUN_DIR/train_ft-mdm.json"
$PYTHON experiments/run.py "${COMMON[@]}" "${NET[@]}" "${FT_STEPS[@]}" "${VMD[@]}" "${FEW[@]}" \
  --init-denoiser "$RUN_DIR/mdm.pt" --time-budget "$TIME_FT" --nfe 5 "${SKIP_BOUNDS[@]}" \
  --save "$RUN_DIR/ft-vmd.pt" --out "$RUN_DIR/train_ft-vmd.json"
for NAME in mdm ft-mdm ft-vmd; do
  MODEL=(--model mdm)
  [[ $NAME == ft-vmd ]] && MODEL=("${VMD[@]}")
  for FILL in sample argmax; do
    $PYTHON experiments/run.py "${COMMON[@]}" "${NET[@]}" "${MODEL[@]}" --checkpoint "$RUN_DIR/$NAME.pt" \
      --fill $FILL --nfe 5 10 20 50 "${SKIP_BOUNDS[@]}" --out "$RUN_DIR/eval_${NAME}_$FILL.json"
  done
  $PYTHON experiments/run.py "${COMMON[@]}" "${NET[@]}" "${MODEL[@]}" --checkpoint "$RUN_DIR/$NAME.pt" \
    --nfe 1 2 --bound-nfe 1 2 --bound-sequences "${TEST[1]}" --bound-orders 4 \
    --out "$RUN_DIR/bounds_$NAME.json"
done
$PYTHON experiments/sudoku_fill_report.py "$RUN_DIR"/eval_*_argmax.json \
  --sampled "$RUN_DIR"/eval_*_sample.json --out-dir "$RUN_DIR"
if [[ -n ${OUT:-} ]]; then
  tar czf "$OUT/sudoku_published_scale.tgz" -C "$RUN_DIR" \
    $(cd "$RUN_DIR" && ls *.json *.md *.png)
fi
