#!/usr/bin/env bash
# Published-scale Sudoku (issue 12): the CPU models' best recipe at the `full` config, for a GPU.
# Run from the repository root:
#
#   DEVICE=cpu SCALE=smoke RUN_DIR=/tmp/s bash experiments/sudoku_published_scale.sh  # CPU check
#   bash experiments/sudoku_published_scale.sh                    # on a GPU, about 85 minutes
#
# Session 26 ran it on an H200 with a 15-minute lease and measured what the stages cost there
# (results/sudoku_published_scale): in fp32 the MDM solves nothing after 150 s and 80% of the test
# puzzles at NFE 5 after 424 s; a VMD update costs 0.68 s (`steps`, batch 256) or 0.77 s (`paths`,
# batch 64). The default budgets follow from that: TIME_MDM=600 s for the MDM, then about 2,000
# `steps` and 900 `paths` updates for the VMD (TIME_VMD=1400, TIME_PATHS=700), and the MDM control
# as long again. Every training run stops at its wall-clock budget.
#
# On a device machine lent through this workplace's tool (python3 there has torch, not Pyro; Pyro
# and pyroapi are pure Python, so the virtualenv's copies travel): here, once,
#   echo /.gpu_site/ >> .git/info/exclude; mkdir -p .gpu_site
#   cp -r .venv/lib/python3.11/site-packages/{pyro,pyroapi} .gpu_site/
# and build the splits' data cache once (data_cache/, 1.6 MB, a few minutes):
#   python -c "from vmd_pyro.datasets.sudoku.task import SudokuConfig as C, SudokuTask as T;
#              T(C(clue_min=30, clue_max=40, num_test=1000, num_val=200))"
# The committed .pt files (150 MB) exceed the 64 MiB that may travel: before the runs, here,
#   git ls-files '*.pt' > /tmp/pt.txt && tar cf /tmp/pt.tar -T /tmp/pt.txt &&
#   git rm -q --cached --pathspec-from-file=/tmp/pt.txt && xargs rm < /tmp/pt.txt
# and after them: tar xf /tmp/pt.tar && git reset -q
# Then, with carry [".gpu_site", "data_cache"], STAGE=train and STAGE=decode (RUN_DIR stays on the
# machine while it is warm) with PYTHONPATH=.gpu_site:. PYTHON=python3 VMD_PYRO_COMMIT=<commit>
# (the copy's .git there can be older than the tree sent). With $OUT set, the JSONs, tables and
# plots come back packed in $OUT/sudoku_published_scale_*.tgz, also when a step fails. Checkpoints
# of 6M parameters (72 MB with the optimiser state) are too large to come back; each comes back as
# a float16 copy that decodes but cannot resume ($OUT/NAME-fp16.pt, about 12 MB; session 27). A
# single command may run 10 minutes: lower the budgets to fit, as session 26's README shows.
#
# Training grids have 17-40 clues.
#   1. mdm        MDM from scratch on the continuous-time objective (TIME_MDM)
#   2. vmd        VMD warm-started from mdm's denoiser: a discrete z with 16 values in every layer
#                 (FiLM), summed out with its exact posterior (--guide exact), on B_5 in the
#                 Top-Prob-Margin order, z per step (--objective steps; TIME_VMD)
#   3. vmd-paths  vmd trained on as it is decoded: z held through each puzzle's whole path
#                 (--objective paths; TIME_PATHS)
#   4. mdm-ft     the MDM control: mdm trained on B_5 the same way for TIME_VMD + TIME_PATHS
#   5. decodes (sudoku.py solve, Top-Prob-Margin) of the committed 1,000-puzzle 30-40-clue test
#      split and 906-puzzle 17-29-clue split: the VMD once per value of z, each different grid
#      checked once by pseudo-likelihood, and once at its prior's mode; MDM by argmax at NFE 5,
#      10, 20, 50 and with 16 and 25 sampled grids checked the same way; `sudoku.py latent` of
#      the VMD (first 200 test puzzles); `sudoku.py compare` of the VMD against each MDM decode;
#      solve rate against passes
set -euo pipefail
RUN_DIR=${RUN_DIR:-runs/sudoku_published_scale}
PYTHON=${PYTHON:-python}
DEVICE=${DEVICE:-cuda}
SCALE=${SCALE:-full}             # smoke: the cpu config, a few steps and puzzles, to check the script
DATA_CACHE=${DATA_CACHE:-data_cache}  # where run.py keeps the generated splits
STAGE=${STAGE:-all}              # train (steps 1-4), decode (step 5, from RUN_DIR's checkpoints) or all
TIME_MDM=${TIME_MDM:-600}
TIME_VMD=${TIME_VMD:-1400}
TIME_PATHS=${TIME_PATHS:-700}
[[ $STAGE =~ ^(all|train|decode)$ ]] || { echo "STAGE must be all, train or decode" >&2; exit 2; }
TEST_FILE=results/sudoku_hard/select/test_data0.txt
FEW_FILE=results/sudoku_hard/warm/few_clues_data0.txt
mkdir -p "$RUN_DIR"
if [[ $SCALE == smoke ]]; then
  NET=(--sudoku-config cpu --batch-size 16 --steps 20 --eval-every 10)
  FT=(--steps 4 --eval-every 0)
  PATHS_BATCH=4
  TEST=(--test-puzzles 50 --val-puzzles 20)
  head -n 12 $TEST_FILE > "$RUN_DIR/test.txt"
  head -n 12 $FEW_FILE > "$RUN_DIR/few.txt"
  TEST_FILE=$RUN_DIR/test.txt FEW_FILE=$RUN_DIR/few.txt
else
  NET=(--sudoku-config full --batch-size 256 --lr 1e-3 --steps 100000 --eval-every 2000)
  FT=(--steps 100000 --lr 3e-4 --eval-every 0)
  PATHS_BATCH=64
  TEST=(--test-puzzles 1000 --val-puzzles 200)
fi
COMMON=(--task sudoku --clues 30 40 --train-clues 17 40 "${TEST[@]}" --seed 0 --device "$DEVICE"
        --data-cache "$DATA_CACHE"
        --quiet --order top-prob-margin --fill argmax --nfe 5 --bound-nfe 1 --bound-sequences 1)
B5=(--train-nfe 5 --train-order top-prob-margin --anneal-steps 0)
VMD=(--model vmd --prior discrete --guide exact --components 16 --latent-dim 16
     --z-conditioning film --z-init-std 0.05 --z-strategy fixed)
train() {  # name, then run.py options; its record in train_<name>.json
  local name=$1; shift
  $PYTHON experiments/run.py "${COMMON[@]}" "${NET[@]}" "$@" --save "$RUN_DIR/$name.pt" \
    --out "$RUN_DIR/train_$name.json"
}
pack() {  # what comes back from the device machine
  if [[ -n ${OUT:-} ]]; then
    tar czf "$OUT/sudoku_published_scale_$STAGE.tgz" -C "$RUN_DIR" \
      $(cd "$RUN_DIR" && ls *.json *.txt cost_*/* 2>/dev/null)
    for checkpoint in "$RUN_DIR"/*.pt; do  # float16, no optimiser state: 12 MB instead of 72
      [[ -e $checkpoint ]] || continue
      $PYTHON experiments/convert_checkpoint.py --weights-only "$checkpoint" \
        "$OUT/$(basename "$checkpoint" .pt)-fp16.pt" || true
    done
  fi
}
trap pack EXIT  # what is done comes back, also after a failed step
if [[ $STAGE != decode ]]; then
  # the warm starts keep the network (--init-denoiser refuses another): later options win
  train mdm --model mdm --time-budget "$TIME_MDM"
  train vmd "${FT[@]}" "${VMD[@]}" "${B5[@]}" --objective steps \
    --init-denoiser "$RUN_DIR/mdm.pt" --time-budget "$TIME_VMD"
  train vmd-paths "${FT[@]}" "${VMD[@]}" "${B5[@]}" --objective paths --batch-size $PATHS_BATCH \
    --init-denoiser "$RUN_DIR/vmd.pt" --time-budget "$TIME_PATHS"
  train mdm-ft "${FT[@]}" --model mdm "${B5[@]}" --objective steps \
    --init-denoiser "$RUN_DIR/mdm.pt" --time-budget $((TIME_VMD + TIME_PATHS))
fi
[[ $STAGE == train ]] && { echo "published-scale training done: $RUN_DIR"; exit 0; }

solve() {  # split, name, checkpoint, puzzle file, then sudoku.py solve options
  local split=$1 name=$2 checkpoint=$3 puzzles=$4; shift 4
  $PYTHON experiments/sudoku.py solve --checkpoint "$RUN_DIR/$checkpoint.pt" --puzzles "$puzzles" \
    --device "$DEVICE" --order top-prob-margin "$@" --json "$RUN_DIR/${split}_${name}_nfe{nfe}.json"
}
CHECK=(--select pseudo-likelihood --check-distinct)
for split in test few; do
  puzzles=$TEST_FILE
  [[ $split == few ]] && puzzles=$FEW_FILE
  solve $split enumerate vmd-paths "$puzzles" --nfe 5 10 --fill argmax --z-strategy enumerate "${CHECK[@]}"
  solve $split mode vmd-paths "$puzzles" --nfe 5 --fill argmax --z-strategy mode
  solve $split argmax mdm-ft "$puzzles" --nfe 5 10 20 50 --fill argmax
  for n in 16 25; do
    solve $split candidates$n mdm-ft "$puzzles" --nfe 5 --fill sample --candidates $n "${CHECK[@]}"
  done
done
head -n 200 "$TEST_FILE" > "$RUN_DIR/latent_puzzles.txt"  # latent runs on the CPU
$PYTHON experiments/sudoku.py latent --checkpoint "$RUN_DIR/vmd-paths.pt" \
  --puzzles "$RUN_DIR/latent_puzzles.txt" --json "$RUN_DIR/latent_vmd-paths.json"
for split in test few; do
  for mdm in argmax candidates16 candidates25; do
    $PYTHON experiments/sudoku.py compare "$RUN_DIR/${split}_enumerate_nfe5.json" \
      "$RUN_DIR/${split}_${mdm}_nfe5.json" > "$RUN_DIR/compare_${split}_$mdm.txt"
  done
  $PYTHON experiments/sudoku_cost_report.py --out-dir "$RUN_DIR/cost_$split" \
    --title "Published scale, $split split, NFE 5" \
    --series "VMD: prior's mode, then every z" "$RUN_DIR/${split}_mode_nfe5.json" \
      "$RUN_DIR/${split}_enumerate_nfe5.json" \
    --series "MDM: argmax, then N sampled grids" "$RUN_DIR/${split}_argmax_nfe5.json" \
      "$RUN_DIR/${split}_candidates16_nfe5.json" "$RUN_DIR/${split}_candidates25_nfe5.json"
done
echo "published-scale run done: $RUN_DIR"
