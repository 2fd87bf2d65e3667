#!/usr/bin/env bash
# Sudoku levers of session 5 (results/sudoku_levers/, issues 12 and 13). Run from the repository
# root with the virtualenv active. Stages (pass one as $1, default all; $2 picks one model):
#   train    each model below: the `cpu` config, seed 0, one thread, Top-Prob-Margin at NFE
#            5/10/20/50 on the 1,000-puzzle 30-40-clue test split, B_5 on 100 test puzzles
#   latent   does each VMD use its latent: KL(q || p), active units, I(z; x) on the 500 puzzles
#            of results/sudoku/latent_puzzles.txt
#   zcut     does decoding depend on z at all: each VMD (these and results/sudoku's committed
#            ones) fills the 500 puzzles of results/sudoku/latent_puzzles.txt at NFE 5
#            (Top-Prob-Margin, z fixed) as trained and with its z input cut off (--without-latent)
#   failures session 6: why the unsolved puzzles fail (sudoku.py solve --failures): MDM at NFE
#            5/10/20/50 and each VMD at NFE 5, on the 500 puzzles of results/sudoku/latent_puzzles.txt
#   bounds   session 6: the few-step bounds B_1, B_2, B_5 (random order, sampled fills, z
#            resampled) per blank on 100 test puzzles, MDM seeds 0 and 2 and the small-guide VMD
#            seeds 0-2, from the checkpoints (no training)
#   bounds1k session 8: B_1 and B_2 of the warm-started B_1 + B_2 models and their MDM controls
#            (B_5 of the B_5 ones) on all 1,000 test puzzles with 4 random orders each (the 100-puzzle B_2 above moves by
#            about 0.01 bits per blank with the random stream; this is the precise comparison)
#   argmax   session 8: every committed Sudoku checkpoint (these and results/sudoku*/) fills the
#            1,000 test puzzles with argmax instead of sampled tokens (Top-Prob-Margin, NFE
#            5/10/20/50, z fixed as in the original method; models trained on a few-step bound
#            also with z resampled, the generator that bound describes), no training; fill.md and
#            fill.png (argmax beside sampled), argmax_report/ (solve rate against NFE, 5 models)
#   failures-argmax  session 8: the failures stage for the warm-started MDM ft-mdm with sampled and
#            argmax tokens at NFE 5/10/20/50 (the room left for coordinating the cells of a call)
#   report   table.md and solve_rate.png
#   oracle   session 14, not part of "all": how far a perfect prior could take the informative
#            latents (the exact-posterior VMDs, K 4 and 8): the 500 puzzles of
#            results/sudoku/latent_puzzles.txt, argmax, NFE 5/10, each VMD with z fixed and with z
#            redrawn before every call from its posterior given the solution (--z-strategy
#            oracle), beside their MDM controls; files $OUT/oracle/
# Models:
#   mdm-now          MDM at today's code with the committed results/sudoku/cpu-mdm.pt's options:
#                    the like-for-like baseline of everything below (the committed MDM was
#                    trained at an earlier commit)
#   gaussian-small   VMD, N(0, I), latent 2, objective J, the small default guide (a quarter of
#                    the width, a third of the depth): issue 13's check against the full-size
#                    guide of results/sudoku/cpu-gaussian.pt, same options otherwise
#   gaussian-small-seed1, -seed2   the same with seeds 1 and 2 (is its gain over MDM
#                    reproducible?), and mdm-now-seed2 MDM with seed 2 (MDM's own spread)
#   free-film-z16    VMD, N(0, I), 2 free nats, latent 16, z in every layer (FiLM): the committed
#                    free-nats run solved 63.5% at NFE 5 against MDM's 56.0%
#   residual-free-film-z16  session 6, lever 2: free-film-z16 with the guide that also reads the
#                    denoiser's z-free probabilities (--guide normal-residual)
#   slow-anneal-film-z16    session 6: VMD, N(0, I), latent 16, FiLM, objective J, the KL weight
#                    rising from 0 to 1 over the whole run (--anneal-steps 5000, default 1000), so
#                    that z has a long cheap window to become informative before it pays in full
#   slow-anneal-film-z16-steps5   the same trained on B_5 (--objective steps --train-nfe 5), z
#                    resampled from the prior every step when decoding (the generator B_5 describes)
#   ft-*             session 7, warm start: 2,000 more steps at lr 1e-3 from mdm-now.pt's
#                    denoiser (--init-denoiser; a VMD's z weights start at zero, so it starts as
#                    that MDM), so that z only has the trained denoiser's remaining errors to
#                    encode: ft-mdm (objective J) and ft-mdm-steps5 (B_5) are the controls of
#                    ft-film-z16 (VMD, N(0, I), latent 16, FiLM, J) and ft-film-z16-steps5 (B_5,
#                    z resampled)
#   ft-discrete16-head[-steps5]  the same warm start with a discrete z of 16 values summed out
#                    exactly (TraceEnum_ELBO) that scales and shifts only the denoiser's last
#                    features (--z-conditioning head: one trunk pass serves all 16 values), on J
#                    (z fixed while decoding) or B_5 (z resampled)
#   ft-*-steps12     the same warm start trained on B_1 and B_2 (one or two calls fill every
#                    blank: where the cells filled together are most, and a latent has the most
#                    to coordinate), scored on those bounds: MDM, N(0, I) z 16 FiLM, mixture K 64
#   ft-exact16-head[-steps12]  the discrete head model with no guide network: q is the model's
#                    own exact posterior over the 16 values (--guide exact), so the objective is
#                    the mixture's exact log-likelihood and nothing can hide a useful latent
#   ft-exact16-head-rand[-steps12]  the same with the head's z weights drawn from N(0, 0.05^2)
#                    (--z-init-std): the 16 values predict differently from the first step
#                    instead of starting identical (a symmetric point training leaves slowly)
#   ft-exact4-film-steps12  a discrete z with 4 values that steers every layer (FiLM, random
#                    start), exact posterior, B_1 + B_2: each value costs a full network pass,
#                    so 1,000 steps on two threads (half the others' budget); -2k: the others'
#                    2,000 steps on one thread, with 4 or 8 values; -seed1: the 4-valued run
#                    and its MDM control again with seed 1 (other batches and z weights)
#   ft-exact4-film-steps5  session 8: the 4-valued FiLM z with its exact posterior trained on B_5,
#                    the bound of the decoder it is scored with (control: ft-mdm-steps5)
#   mog64-film-steps5-z16   VMD, mixture prior (K = 64), latent 16, FiLM, trained on the few-step
#                    bound B_5 on 17-40-clue grids (4,000 steps, lr 3e-3): the recipe that works on
#                    the synthetic sets, beside results/sudoku_hard's B_5 runs
set -euo pipefail
OUT=${OUT:-results/sudoku_levers}  # OUT=/tmp/x to write elsewhere
STAGE=${1:-all}
ONLY=${2:-}
COMMON=(--task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1
        --order top-prob-margin --nfe 5 10 20 50 --sudoku-config cpu --batch-size 64)
WARM_START="--init-denoiser results/sudoku_levers/mdm-now.pt --steps 2000 --lr 1e-3 --eval-every 500"
WARM="$WARM_START --bound-nfe 5 --bound-sequences 100"
FEW="--objective steps --train-nfe 1 2 --nfe 1 2 5 --bound-nfe 1 2 --bound-sequences 100"
declare -A MODELS=(
  [mdm-now]="--model mdm --steps 5000 --eval-every 1000 --bound-nfe 5 --bound-sequences 100"
  [gaussian-small]="--model vmd --prior gaussian --steps 5000 --eval-every 1000 --z-strategy fixed"
  [gaussian-small-seed1]="--model vmd --prior gaussian --steps 5000 --eval-every 1000
                   --z-strategy fixed --seed 1"
  [gaussian-small-seed2]="--model vmd --prior gaussian --steps 5000 --eval-every 1000
                   --z-strategy fixed --seed 2 --bound-nfe 5 --bound-sequences 100"
  [mdm-now-seed2]="--model mdm --steps 5000 --eval-every 1000 --bound-nfe 5 --bound-sequences 100
                   --seed 2"
  [free-film-z16]="--model vmd --prior gaussian --free-nats 2 --latent-dim 16 --z-conditioning film
                   --steps 5000 --eval-every 1000 --z-strategy fixed --bound-nfe 5
                   --bound-sequences 100"
  [residual-free-film-z16]="--model vmd --prior gaussian --free-nats 2 --latent-dim 16
                   --z-conditioning film --guide normal-residual --steps 5000 --eval-every 1000
                   --z-strategy fixed --bound-nfe 5 --bound-sequences 100"
  [slow-anneal-film-z16]="--model vmd --prior gaussian --latent-dim 16 --z-conditioning film
                   --anneal-steps 5000 --steps 5000 --eval-every 1000 --z-strategy fixed
                   --bound-nfe 5 --bound-sequences 100"
  [slow-anneal-film-z16-steps5]="--model vmd --prior gaussian --latent-dim 16 --z-conditioning film
                   --anneal-steps 5000 --objective steps --train-nfe 5 --steps 5000
                   --eval-every 1000 --z-strategy resample --bound-nfe 5 --bound-sequences 100"
  [mog64-film-steps5-z16]="--model vmd --prior mog --components 64 --latent-dim 16
                   --z-conditioning film --objective steps --train-nfe 5 --z-strategy resample
                   --train-clues 17 40 --steps 4000 --lr 3e-3 --eval-every 500 --save-every 500
                   --time-budget 4200 --bound-nfe 5 10 --bound-sequences 100"
  [ft-mdm]="--model mdm $WARM"
  [ft-mdm-steps5]="--model mdm --objective steps --train-nfe 5 $WARM"
  [ft-film-z16]="--model vmd --prior gaussian --latent-dim 16 --z-conditioning film
                   --z-strategy fixed $WARM"
  [ft-film-z16-steps5]="--model vmd --prior gaussian --latent-dim 16 --z-conditioning film
                   --objective steps --train-nfe 5 --z-strategy resample $WARM"
  [ft-discrete16-head]="--model vmd --prior discrete --components 16 --latent-dim 16
                   --z-conditioning head --z-strategy fixed $WARM"
  [ft-discrete16-head-steps5]="--model vmd --prior discrete --components 16 --latent-dim 16
                   --z-conditioning head --objective steps --train-nfe 5 --z-strategy resample
                   $WARM"
  [ft-mdm-steps12]="--model mdm $FEW $WARM_START"
  [ft-film-z16-steps12]="--model vmd --prior gaussian --latent-dim 16 --z-conditioning film
                   --z-strategy resample $FEW $WARM_START"
  [ft-mog64-film-z16-steps12]="--model vmd --prior mog --components 64 --latent-dim 16
                   --z-conditioning film --z-strategy resample $FEW $WARM_START"
  [ft-exact16-head]="--model vmd --prior discrete --guide exact --components 16 --latent-dim 16
                   --z-conditioning head --z-strategy fixed $WARM"
  [ft-exact16-head-steps12]="--model vmd --prior discrete --guide exact --components 16
                   --latent-dim 16 --z-conditioning head --z-strategy resample $FEW $WARM_START"
  [ft-exact16-head-rand]="--model vmd --prior discrete --guide exact --components 16
                   --latent-dim 16 --z-conditioning head --z-init-std 0.05 --z-strategy fixed $WARM"
  [ft-exact16-head-rand-steps12]="--model vmd --prior discrete --guide exact --components 16
                   --latent-dim 16 --z-conditioning head --z-init-std 0.05 --z-strategy resample
                   $FEW $WARM_START"
  [ft-exact4-film-steps12]="--model vmd --prior discrete --guide exact --components 4
                   --latent-dim 16 --z-conditioning film --z-init-std 0.05 --z-strategy resample
                   $FEW --init-denoiser results/sudoku_levers/mdm-now.pt --steps 1000 --lr 1e-3
                   --eval-every 250 --threads 2"
  [ft-exact4-film-steps12-2k]="--model vmd --prior discrete --guide exact --components 4
                   --latent-dim 16 --z-conditioning film --z-init-std 0.05 --z-strategy resample
                   $FEW $WARM_START"
  [ft-exact8-film-steps12-2k]="--model vmd --prior discrete --guide exact --components 8
                   --latent-dim 16 --z-conditioning film --z-init-std 0.05 --z-strategy resample
                   $FEW $WARM_START"
  [ft-mdm-steps12-seed1]="--model mdm $FEW $WARM_START --seed 1"
  [ft-exact4-film-steps12-2k-seed1]="--model vmd --prior discrete --guide exact --components 4
                   --latent-dim 16 --z-conditioning film --z-init-std 0.05 --z-strategy resample
                   $FEW $WARM_START --seed 1"
  [ft-exact4-film-steps5]="--model vmd --prior discrete --guide exact --components 4
                   --latent-dim 16 --z-conditioning film --z-init-std 0.05 --objective steps
                   --train-nfe 5 --z-strategy fixed $WARM")
NAMES=(mdm-now mdm-now-seed2 gaussian-small gaussian-small-seed1 gaussian-small-seed2 free-film-z16
       mog64-film-steps5-z16 residual-free-film-z16 slow-anneal-film-z16
       slow-anneal-film-z16-steps5 ft-mdm ft-mdm-steps5 ft-film-z16 ft-film-z16-steps5
       ft-discrete16-head ft-discrete16-head-steps5 ft-mdm-steps12 ft-film-z16-steps12
       ft-mog64-film-z16-steps12 ft-exact16-head ft-exact16-head-steps12
       ft-exact16-head-rand ft-exact16-head-rand-steps12 ft-exact4-film-steps12
       ft-exact4-film-steps12-2k ft-exact8-film-steps12-2k ft-mdm-steps12-seed1
       ft-exact4-film-steps12-2k-seed1 ft-exact4-film-steps5)

if [[ $STAGE == train || $STAGE == all ]]; then
  for NAME in "${NAMES[@]}"; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" ${MODELS[$NAME]} --save $OUT/$NAME.pt \
      --out $OUT/train_$NAME.json
  done
fi
if [[ $STAGE == latent || $STAGE == all ]]; then
  for NAME in "${NAMES[@]}"; do
    [[ $NAME == *mdm* || ( -n $ONLY && $ONLY != "$NAME" ) ]] && continue
    python experiments/sudoku.py latent --checkpoint $OUT/$NAME.pt \
      --puzzles results/sudoku/latent_puzzles.txt --json $OUT/latent_$NAME.json
  done
fi
if [[ $STAGE == zcut || $STAGE == all ]]; then
  for CKPT in $OUT/gaussian-small.pt $OUT/gaussian-small-seed1.pt $OUT/gaussian-small-seed2.pt \
              $OUT/free-film-z16.pt \
              $OUT/mog64-film-steps5-z16.pt $OUT/residual-free-film-z16.pt \
              $OUT/slow-anneal-film-z16.pt $OUT/slow-anneal-film-z16-steps5.pt \
              results/sudoku/cpu-gaussian.pt results/sudoku/cpu-conditional.pt \
              results/sudoku/cpu-gaussian-free.pt; do
    NAME=$(basename "$CKPT" .pt)
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    STRATEGY=fixed
    [[ $NAME == mog64* || $NAME == *steps5 ]] && STRATEGY=resample  # as in its table row
    for CUT in "" --without-latent; do
      python experiments/sudoku.py solve --checkpoint "$CKPT" --threads 1 --nfe 5 \
        --puzzles results/sudoku/latent_puzzles.txt --z-strategy $STRATEGY $CUT \
        --json "$OUT/zcut_${NAME}${CUT:+_without-latent}.json"
    done
  done
fi
if [[ $STAGE == failures || $STAGE == all ]]; then
  for NFE in 5 10 20 50; do
    for NAME in mdm-now mdm-now-seed2; do
      python experiments/sudoku.py solve --checkpoint $OUT/$NAME.pt --threads 1 --nfe $NFE \
        --puzzles results/sudoku/latent_puzzles.txt --failures \
        --json "$OUT/failures_${NAME}_nfe$NFE.json"
    done
  done
  for NAME in gaussian-small gaussian-small-seed1 gaussian-small-seed2 free-film-z16 \
              residual-free-film-z16 slow-anneal-film-z16; do
    python experiments/sudoku.py solve --checkpoint $OUT/$NAME.pt --threads 1 --nfe 5 \
      --puzzles results/sudoku/latent_puzzles.txt --failures --json "$OUT/failures_${NAME}_nfe5.json"
  done
  python experiments/sudoku_failures_report.py $OUT/failures_*.json --out-dir $OUT
fi
if [[ $STAGE == bounds || $STAGE == all ]]; then
  for NAME in mdm-now mdm-now-seed2 gaussian-small gaussian-small-seed1 gaussian-small-seed2; do
    MODEL=(--model mdm)
    [[ $NAME == gaussian* ]] && MODEL=(--model vmd --prior gaussian --z-strategy fixed)
    python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 \
      --seed 0 --threads 1 --order top-prob-margin --nfe 5 --sudoku-config cpu "${MODEL[@]}" \
      --checkpoint $OUT/$NAME.pt --bound-nfe 1 2 5 --bound-sequences 100 \
      --out $OUT/bounds_$NAME.json
  done
fi
if [[ $STAGE == bounds1k || $STAGE == all ]]; then
  for NAME in ft-mdm-steps12 ft-mdm-steps12-seed1 ft-exact4-film-steps12-2k \
              ft-exact4-film-steps12-2k-seed1 ft-exact8-film-steps12-2k ft-mdm-steps5 \
              ft-exact4-film-steps5; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    MODEL=(--model mdm)
    [[ $NAME == *exact* ]] && MODEL=(--model vmd --z-strategy resample)
    NFE=(1 2)
    [[ $NAME == *steps5 ]] && NFE=(5)  # the bound each was trained on
    python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 \
      --seed 0 --threads 1 --order top-prob-margin --nfe "${NFE[@]}" --sudoku-config cpu \
      "${MODEL[@]}" --checkpoint results/sudoku_levers/$NAME.pt --bound-nfe "${NFE[@]}" \
      --bound-sequences 1000 --bound-orders 4 --quiet --out $OUT/bounds1k_$NAME.json
  done
fi
if [[ $STAGE == argmax || $STAGE == all ]]; then
  for CKPT in results/sudoku_levers/*.pt results/sudoku/*.pt results/sudoku_hard/*.pt; do
    NAME=$(basename "$CKPT" .pt)
    [[ $CKPT == results/sudoku/* ]] && NAME=committed-$NAME
    [[ $CKPT == results/sudoku_hard/* ]] && NAME=hard-$NAME
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    MODEL=$(python -c "from vmd_pyro.checkpoint import checkpoint_model; print(checkpoint_model('$CKPT'))")
    STRATEGIES=(fixed)
    [[ $MODEL == mdm ]] && STRATEGIES=(none)
    [[ $MODEL == vmd && ( $NAME == *steps* || $NAME == mog64* ) ]] && STRATEGIES=(fixed resample)
    for STRATEGY in "${STRATEGIES[@]}"; do
      Z=()
      [[ $STRATEGY != none ]] && Z=(--z-strategy "$STRATEGY")
      # the bound does not depend on the fill: one puzzle keeps its cost negligible
      python experiments/run.py --task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 \
        --seed 0 --threads 1 --order top-prob-margin --nfe 5 10 20 50 --sudoku-config cpu \
        --fill argmax --model "$MODEL" "${Z[@]}" --checkpoint "$CKPT" --bound-nfe 1 \
        --bound-sequences 1 --quiet --out "$OUT/argmax_${NAME}${Z:+_z-$STRATEGY}.json"
    done
  done
  if [[ -z $ONLY ]]; then
    python experiments/sudoku_fill_report.py $OUT/argmax_*.json \
      --sampled results/sudoku_levers/train_*.json results/sudoku/eval_cpu_*.json \
      results/sudoku_hard/train_*.json --out-dir $OUT
    python experiments/sudoku_report.py --out-dir $OUT/argmax_report $OUT/argmax_ft-mdm.json \
      $OUT/argmax_ft-mdm-steps12.json $OUT/argmax_ft-exact16-head_z-fixed.json \
      $OUT/argmax_ft-exact4-film-steps12-2k_z-fixed.json \
      $OUT/argmax_ft-exact8-film-steps12-2k_z-fixed.json \
      --names "MDM, warm start, J" "MDM, warm start, B_1 + B_2" \
        "VMD discrete 16, head, exact posterior, J" "VMD discrete 4, FiLM, exact posterior, B_1 + B_2" \
        "VMD discrete 8, FiLM, exact posterior, B_1 + B_2"
  fi
fi
if [[ $STAGE == failures-argmax || $STAGE == all ]]; then
  for NFE in 5 10 20 50; do
    for FILL in sample argmax; do
      NAME=failures-argmax
      [[ $FILL == sample ]] && NAME=failures
      python experiments/sudoku.py solve --checkpoint results/sudoku_levers/ft-mdm.pt \
        --threads 1 --nfe $NFE --fill $FILL --puzzles results/sudoku/latent_puzzles.txt \
        --failures --json "$OUT/${NAME}_ft-mdm_nfe$NFE.json"
    done
  done
  python experiments/sudoku_failures_report.py $OUT/failures_*.json $OUT/failures-argmax_*.json \
    --out-dir $OUT
fi
if [[ $STAGE == report || $STAGE == all ]]; then
  python experiments/sudoku_report.py --out-dir $OUT results/sudoku/eval_cpu_mdm.json \
    $OUT/train_mdm-now.json $OUT/train_mdm-now-seed2.json results/sudoku/eval_cpu_gaussian.json \
    $OUT/train_gaussian-small.json $OUT/train_gaussian-small-seed1.json \
    $OUT/train_gaussian-small-seed2.json results/sudoku/eval_cpu_gaussian-free.json \
    $OUT/train_free-film-z16.json $OUT/train_residual-free-film-z16.json \
    $OUT/train_mog64-film-steps5-z16.json $OUT/train_slow-anneal-film-z16.json \
    $OUT/train_slow-anneal-film-z16-steps5.json $OUT/train_ft-mdm.json \
    $OUT/train_ft-film-z16.json $OUT/train_ft-exact16-head.json \
    --names "MDM (committed)" "MDM (today)" "MDM, seed 2" "VMD gaussian, full guide (committed)" \
      "VMD gaussian, small guide (today)" "VMD gaussian, small guide, seed 1" \
      "VMD gaussian, small guide, seed 2" \
      "VMD gaussian, 2 free nats (committed)" \
      "VMD gaussian, 2 free nats, FiLM, z16" "VMD the same, residual guide" \
      "VMD mog64, FiLM, z16, B_5 (17-40)" "VMD gaussian, FiLM, z16, slow annealing" \
      "VMD the same on B_5" "MDM, warm start +2000 steps" "VMD gaussian, FiLM, z16, warm start" \
      "VMD discrete 16, head, exact posterior, warm start"
fi
if [[ $STAGE == oracle ]]; then
  mkdir -p "$OUT/oracle"
  HERE=results/sudoku_levers
  for NAME in ft-mdm-steps12 ft-mdm-steps12-seed1 ft-mdm-steps5 ft-exact4-film-steps12-2k \
      ft-exact4-film-steps12-2k-seed1 ft-exact8-film-steps12-2k ft-exact4-film-steps5; do
    STRATEGIES=(fixed)
    [[ $NAME == ft-exact* ]] && STRATEGIES+=(oracle)
    for STRATEGY in "${STRATEGIES[@]}"; do
      python experiments/sudoku.py solve --checkpoint "$HERE/$NAME.pt" --fill argmax --threads 1 \
        --z-strategy "$STRATEGY" --puzzles results/sudoku/latent_puzzles.txt --nfe 5 10 \
        --failures --json "$OUT/oracle/${STRATEGY}_${NAME}_nfe{nfe}.json"
    done
  done
fi
