#!/usr/bin/env bash
# Reproduce the real-data results table (issue 7): audit, train, QAT, convert to every target, bench.
# Long (hours on a 2-core CPU; minutes on a GPU with KERAS_BACKEND=jax). Not part of CI.
#   usage: benchmarks/results/reproduce.sh [brain4|brain2|busi3|all]   (default: all)
# Results land in runs/results/<dataset>-<arch>/ and are copied to benchmarks/results/<dataset>-<arch>/.
set -euo pipefail
cd "$(dirname "$0")/../.."
EDGEMRI=${EDGEMRI:-.venv/bin/edgemri}
DATA=${DATA:-../shared/datasets}
SIZE=${SIZE:-128}
OUT=${OUT:-runs/results}
mkdir -p "$OUT"

run_one() {  # dataset-name root arch epochs [extra train args...]
  local name=$1 root=$2 arch=$3 epochs=$4; shift 4
  local run="$OUT/$name-$arch"
  if [ ! -f "$run/model.keras" ]; then
    "$EDGEMRI" train --arch "$arch" --data "$root" --image-size "$SIZE" --epochs "$epochs" --batch-size 32 \
      --val-fraction 0.15 --test-fraction 0.15 --group-duplicates --seed 0 --out "$run" "$@"
  fi
  "$EDGEMRI" evaluate "$run" --split test
  [ -d "$run/qat/saved_model" ] || "$EDGEMRI" qat "$run" --epochs 1
  "$EDGEMRI" convert "$run" --target all || true          # exit 3 = some target failed verification: in the report
  "$EDGEMRI" bench "$run" --split test --threads 1,2 --runs 50
  mkdir -p "benchmarks/results/$name-$arch"
  cp "$run"/bench/report.{json,md,html} "$run"/metrics.json "benchmarks/results/$name-$arch/"
}

dataset() {
  case $1 in
    brain4)
      "$EDGEMRI" data audit "$DATA/brain-tumor-mri/train" --json benchmarks/results/audit-brain.json || true
      for arch in convmixer-edge simple-cnn; do run_one brain4 "$DATA/brain-tumor-mri/train" $arch 12; done
      run_one brain4 "$DATA/brain-tumor-mri/train" mobilenetv2 12 --arch-opt alpha=1.0
      ;;
    brain2)
      run_one brain2 "$DATA/brain-tumor-mri/train" convmixer-edge 12 --merge tumor=glioma,meningioma,pituitary
      ;;
    busi3)
      "$EDGEMRI" data audit "$DATA/busi/train" --json benchmarks/results/audit-busi.json || true
      run_one busi3 "$DATA/busi/train" convmixer-edge 30 --augment ultrasound
      run_one busi3 "$DATA/busi/train" mobilenetv2 30 --augment ultrasound --arch-opt alpha=0.35
      ;;
    *) echo "unknown dataset $1 (brain4, brain2, busi3, all)" >&2; exit 2 ;;
  esac
}

if [ "${1:-all}" = all ]; then for d in brain4 brain2 busi3; do dataset $d; done; else dataset "$1"; fi
