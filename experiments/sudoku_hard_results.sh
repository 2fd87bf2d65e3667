#!/usr/bin/env bash
# The few-clue Sudoku results of results/sudoku_hard/ (issue 12). Run from the repository root
# with the virtualenv active. Stages (pass one as $1, default all):
#   eval-committed  the committed 30-40-clue checkpoints of results/sudoku/ on the few-clue test
#                   split (17-29 clues wanted, 100 per clue count, searched once and cached in
#                   data_cache/), Top-Prob-Margin, NFE 5/10/20/50, by clue count
#   train           MDM and VMD (conditional prior p(z | xt), latent dimension 16, trained on the
#                   few-step bound B_5: --objective steps --train-nfe 5) on training grids with
#                   17-40 clues, the cpu config, the same steps and batch; each ends with the
#                   1,000-puzzle 30-40-clue test split (Top-Prob-Margin, NFE 5/10/20/50)
#                   (train mdm / train vmd to run one; STEPS=N to change the 4000 steps; the
#                   time budget of 70 min is a safety net for the shared machine)
#   eval-trained    the two new checkpoints on the few-clue split (VMD: z from p(z | x^(k)) every
#                   step, the generator B_T describes; then also z fixed, one draw per puzzle)
#   control         MDM trained on B_5 like the VMD (--objective steps --train-nfe 5), both
#                   splits; a 25-minute time budget (the session's), so it may stop before STEPS
#   latent          does the new VMD use its latent: KL(q || p), active units, I(z; x) on the 500
#                   puzzles of results/sudoku/latent_puzzles.txt
#   argmax          session 8: the three checkpoints trained here on the few-clue split with
#                   argmax instead of sampled tokens (the VMD with z from p(z | x^(k)) and with z
#                   fixed); OUT=/tmp/x to write these elsewhere (the checkpoints are read here)
#   report          table.md, solve_rate.png and solve_rate_by_clues.png
#   focus           session 10, not part of "all": a 19-20-clue split for data seeds 0 and 1,
#                   searched with --search-focus-moves 3000 (1,400 grids each, about 50 min of one
#                   core each, cached in data_cache/), the three checkpoints trained here on it with
#                   sampled and argmax tokens (the VMD with z from p(z | x^(k))), and focus_report/
#   low-search      session 11, not part of "all": 18-19-clue puzzles by the same focused search
#                   in chunks of 3,000 grids, `sudoku.py generate --seed` $SEEDS (default 2-11)
#                   on the integer stream that the task's splits share (--shared-seed-stream, as
#                   generate drew before it had its own: 4 and 7 walk the focus splits' grid
#                   streams at first, see the README), $JOBS at a time (default 2), one puzzle
#                   file and log per seed in $OUT/low_clues/ (written as each chunk ends, so a
#                   cut-off run keeps its finished chunks); 19-22 min each
#   low-eval        the three checkpoints trained here and results/sudoku_levers' latent-using VMD
#                   and its MDM control on every puzzle of those files (merged into
#                   low_clues/puzzles.txt), sampled and argmax tokens, NFE 5/10/20/50, and
#                   low_clues/report/ (experiments/sudoku_solve_report.py)
#   warm            session 12, not part of "all": results/sudoku_levers' recipe that made a latent
#                   informative on 30-40 clues (warm start, a 4-valued z in every layer, FiLM,
#                   summed out with its exact posterior) on 17-40 clues: from $HERE/mdm.pt, trained
#                   on B_5 side by side with its MDM control (same start, objective, steps, seed;
#                   WARM_STEPS, default 2000), both evaluated on both splits with argmax tokens
#                   (the VMD with z fixed); then the 17-29 split as a file (the search of
#                   data seed 0, stream 4), why each model fails there (--failures, argmax) and the
#                   VMD's latent usage there, and its solves with z cut off, resampled and at
#                   each call's joint mode (z-map_*, session 13); files in $OUT/warm/
#                   (WARM_SEED=1: another seed, files *-seed1, the split file reused;
#                   WARM_ORDER=top-prob-margin: B_5 trained along the denoiser's own decoding
#                   order, --train-order, session 13, files *-top-prob-margin; WARM_PRIOR=
#                   discrete-conditional: the VMD's prior p(z | xt), files warm-exact4cond-*,
#                   the MDM control trained again as without it; WARM_COMPONENTS=8: z with 8
#                   values, files warm-exact8-*, session 14; WARM_PRIOR=discrete-features: p(z | xt)
#                   from the denoiser's own features, trained with it, files warm-exact8feat-*,
#                   session 15; a checkpoint already in $OUT/warm is evaluated, not trained again)
#   oracle          session 14, not part of "all": how far a perfect prior could take each warm
#                   VMD: the 17-29 split with z redrawn before every call from its exact posterior
#                   given the solution (--z-strategy oracle, argmax, NFE 5/10/20/50 or $ORACLE_NFE,
#                   --failures), files $OUT/warm/z-oracle_*, for every checkpoint $HERE/warm/warm-exact*
#                   that has no committed NFE-5 oracle file there (session 16: those are read); then
#                   $OUT/oracle_report/ (experiments/sudoku_oracle_report.py, NFE 5) over these
#                   and the 30-40-clue ones of `sudoku_levers.sh oracle` (read from
#                   results/sudoku_levers/oracle/), and oracle_report/solve_rate/: one VMD decoded
#                   every way against NFE beside its MDM control
#   probe           session 15, not part of "all": how much of z the denoiser's own computation can
#                   predict. A warm VMD with a discrete prior ($PROBE_VMD, default the 8-valued
#                   decoding-order one, read from $HERE/warm) is given the prior discrete-features,
#                   p(z | xt) from its denoiser's z-free features, and only that prior's head is
#                   trained (--train-only prior.head, PROBE_STEPS, default 1500; denoiser, z and
#                   guide unchanged) on the VMD's own batches; then on the 17-29 split: z redrawn
#                   from the new p(z | x^(k)) every call, drawn once, at each call's joint mode
#                   (NFE 5/10) and from the oracle (NFE 5), the latent's usage, and
#                   $OUT/probe_report/<VMD>/ beside the VMD's own rows and its MDM control; files
#                   $OUT/warm/*probe-* (a trained probe there is reused)
#   select          session 17, not part of "all": several decodes per puzzle, one kept by the
#                   model alone. Each 8-valued decoding-order VMD of $HERE/warm decodes the 17-29
#                   split once per value of z, held fixed (--z-strategy enumerate, argmax), and its
#                   MDM control decodes it 8 times with sampled tokens (--candidates 8, the same
#                   network passes); each keeps one grid by --select pseudo-likelihood (5 groups;
#                   NFE $SELECT_NFE, default 5 10 20 50) and by path (NFE $PATH_NFE, default
#                   5 10), --failures; files
#                   $OUT/select/, two seeds side by side, then $OUT/select/report/ beside the
#                   committed single decodes (z fixed, argmax) and oracles
#   select-test     session 17, not part of "all": the same on the 1,000-puzzle 30-40-clue test
#                   split of run.py --task sudoku (data seed 0), written as a file by
#                   `sudoku.py generate --seed 1 --shared-seed-stream` (the split's own stream) and
#                   checked against the cached split; NFE 5, 10, 20 and 50 with pseudo-likelihood,
#                   beside single decodes (VMD z fixed at NFE 5, MDM argmax at NFE 5, 6, 10, 20
#                   and 50) and MDM's 8 sampled decodes at NFE 5; files $OUT/select/test_*,
#                   then $OUT/select/report_test_seed0/ and report_test-seed1/
#   select-temperature  session 18, not part of "all": a stronger control of equal passes on the
#                   test split of select-test: each MDM control (seeds 0-3) decodes 8 grids with
#                   tokens sampled at temperature $TEMPS (default 0.25 0.5 0.75), kept by
#                   pseudo-likelihood, NFE 5; files $OUT/select/test_candidates8-t<T>-*; the
#                   temperature is chosen on the test split itself, which favours the control
#   select-wide     session 18, not part of "all": the same check with 16 guesses. The 16-valued
#                   VMD $HERE/warm/warm-exact16-film-steps5-top-prob-margin.pt (the warm stage's
#                   recipe with WARM_COMPONENTS=16, WARM_ORDER=top-prob-margin; trained by hand)
#                   on the test split: one z fixed (NFE 5), every z checked (NFE $WIDE_NFE,
#                   default 5 10), I(z; x); each MDM control (seeds 0-3) decodes 16 sampled grids at
#                   temperature $WIDE_TEMPS (default 1), kept by the same check, NFE 5 (the same
#                   passes); files $OUT/select/test_*16*; `select-wide vmd` or `select-wide mdm`
#                   runs one half
#   select-width    session 18, not part of "all": more widths for the same comparison on the test
#                   split, NFE 5: the 4-valued VMDs of session 13 (`discrete`, `discrete-conditional`,
#                   seeds 0 and 1) with every z checked, and each MDM control of $WIDTH_SEEDS
#                   (default 0 1) with $WIDTHS (default 4 32) sampled grids, checked
set -euo pipefail
HERE=results/sudoku_hard
OUT=${OUT:-$HERE}
STAGE=${1:-all}
ONLY=${2:-}
STEPS=${STEPS:-4000}
COMMON=(--task sudoku --clues 30 40 --test-puzzles 1000 --val-puzzles 200 --seed 0 --threads 1
        --order top-prob-margin --nfe 5 10 20 50)
FEW=(--test-clues 17 29 --per-clue-count 100 --search-grids 1000 --search-moves 200)
# session 18's MDM controls: the control of seed suffix $1 ("" or -seed<N>) decodes the test split
# of select-test as $2 sampled grids at temperature $3, one kept by pseudo-likelihood, NFE 5
mdm_checked_grids() {
  python experiments/sudoku.py solve --checkpoint "$HERE/warm/warm-mdm-steps5$1-top-prob-margin.pt" \
    --fill sample --temperature "$3" --candidates "$2" --select pseudo-likelihood --threads 1 \
    --puzzles "$HERE/select/test_data0.txt" --nfe 5 \
    --json "$OUT/select/test_candidates$2-t$3-pseudo-likelihood_warm-mdm$1_nfe{nfe}.json"
}
declare -A COMMITTED=([mdm]="--model mdm" [gaussian]="--model vmd --prior gaussian"
                      [conditional]="--model vmd --prior conditional"
                      [gaussian-free]="--model vmd --prior gaussian --free-nats 2")
declare -A TRAINED=([mdm]="--model mdm"
                    [vmd-conditional-steps5-z16]="--model vmd --prior conditional --latent-dim 16
                      --objective steps --train-nfe 5 --z-strategy prior")

if [[ $STAGE == eval-committed || $STAGE == all ]]; then
  for NAME in mdm gaussian conditional gaussian-free; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" "${FEW[@]}" --only-test-clues ${COMMITTED[$NAME]} \
      --quiet --checkpoint results/sudoku/cpu-$NAME.pt --out $OUT/eval_committed_$NAME.json
  done
fi
if [[ $STAGE == train || $STAGE == all ]]; then
  for NAME in mdm vmd-conditional-steps5-z16; do
    [[ -n $ONLY && ${NAME%%-*} != "$ONLY" ]] && continue
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" ${TRAINED[$NAME]} --train-clues 17 40 \
      --sudoku-config cpu --steps "$STEPS" --batch-size 64 --lr 3e-3 --eval-every 500 \
      --save-every 500 --time-budget 4200 --bound-nfe 5 10 --bound-sequences 100 \
      --save $OUT/$NAME.pt --out $OUT/train_$NAME.json
  done
fi
if [[ $STAGE == eval-trained || $STAGE == all ]]; then
  for NAME in mdm vmd-conditional-steps5-z16; do
    [[ -n $ONLY && ${NAME%%-*} != "$ONLY" ]] && continue
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" "${FEW[@]}" --only-test-clues ${TRAINED[$NAME]} \
      --quiet --checkpoint $OUT/$NAME.pt --out $OUT/eval_$NAME.json
  done
  # the VMD with one z per puzzle (fixed, the original method's decoding) as well
  if [[ -z $ONLY || $ONLY == vmd ]]; then
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" "${FEW[@]}" --only-test-clues \
      ${TRAINED[vmd-conditional-steps5-z16]} --z-strategy fixed --quiet \
      --checkpoint $OUT/vmd-conditional-steps5-z16.pt \
      --out $OUT/eval_vmd-conditional-steps5-z16_z-fixed.json
  fi
fi
if [[ $STAGE == control || $STAGE == all ]]; then
  # MDM trained on the same few-step bound B_5 as the VMD: is the objective, not the latent, what
  # separates the two? Evaluated on both splits in the same run (time budget: the session's)
  python experiments/run.py "${COMMON[@]}" "${FEW[@]}" --model mdm --objective steps \
    --train-nfe 5 --train-clues 17 40 --sudoku-config cpu --steps "$STEPS" --batch-size 64 \
    --lr 3e-3 --eval-every 500 --save-every 500 --time-budget 1500 --bound-nfe 5 10 \
    --bound-sequences 100 --quiet --save $OUT/mdm-steps5.pt --out $OUT/train_mdm-steps5.json
fi
if [[ $STAGE == argmax || $STAGE == all ]]; then
  TRAINED[mdm-steps5]="--model mdm"
  for NAME in mdm mdm-steps5 vmd-conditional-steps5-z16 vmd-conditional-steps5-z16_z-fixed; do
    [[ -n $ONLY && $ONLY != "$NAME" ]] && continue
    Z=()
    [[ $NAME == *_z-fixed ]] && Z=(--z-strategy fixed)  # after the trained options: it wins
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" "${FEW[@]}" --only-test-clues \
      ${TRAINED[${NAME%_z-fixed}]} "${Z[@]}" --fill argmax --quiet \
      --checkpoint $HERE/${NAME%_z-fixed}.pt --out $OUT/argmax_$NAME.json
  done
fi
if [[ $STAGE == latent || $STAGE == all ]]; then
  python experiments/sudoku.py latent --checkpoint $OUT/vmd-conditional-steps5-z16.pt \
    --puzzles results/sudoku/latent_puzzles.txt --json $OUT/latent_vmd-conditional-steps5-z16.json
fi
if [[ $STAGE == report || $STAGE == all ]]; then
  # the 30-40 split: the committed MDM's evaluation (results/sudoku) beside the two new models;
  # the few-clue split: every checkpoint
  python experiments/sudoku_report.py --out-dir $OUT \
    results/sudoku/eval_cpu_mdm.json $OUT/train_mdm.json $OUT/train_vmd-conditional-steps5-z16.json \
    $OUT/eval_committed_{mdm,gaussian,conditional,gaussian-free}.json \
    $OUT/eval_mdm.json $OUT/eval_vmd-conditional-steps5-z16.json \
    $OUT/eval_vmd-conditional-steps5-z16_z-fixed.json $OUT/train_mdm-steps5.json \
    --names "MDM (30-40)" "MDM (17-40)" "VMD (cond., B_5, z16, 17-40)" \
      "MDM (30-40)" "VMD (gaussian, 30-40)" "VMD (conditional, 30-40)" \
      "VMD (gaussian, 2 free nats, 30-40)" "MDM (17-40)" "VMD (cond., B_5, z16, 17-40)" \
      "VMD (cond., B_5, z16, 17-40)" "MDM (B_5, 17-40)"
fi
if [[ $STAGE == focus ]]; then
  FOCUS=(--test-clues 19 20 --per-clue-count 100 --search-grids 1400 --search-moves 200
         --search-focus-moves 3000 --only-test-clues)
  TRAINED[mdm-steps5]="--model mdm"
  declare -A LABEL=([mdm]="MDM (17-40)" [mdm-steps5]="MDM (B_5, 17-40)"
                    [vmd-conditional-steps5-z16]="VMD (cond., B_5, z16, 17-40)")
  FILES=()
  NAMES=()
  for DATA in 0 1; do
    for NAME in mdm mdm-steps5 vmd-conditional-steps5-z16; do
      for FILL in sample argmax; do
        # shellcheck disable=SC2086
        python experiments/run.py "${COMMON[@]}" "${FOCUS[@]}" --data-seed $DATA ${TRAINED[$NAME]} \
          --fill $FILL --quiet --checkpoint $HERE/$NAME.pt --out $OUT/focus_${NAME}_${FILL}_data$DATA.json
        FILES+=("$OUT/focus_${NAME}_${FILL}_data$DATA.json")
        NAMES+=("${LABEL[$NAME]}, $FILL, data $DATA")
      done
    done
  done
  python experiments/sudoku_report.py --out-dir $OUT/focus_report "${FILES[@]}" --names "${NAMES[@]}"
fi
if [[ $STAGE == low-search ]]; then
  mkdir -p "$OUT/low_clues"
  COMMIT=$(git rev-parse --short HEAD)  # at the start: later commits do not change these runs
  # shellcheck disable=SC2016
  printf '%s\n' ${SEEDS:-2 3 4 5 6 7 8 9 10 11} | xargs -P "${JOBS:-2}" -I{} bash -c '
    start=$(date +%s)
    python experiments/sudoku.py generate --per-clue-count 100 --clues 18 19 --search-grids 3000 \
      --search-moves 200 --search-focus-moves 3000 --seed {} --shared-seed-stream \
      --out "$0/low_clues/seed{}.txt" > "$0/low_clues/seed{}.log" 2>/dev/null
    echo "seed {}: $(( $(date +%s) - start )) s, started at commit $1" >> "$0/low_clues/seed{}.log"
  ' "$OUT" "$COMMIT"
fi
if [[ $STAGE == low-eval ]]; then
  cat "$OUT"/low_clues/seed*.txt > "$OUT/low_clues/puzzles.txt"
  # checkpoint:z strategy; the last two are results/sudoku_levers' latent-using VMD (a 4-valued z
  # in every layer, exact posterior, trained on 30-40 clues) and its MDM control
  for SPEC in $HERE/mdm.pt:fixed $HERE/mdm-steps5.pt:fixed $HERE/vmd-conditional-steps5-z16.pt:prior \
              results/sudoku_levers/ft-mdm-steps12.pt:fixed \
              results/sudoku_levers/ft-exact4-film-steps12-2k.pt:fixed; do
    CKPT=${SPEC%:*}
    NAME=$(basename "$CKPT" .pt)
    for FILL in sample argmax; do
      python experiments/sudoku.py solve --checkpoint "$CKPT" --puzzles "$OUT/low_clues/puzzles.txt" \
        --nfe 5 10 20 50 --fill $FILL --z-strategy "${SPEC##*:}" --threads 1 \
        --json "$OUT/low_clues/${NAME}_${FILL}_nfe{nfe}.json"
    done
  done
  python experiments/sudoku_solve_report.py "$OUT"/low_clues/*_nfe*.json --out-dir "$OUT/low_clues/report"
fi
if [[ $STAGE == warm ]]; then
  mkdir -p "$OUT/warm"
  SEED=${WARM_SEED:-0}  # another seed: WARM_SEED=1, files named *-seed1
  ORDER=${WARM_ORDER:-random}  # the order B_5 is trained in: WARM_ORDER=top-prob-margin, *-top-prob-margin
  SUFFIX=""
  [[ $SEED != 0 ]] && SUFFIX=-seed$SEED
  [[ $ORDER != random ]] && SUFFIX=$SUFFIX-$ORDER
  PRIOR=${WARM_PRIOR:-discrete}  # the VMD's prior: WARM_PRIOR=discrete-conditional, warm-exact4cond-*
  K=${WARM_COMPONENTS:-4}  # values of z: WARM_COMPONENTS=8, files warm-exact8-*
  VMD_NAME=warm-exact$K-film-steps5 REDRAW=resample
  if [[ $PRIOR == discrete-conditional ]]; then VMD_NAME=warm-exact${K}cond-film-steps5 REDRAW=prior; fi
  if [[ $PRIOR == discrete-features ]]; then VMD_NAME=warm-exact${K}feat-film-steps5 REDRAW=prior; fi
  WARM=(--init-denoiser $HERE/mdm.pt --train-clues 17 40 --sudoku-config cpu
        --steps "${WARM_STEPS:-2000}" --batch-size 64 --lr 1e-3 --eval-every 500 --objective steps
        --train-nfe 5 --train-order "$ORDER" --fill argmax --bound-nfe 5 --bound-sequences 100
        --seed "$SEED" --quiet)
  declare -A WARM_MODELS=([warm-mdm-steps5]="--model mdm"
    [$VMD_NAME]="--model vmd --prior $PRIOR --guide exact --components $K
      --latent-dim 16 --z-conditioning film --z-init-std 0.05 --z-strategy fixed")
  PIDS=()
  for NAME in warm-mdm-steps5 "$VMD_NAME"; do
    [[ -f $OUT/warm/$NAME$SUFFIX.pt ]] && continue  # trained already (e.g. the control of a new VMD)
    # shellcheck disable=SC2086
    python experiments/run.py "${COMMON[@]}" "${FEW[@]}" ${WARM_MODELS[$NAME]} "${WARM[@]}" \
      --save "$OUT/warm/$NAME$SUFFIX.pt" --out "$OUT/warm/train_$NAME$SUFFIX.json" &
    PIDS+=($!)
  done
  for PID in "${PIDS[@]}"; do wait "$PID"; done  # a failed run stops the stage
  # the few-clue split as a file: run.py searched it with 3 x data seed + 4 = 4
  [[ -f $OUT/warm/few_clues_data0.txt ]] ||
    python experiments/sudoku.py generate --per-clue-count 100 --clues 17 29 --search-grids 1000 \
      --search-moves 200 --seed 4 --shared-seed-stream --out "$OUT/warm/few_clues_data0.txt"
  VMD=$OUT/warm/$VMD_NAME$SUFFIX.pt
  CKPTS=("$OUT/warm/warm-mdm-steps5$SUFFIX.pt" "$VMD")
  [[ $SEED == 0 && $ORDER == random ]] && CKPTS+=("$HERE/mdm.pt")  # and their start (17-40 clues, J)
  for CKPT in "${CKPTS[@]}"; do
    python experiments/sudoku.py solve --checkpoint "$CKPT" --fill argmax \
      --puzzles "$OUT/warm/few_clues_data0.txt" --nfe 5 10 20 50 --failures --threads 1 \
      --json "$OUT/warm/failures_$(basename "$CKPT" .pt)_nfe{nfe}.json"
  done
  python experiments/sudoku.py latent --checkpoint "$VMD" --puzzles "$OUT/warm/few_clues_data0.txt" \
    --json "$OUT/warm/latent_$(basename "$VMD" .pt).json"
  python experiments/sudoku_failures_report.py "$OUT"/warm/failures_*.json --out-dir "$OUT/warm/report"
  # does the VMD's decoding use z (the denoiser fed z = 0), and with z drawn afresh every call
  # (from p(z | x^(k)) for a conditional prior)?
  for EXTRA in --without-latent "--z-strategy $REDRAW"; do
    TAG=${EXTRA#--}; TAG=${TAG// /-}
    # shellcheck disable=SC2086
    python experiments/sudoku.py solve --checkpoint "$VMD" --fill argmax --threads 1 $EXTRA \
      --puzzles "$OUT/warm/few_clues_data0.txt" --nfe 5 10 20 50 \
      --json "$OUT/warm/${TAG}_$(basename "$VMD" .pt)_nfe{nfe}.json"
  done
  # session 13: each call at its joint mode over z (4 network runs per call), with the failures
  # (MAP_NFE="5 10" for a K = 8 z: the joint mode costs K passes per call)
  # shellcheck disable=SC2086
  python experiments/sudoku.py solve --checkpoint "$VMD" --fill argmax --threads 1 --z-strategy map \
    --puzzles "$OUT/warm/few_clues_data0.txt" --nfe ${MAP_NFE:-5 10 20 50} --failures \
    --json "$OUT/warm/z-map_$(basename "$VMD" .pt)_nfe{nfe}.json"
fi
if [[ $STAGE == oracle ]]; then
  mkdir -p "$OUT/warm"
  oracle_dir() {  # where the oracle files of VMD $1 are: committed ones are read, not redone
    if [[ -f $HERE/warm/z-oracle_$1_nfe5.json ]]; then echo "$HERE/warm"; else echo "$OUT/warm"; fi
  }
  ROWS=()
  for VMD in "$HERE"/warm/warm-exact*.pt; do
    NAME=$(basename "$VMD" .pt)
    ORACLE=$(oracle_dir "$NAME")/z-oracle_${NAME}_nfe5.json
    if [[ ! -f $ORACLE ]]; then
      # shellcheck disable=SC2086
      python experiments/sudoku.py solve --checkpoint "$VMD" --fill argmax --threads 1 \
        --z-strategy oracle --puzzles "$HERE/warm/few_clues_data0.txt" --nfe ${ORACLE_NFE:-5 10 20 50} \
        --failures --json "$OUT/warm/z-oracle_${NAME}_nfe{nfe}.json"
    fi
    ROWS+=(--row "$NAME" "$HERE/warm/failures_${NAME}_nfe5.json" "$ORACLE"
           "$HERE/warm/failures_${NAME/exact*-film/mdm}_nfe5.json" "$HERE/warm/latent_$NAME.json")
  done
  LEVERS=results/sudoku_levers
  for NAME in ft-exact4-film-steps12-2k ft-exact4-film-steps12-2k-seed1 ft-exact8-film-steps12-2k \
      ft-exact4-film-steps5; do
    CONTROL=ft-mdm-steps12${NAME#ft-exact?-film-steps12-2k}
    [[ $NAME == *steps5 ]] && CONTROL=ft-mdm-steps5
    ROWS+=(--row "$NAME" "$LEVERS/oracle/fixed_${NAME}_nfe5.json"
           "$LEVERS/oracle/oracle_${NAME}_nfe5.json" "$LEVERS/oracle/fixed_${CONTROL}_nfe5.json"
           "$LEVERS/latent_$NAME.json")
  done
  python experiments/sudoku_oracle_report.py --out-dir "$OUT/oracle_report" "${ROWS[@]}"
  # solve rate against NFE: seed 0's decoding-order VMD decoded every way, its MDM control and the
  # random-order MDM
  V=warm-exact4-film-steps5-top-prob-margin
  python experiments/sudoku_solve_report.py "$HERE"/warm/{failures,without-latent,z-strategy-resample,z-map}_${V}_nfe*.json \
    "$(oracle_dir $V)"/z-oracle_${V}_nfe*.json "$HERE"/warm/failures_warm-mdm-steps5{,-top-prob-margin}_nfe*.json \
    --out-dir "$OUT/oracle_report/solve_rate"
fi
if [[ $STAGE == probe ]]; then
  mkdir -p "$OUT/warm"
  V=${PROBE_VMD:-warm-exact8-film-steps5-top-prob-margin}
  K=${V#warm-exact}; K=${K%%-*}  # the values of z, from the name (discrete priors only)
  ORDER=random
  [[ $V == *-top-prob-margin ]] && ORDER=top-prob-margin
  P=probe-$V SPLIT=$HERE/warm/few_clues_data0.txt
  # the VMD's own training batches (17-40 clues, B_5 in its order), its network and z; anneal off:
  # the KL is all the head learns from. A probe already in $OUT/warm is kept.
  [[ -f $OUT/warm/$P.pt ]] || python experiments/run.py "${COMMON[@]}" --threads 2 --nfe 5 10 --model vmd \
    --prior discrete-features --guide exact --components "$K" --latent-dim 16 --z-conditioning film \
    --z-strategy prior --init-denoiser "$HERE/warm/$V.pt" --train-clues 17 40 --sudoku-config cpu \
    --steps "${PROBE_STEPS:-1500}" --batch-size 64 --lr 1e-3 --eval-every 500 --objective steps \
    --train-nfe 5 --train-order "$ORDER" --fill argmax --bound-nfe 5 --bound-sequences 100 \
    --anneal-steps 0 --train-only prior.head --quiet \
    --save "$OUT/warm/$P.pt" --out "$OUT/warm/train_$P.json"
  for Z in prior fixed; do
    python experiments/sudoku.py solve --checkpoint "$OUT/warm/$P.pt" --fill argmax --threads 2 \
      --z-strategy $Z --puzzles "$SPLIT" --nfe 5 10 20 50 --failures \
      --json "$OUT/warm/z-strategy-${Z}_${P}_nfe{nfe}.json"
  done
  python experiments/sudoku.py solve --checkpoint "$OUT/warm/$P.pt" --fill argmax --threads 2 \
    --z-strategy map --puzzles "$SPLIT" --nfe 5 10 --failures --json "$OUT/warm/z-map_${P}_nfe{nfe}.json"
  python experiments/sudoku.py solve --checkpoint "$OUT/warm/$P.pt" --fill argmax --threads 2 \
    --z-strategy oracle --puzzles "$SPLIT" --nfe 5 --failures --json "$OUT/warm/z-oracle_${P}_nfe{nfe}.json"
  python experiments/sudoku.py latent --checkpoint "$OUT/warm/$P.pt" --puzzles "$SPLIT" \
    --json "$OUT/warm/latent_$P.json"
  CONTROL=warm-mdm-steps5${V#warm-exact*-film-steps5}
  python experiments/sudoku_solve_report.py "$OUT"/warm/z-{strategy-prior,strategy-fixed,map,oracle}_${P}_nfe*.json \
    "$HERE"/warm/{failures,z-oracle}_${V}_nfe*.json "$HERE/warm/failures_${CONTROL}"_nfe*.json \
    --out-dir "$OUT/probe_report/$V"
fi
if [[ $STAGE == select ]]; then
  mkdir -p "$OUT/select"
  select_seed() {  # $1: "" (seed 0) or -seed1
    for SEL in pseudo-likelihood path; do
      NFE=${SELECT_NFE:-5 10 20 50}
      [[ $SEL == path ]] && NFE=${PATH_NFE:-5 10}
      for V in warm-exact8 warm-exact8feat; do
        # shellcheck disable=SC2086
        python experiments/sudoku.py solve --checkpoint "$HERE/warm/$V-film-steps5$1-top-prob-margin.pt" \
          --fill argmax --z-strategy enumerate --select $SEL --threads 1 --failures \
          --puzzles "$HERE/warm/few_clues_data0.txt" --nfe $NFE \
          --json "$OUT/select/enumerate-${SEL}_$V$1_nfe{nfe}.json"
      done
      # shellcheck disable=SC2086
      python experiments/sudoku.py solve --checkpoint "$HERE/warm/warm-mdm-steps5$1-top-prob-margin.pt" \
        --fill sample --candidates 8 --select $SEL --threads 1 --failures \
        --puzzles "$HERE/warm/few_clues_data0.txt" --nfe $NFE \
        --json "$OUT/select/candidates8-${SEL}_warm-mdm$1_nfe{nfe}.json"
    done
  }
  select_seed "" > "$OUT/select/stage_seed0.log" 2>&1 &
  FIRST=$!
  select_seed -seed1 > "$OUT/select/stage_seed1.log" 2>&1
  wait "$FIRST"
  for S in "" -seed1; do
    python experiments/sudoku_solve_report.py \
      "$OUT"/select/{enumerate-{path,pseudo-likelihood}_warm-exact8{,feat},candidates8-{path,pseudo-likelihood}_warm-mdm}${S}_nfe*.json \
      "$HERE"/warm/{failures,z-oracle}_warm-exact8{,feat}-film-steps5$S-top-prob-margin_nfe*.json \
      "$HERE/warm/failures_warm-mdm-steps5$S-top-prob-margin"_nfe*.json \
      --out-dir "$OUT/select/report${S:-_seed0}"
  done
fi
if [[ $STAGE == select-test ]]; then
  mkdir -p "$OUT/select"
  SPLIT=$OUT/select/test_data0.txt
  [[ -f $SPLIT ]] || python experiments/sudoku.py generate --count 1000 --clues 30 40 --seed 1 \
    --shared-seed-stream --out "$SPLIT"
  python experiments/sudoku.py check --puzzles "$SPLIT" --data-seeds 0 --data-cache "${DATA_CACHE:-data_cache}" \
    --json "$OUT/select/test_check.json"
  for S in "" -seed1; do
    for V in warm-exact8 warm-exact8feat; do
      CKPT=$HERE/warm/$V-film-steps5$S-top-prob-margin.pt
      python experiments/sudoku.py solve --checkpoint "$CKPT" --fill argmax --threads 1 \
        --puzzles "$SPLIT" --nfe 5 --json "$OUT/select/test_single_$V${S}_nfe{nfe}.json"
      python experiments/sudoku.py solve --checkpoint "$CKPT" --fill argmax --threads 1 \
        --z-strategy enumerate --select pseudo-likelihood --puzzles "$SPLIT" --nfe 5 10 20 50 \
        --json "$OUT/select/test_enumerate-pseudo-likelihood_$V${S}_nfe{nfe}.json"
    done
    CKPT=$HERE/warm/warm-mdm-steps5$S-top-prob-margin.pt
    python experiments/sudoku.py solve --checkpoint "$CKPT" --fill argmax --threads 1 \
      --puzzles "$SPLIT" --nfe 5 6 10 20 50 --json "$OUT/select/test_single_warm-mdm${S}_nfe{nfe}.json"
    python experiments/sudoku.py solve --checkpoint "$CKPT" --fill sample --candidates 8 \
      --select pseudo-likelihood --threads 1 --puzzles "$SPLIT" --nfe 5 \
      --json "$OUT/select/test_candidates8-pseudo-likelihood_warm-mdm${S}_nfe{nfe}.json"
  done
  shopt -s nullglob  # not every decoder has files under every name of the pattern
  for S in "" -seed1; do
    python experiments/sudoku_solve_report.py "$OUT"/select/test_{single,enumerate,candidates}*_warm-{mdm,exact8,exact8feat}${S}_nfe*.json \
      --out-dir "$OUT/select/report_test${S:-_seed0}"
  done
  shopt -u nullglob
fi
if [[ $STAGE == select-temperature ]]; then
  mkdir -p "$OUT/select"
  for T in ${TEMPS:-0.25 0.5 0.75}; do
    for S in "" -seed1 -seed2 -seed3; do mdm_checked_grids "$S" 8 "$T"; done
  done
fi
if [[ $STAGE == select-wide ]]; then
  mkdir -p "$OUT/select"
  SPLIT=$HERE/select/test_data0.txt
  V=warm-exact16-film-steps5-top-prob-margin
  if [[ -z $ONLY || $ONLY == vmd ]]; then
    python experiments/sudoku.py solve --checkpoint "$HERE/warm/$V.pt" --fill argmax --threads 1 \
      --puzzles "$SPLIT" --nfe 5 --json "$OUT/select/test_single_warm-exact16_nfe{nfe}.json"
    python experiments/sudoku.py solve --checkpoint "$HERE/warm/$V.pt" --fill argmax --threads 1 \
      --z-strategy enumerate --select pseudo-likelihood --puzzles "$SPLIT" --nfe ${WIDE_NFE:-5 10} \
      --json "$OUT/select/test_enumerate-pseudo-likelihood_warm-exact16_nfe{nfe}.json"
    python experiments/sudoku.py latent --checkpoint "$HERE/warm/$V.pt" --puzzles "$SPLIT" \
      --json "$OUT/select/test_latent_$V.json"
  fi
  [[ -n $ONLY && $ONLY != mdm ]] && exit 0
  for T in ${WIDE_TEMPS:-1}; do
    for S in "" -seed1 -seed2 -seed3; do mdm_checked_grids "$S" 16 "$T"; done
  done
fi
if [[ $STAGE == select-width ]]; then
  mkdir -p "$OUT/select"
  SPLIT=$HERE/select/test_data0.txt
  for S in "" -seed1; do
    for V in warm-exact4 warm-exact4cond; do
      python experiments/sudoku.py solve --checkpoint "$HERE/warm/$V-film-steps5$S-top-prob-margin.pt" \
        --fill argmax --threads 1 --z-strategy enumerate --select pseudo-likelihood \
        --puzzles "$SPLIT" --nfe 5 --json "$OUT/select/test_enumerate-pseudo-likelihood_$V${S}_nfe{nfe}.json"
    done
  done
  for N in ${WIDTHS:-4 32}; do
    for SEED in ${WIDTH_SEEDS:-0 1}; do
      S=-seed$SEED
      [[ $SEED == 0 ]] && S=""
      mdm_checked_grids "$S" "$N" 1
    done
  done
fi
