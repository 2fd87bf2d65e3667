#!/usr/bin/env bash
# The Sudoku results of results/sudoku/ (README "Sudoku"). Run from the repository root with the
# virtualenv active. Stages (pass one as $1, default all):
#   train-cpu  MDM, VMD (Gaussian prior), VMD (conditional prior, the best prior of
#              results/priors/) and VMD (Gaussian, 2 free nats) with the CPU config: same steps
#              and batch, one thread each
#   eval-cpu   every CPU checkpoint on the 1,000-puzzle test split: 3 orders x NFE 5/10/20/50
#              (z fixed), then z resampled and z from the guide with Top-Prob-Margin
#   report     markdown table (table.md) and plot (solve_rate.png) from eval_cpu_*.json
#   latent     does VMD use its latent? KL(q || p), active units and I(z; x) of each VMD
#              checkpoint on 500 generated puzzles (latent_<name>.json)
#   seed       MDM trained again with seed 1, Top-Prob-Margin only: how much a second training
#              run moves the solve rate (seed1_mdm.json)
#   ablation   MDM with the same budget but a plain transformer (--structure none): what the
#              row/column/box attention of the cpu config is worth (ablation_mdm_plain.json)
# Each training takes one core; the three can run side by side on separate cores:
#   bash experiments/sudoku_results.sh train-cpu mdm   (or gaussian, conditional, gaussian-free)
set -euo pipefail
OUT=results/sudoku
STAGE=${1:-all}
ONLY=${2:-}
COMMON=(--task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1)
# name and model flags of each CPU run
# (gaussian-free: the Gaussian VMD with 2 free nats of KL, against the posterior collapse that
# latent_gaussian.json shows; a training choice, so the loop over NAME covers it like the others)
declare -A MODELS=([mdm]="--model mdm" [gaussian]="--model vmd --prior gaussian"
                   [conditional]="--model vmd --prior conditional"
                   [gaussian-free]="--model vmd --prior gaussian --free-nats 2")

if [[ $STAGE == train-cpu || $STAGE == all ]]; then
  for NAME in mdm gaussian conditional gaussian-free; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" ${MODELS[$NAME]} --sudoku-config cpu \
      --steps 5000 --batch-size 64 --eval-every 1000 --nfe 10 --order top-prob-margin \
      --save $OUT/cpu-$NAME.pt --out $OUT/train_cpu_$NAME.json
  done
fi
if [[ $STAGE == eval-cpu || $STAGE == all ]]; then
  for NAME in mdm gaussian conditional gaussian-free; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" ${MODELS[$NAME]} --quiet \
      --checkpoint $OUT/cpu-$NAME.pt --out $OUT/eval_cpu_$NAME.json
  done
  # The latent redrawn during decoding, with Top-Prob-Margin: from the prior every step given the
  # cells decoded so far (resample; for the conditional prior that is p(z | xt), the same code
  # path as the strategy named prior), and from the guide given the current denoised estimate
  # (posterior).
  for NAME in gaussian conditional gaussian-free; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    for Z in resample posterior; do
      # shellcheck disable=SC2086
      python experiments/run.py "${COMMON[@]}" ${MODELS[$NAME]} --quiet --order top-prob-margin \
        --z-strategy $Z --checkpoint $OUT/cpu-$NAME.pt --out $OUT/eval_cpu_${NAME}_z-$Z.json
    done
  done
fi
if [[ $STAGE == latent || $STAGE == all ]]; then
  # --shared-seed-stream: the stream these puzzles were drawn from before generate had its own
  python experiments/sudoku.py generate --count 500 --clues 30 40 --seed 100 --shared-seed-stream \
    --out $OUT/latent_puzzles.txt
  for NAME in gaussian conditional gaussian-free; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    python experiments/sudoku.py latent --checkpoint $OUT/cpu-$NAME.pt \
      --puzzles $OUT/latent_puzzles.txt --json $OUT/latent_$NAME.json
  done
fi
if [[ $STAGE == seed || $STAGE == all ]]; then
  python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 \
    --seed 1 --threads 1 --model mdm --sudoku-config cpu --steps 5000 --batch-size 64 \
    --eval-every 1000 --order top-prob-margin --out $OUT/seed1_mdm.json
fi
if [[ $STAGE == ablation || $STAGE == all ]]; then
  python experiments/run.py "${COMMON[@]}" --model mdm --sudoku-config cpu --structure none \
    --steps 5000 --batch-size 64 --eval-every 1000 --order top-prob-margin \
    --out $OUT/ablation_mdm_plain.json
fi
if [[ $STAGE == report || $STAGE == all ]]; then
  # MDM first, then each VMD with its decoding variants
  python experiments/sudoku_report.py --out-dir $OUT $OUT/eval_cpu_mdm.json \
    $OUT/eval_cpu_gaussian.json $OUT/eval_cpu_gaussian_z-*.json \
    $OUT/eval_cpu_conditional*.json $(ls $OUT/eval_cpu_gaussian-free*.json 2>/dev/null)
fi
