#!/usr/bin/env bash
# Reproduce the real-data results table (issue 7): audit, train, QAT, convert to every target, bench
# on a held-out, duplicate-free test split, then publish the run under benchmarks/results/models/.
# Long (about 30-45 min per brain MRI job on a 2-core CPU; minutes on a GPU with KERAS_BACKEND=jax).
# Not part of CI.
#   usage: benchmarks/results/reproduce.sh [JOB|DATASET|all ...]
#   jobs:  every edgemri recipe in train/recipes/ that names a dataset job (trained with --recipe:
#          brain4-convmixer-edge brain4-mobilenetv2 brain2-convmixer-edge brain2-mobilenetv2
#          busi3-convmixer-edge busi3-mobilenetv2 busi3-mobilenetv2-brain4, which starts from the published
#          brain4-mobilenetv2: recipe.starts_from), then tune -> bench -> publish; and the first
#          generation's flag-defined jobs: brain4-simple-cnn brain4-mobilenetv2-a035 brain2-mobilenetv2-a035
#          busi3-simple-cnn busi3-mobilenetv2-a035, *-convmixer-edge-v1 (kernel 9, paper order)
#   datasets: brain4 brain2 busi3 (every job of that dataset); all (every job, default)
# Runs land in runs/results/<job>/ (EPOCHS=N overrides every job's epoch count); the summary table
# (`edgemri compare`) in benchmarks/results/SUMMARY.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
EDGEMRI=${EDGEMRI:-.venv/bin/edgemri}
DATA=${DATA:-../shared/datasets}
SIZE=${SIZE:-128}
OUT=${OUT:-runs/results}
PUBLISH=${PUBLISH:-benchmarks/results/models}
BRAIN="$DATA/brain-tumor-mri/train"
BUSI="$DATA/busi/train"
CONVMIXER_EDGE=(--arch convmixer-edge --arch-opt dim=128 --arch-opt depth=6 --arch-opt patch=8)
mkdir -p "$OUT" "$PUBLISH"

RECIPES=train/recipes
is_recipe_job() { [ -f "$RECIPES/$1.toml" ]; }   # jobs named after an edgemri recipe train with --recipe
final_fit_holdout() {  # a recipe's recipe.final_fit_holdout: its published model is a final fit (docs/train.md)
  "$(dirname "$EDGEMRI")/python" -c "from edgemri.train.recipes import load; print(load('$1').final_fit_holdout or '')"
}
starts_from() {  # a recipe's recipe.starts_from: the job whose published model it fine-tunes (--weights)
  "$(dirname "$EDGEMRI")/python" -c "from edgemri.train.recipes import load; print(load('$1').starts_from or '')"
}

recipe_root() {  # recipe job -> its dataset root (merged classes come from the recipe itself)
  case $1 in busi3-*) echo "$BUSI" ;; *) echo "$BRAIN" ;; esac
}

job_args() {  # job name -> "root epochs" then train args (one per line): the first-generation jobs
  case $1 in
    brain4-convmixer-edge-v1) echo "$BRAIN 10"; printf '%s\n' "${CONVMIXER_EDGE[@]}" --arch-opt kernel=9 --arch-opt order=paper ;;
    brain4-simple-cnn)       echo "$BRAIN 12"; printf '%s\n' --arch simple-cnn ;;
    brain4-mobilenetv2-a035) echo "$BRAIN 8";  printf '%s\n' --arch mobilenetv2 --arch-opt alpha=0.35 ;;
    brain4-mobilenetv2)      echo "$BRAIN 8";  printf '%s\n' --arch mobilenetv2 --arch-opt alpha=1.0 ;;
    brain2-convmixer-edge-v1) echo "$BRAIN 6";  printf '%s\n' "${CONVMIXER_EDGE[@]}" --arch-opt kernel=9 --arch-opt order=paper --merge tumor=glioma,meningioma,pituitary ;;
    brain2-mobilenetv2-a035) echo "$BRAIN 8";  printf '%s\n' --arch mobilenetv2 --arch-opt alpha=0.35 --merge tumor=glioma,meningioma,pituitary ;;
    busi3-simple-cnn)        echo "$BUSI 40";  printf '%s\n' --arch simple-cnn --augment ultrasound --patience 0 --monitor val_accuracy ;;
    busi3-convmixer-edge-v1) echo "$BUSI 40";  printf '%s\n' "${CONVMIXER_EDGE[@]}" --arch-opt kernel=9 --arch-opt order=paper --augment ultrasound --patience 0 --monitor val_accuracy ;;
    busi3-mobilenetv2-a035)  echo "$BUSI 40";  printf '%s\n' --arch mobilenetv2 --arch-opt alpha=0.35 --augment ultrasound --patience 0 --monitor val_accuracy ;;
    *) echo "unknown job $1" >&2; exit 2 ;;
  esac
}

publish() {  # what the README table describes: the FP32 Keras model, both int8 TFLite models, manifests, reports.
  # tflite-fp32 and the other targets are not kept (size): `edgemri convert DIR --target tflite-fp32` remakes them.
  local run=$1 dest="$PUBLISH/$2"
  rm -rf "$dest.tmp" && mkdir -p "$dest.tmp/export" "$dest.tmp/qat"
  cp "$run"/{model.keras,manifest.json,split.json,config.json,metrics.json,history.csv} "$dest.tmp/"
  cp "$run"/*.png "$dest.tmp/" 2>/dev/null || true
  cp "$run/qat/metrics.json" "$dest.tmp/qat/" 2>/dev/null || true
  cp "$run/calibration.json" "$dest.tmp/" 2>/dev/null || true   # the OOD reference: a later convert reuses it
  [ -d "$run/evaluate/test" ] && cp -r "$run/evaluate" "$dest.tmp/"
  for t in tflite-int8 tflite-int8-ptq; do [ -d "$run/export/$t" ] && cp -r "$run/export/$t" "$dest.tmp/export/"; done
  cp -r "$run/bench" "$dest.tmp/"
  rm -rf "$dest" && mv "$dest.tmp" "$dest"
}

run_job() {
  local job=$1 run="$OUT/$1" root="" epochs=""
  local -a args=()
  is_recipe_job "$job" || { read -r root epochs; mapfile -t args; } < <(job_args "$job")
  epochs=${EPOCHS:-$epochs}
  echo "== $job: train ($(date -u +%H:%M:%S))"
  local from=""
  is_recipe_job "$job" && from=$(starts_from "$job")
  if [ -n "$from" ] && [ ! -f "$PUBLISH/$from/model.keras" ]; then run_job "$from"; fi   # its starting model first
  if [ ! -f "$run/model.keras" ] && is_recipe_job "$job"; then   # everything else comes from the recipe
    "$EDGEMRI" train --recipe "$job" --data "$(recipe_root "$job")" --out "$run" ${EPOCHS:+--epochs "$EPOCHS"} \
      ${from:+--weights "$PUBLISH/$from"}
  elif [ ! -f "$run/model.keras" ]; then
    "$EDGEMRI" train --data "$root" "${args[@]}" --image-size "$SIZE" --epochs "$epochs" --batch-size 32 \
      --val-fraction 0.15 --test-fraction 0.15 --group-duplicates --seed 0 --out "$run"
  fi
  local holdout=""
  is_recipe_job "$job" && holdout=$(final_fit_holdout "$job")
  if [ -n "$holdout" ]; then   # publish the final fit: train + (1 - holdout) of val, the rest of val calibrates
    echo "== $job: final fit, holdout $holdout ($(date -u +%H:%M:%S))"
    [ -f "$run-final/model.keras" ] || "$EDGEMRI" train --final-fit "$run" --holdout "$holdout" --out "$run-final"
    run="$run-final"
  fi
  "$EDGEMRI" evaluate "$run" --split test
  echo "== $job: qat ($(date -u +%H:%M:%S))"
  [ -d "$run/qat/saved_model" ] || "$EDGEMRI" qat "$run" --epochs 1
  echo "== $job: convert ($(date -u +%H:%M:%S))"
  "$EDGEMRI" convert "$run" --target all || [ $? -eq 3 ]   # 3 = a target failed verification: shown in the report
  echo "== $job: tune ($(date -u +%H:%M:%S))"   # the fastest matching runtime config -> manifest hints
  "$EDGEMRI" tune "$run" --threads 1,2
  echo "== $job: bench ($(date -u +%H:%M:%S))"
  "$EDGEMRI" bench "$run" --split test --threads 1,2 --runs 50
  publish "$run" "$job"
  echo "== $job: done ($(date -u +%H:%M:%S))"
}

audit() {
  "$EDGEMRI" data audit "$BRAIN" --json benchmarks/results/audit-brain.json
  "$EDGEMRI" data audit "$BUSI" --json benchmarks/results/audit-busi.json
}

expand() {
  case $1 in
    all)    echo audit brain4-convmixer-edge brain2-convmixer-edge busi3-convmixer-edge \
                 brain4-mobilenetv2 brain2-mobilenetv2 busi3-mobilenetv2 busi3-mobilenetv2-brain4 ;;
    brain4) echo brain4-convmixer-edge brain4-mobilenetv2 ;;
    brain2) echo brain2-convmixer-edge brain2-mobilenetv2 ;;
    busi3)  echo busi3-convmixer-edge busi3-mobilenetv2 busi3-mobilenetv2-brain4 ;;
    *)      echo "$1" ;;
  esac
}

summary() {  # the README's results table, from every published report
  local -a reports=()
  for d in "$PUBLISH"/*/; do [ -f "$d/bench/report.json" ] && reports+=("$(basename "$d")=$d"); done
  [ ${#reports[@]} -gt 0 ] && "$EDGEMRI" compare "${reports[@]}" --out benchmarks/results/SUMMARY.md
}

for arg in "${@:-all}"; do
  for job in $(expand "$arg"); do
    if [ "$job" = audit ]; then audit; else run_job "$job"; fi
  done
done
summary
