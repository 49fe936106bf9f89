#!/usr/bin/env bash
# The shipped model's recipe, end to end: two training stages, export, evaluation report.
#   bash scripts/train-default-model.sh [RUN_DIR [--set FIELD=VALUE ...]]   (default runs/zh-cnn-crf)
# Extra --set overrides go to both stages (e.g. --set hidden=96: a wider network, which both
# stages must agree on). Needs the train extra (scripts/bootstrap.sh) and the shared corpora
# (../shared/corpora, or NERSTREAM_CORPORA_DIR). About 70 minutes on one core of the 2-core
# machine here; progress bars show each epoch.
# The model directory ends up in RUN_DIR/stage2/model, with evaluation.json and EVALUATION.md.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/zh-cnn-crf}
shift || true
nerstream=.venv/bin/nerstream

# Stage 1: every corpus, mention swaps, an eight-epoch schedule.
"$nerstream" train --config training/configs/zh-cnn-crf.json "$@" --output "$run/stage1"
# Stage 2: from stage 1's best checkpoint, the small domains weighted up, hospital departments
# (and doctors named after them).
"$nerstream" train --config training/configs/zh-cnn-crf-stage2.json "$@" \
    --set "init_checkpoint=$run/stage1/best.pt" --output "$run/stage2"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$nerstream" evaluate --report \
    --model-dir "$run/stage2/model" --provider cpu --threads 1
