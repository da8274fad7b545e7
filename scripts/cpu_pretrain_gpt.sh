#!/usr/bin/env bash
# Continue training the shipped GPT (models/gpt) on public-domain Russian literature mixed with the
# jokes, on this shared CPU, so that it learns the language and not only the joke format. The
# shipped model read ~3-4 M tokens of 94% dialogue jokes; a fluent reader finds its jokes mostly
# meaningless (docs: /work/shared/docs/quality-notes.md).
#   Phase 1 (mix): literature pieces (generation.training.literature) + the stage-2 joke training
#     split (humornet, anecapi x4, as in cpu_finetune_gpt.sh), so the jokes are not forgotten while
#     the prose is read. Validation is the jokes' valid split: the number we care about.
#   Phase 2 (jokes): a short joke-only run from phase 1's LAST weights (exported from
#     trainer_state.pt; phase 1's best-by-joke-loss checkpoint may be an early, little-read one),
#     at a lower learning rate, selecting the checkpoint by the jokes' validation loss.
#   Phase 3: temperature calibration on the jokes' valid split (python -m generation.training.calibrate).
# --threads THREADS (default 1: the other core belongs to everyone else).
# PRECISION (default fp32): this machine's CPU (AMD EPYC, AVX2, no AVX-512 BF16) runs a
# bf16-autocast training step ~13x slower than fp32 (measured: forward+backward of 4x64 tokens,
# 1 thread: 8.9-9.7 vs 0.64-0.77 CPU seconds); bf16 autocast pays off only on a CPU with native
# bf16 units.
#   CORPUS     joke corpus folder (default ../shared/data/jokes)
#   LIT_SRC    literature tar.xz (default ../shared/data/literature/ruslit_public_domain.tar.xz)
#   INIT       model to start from (default models/gpt; never written to)
#   MIN_MIX    minutes of phase 1 (default 50), MIN_JOKE minutes of phase 2 (default 15)
#   LR_MIX, LR_JOKE  peak learning rates (default 3e-4, 1e-4); cosine decay to 10% in each budget
#   BATCH      rows per step (default 32: on a contended core a step is slow, so more, smaller
#              steps make more progress in the budget than batch 64)
#   OUT        output folder (default runs/gpt-lit)
# Output: $OUT/model (best joke-phase checkpoint, calibrated, calibration.json), $OUT/mix and
# $OUT/jokes (metrics.json, loss.png, trainer_state.pt), $OUT/mix-last (phase 1's last weights).
# Typical use: nohup nice -n 5 scripts/cpu_pretrain_gpt.sh > runs/gpt-lit.log 2>&1 &
set -euo pipefail
source "$(dirname "$0")/training_data.sh"
CORPUS="${CORPUS:-../shared/data/jokes}"
LIT_SRC="${LIT_SRC:-../shared/data/literature/ruslit_public_domain.tar.xz}"
INIT="${INIT:-models/gpt}"
MIN_MIX="${MIN_MIX:-50}"
MIN_JOKE="${MIN_JOKE:-15}"
LR_MIX="${LR_MIX:-3e-4}"
LR_JOKE="${LR_JOKE:-1e-4}"
THREADS="${THREADS:-1}"
BATCH="${BATCH:-32}"
PRECISION="${PRECISION:-fp32}"
OUT="${OUT:-runs/gpt-lit}"
PY=.venv/bin/python
stamp() { echo "== $(date -u +%H:%M:%S) $*"; }

prepare_jokes_380 "$CORPUS"
prepare_literature "$LIT_SRC"
mix_literature_and_jokes
mkdir -p "$OUT"
common=(--tokenizer "$INIT" --batch-size "$BATCH" --dropout 0.1 --samples 2
  --threads "$THREADS" --precision "$PRECISION" --no-progress
  --oversample humornet=4 --oversample anecapi=4)

stamp "phase 1: literature + jokes, $MIN_MIX min, lr $LR_MIX"
$PY -m generation.training.train_gpt --data data/mix-lit --init-from "$INIT" \
  --out "$OUT/mix/model" --run-dir "$OUT/mix" --lr "$LR_MIX" --warmup-steps 20 \
  --eval-every 75 --max-minutes "$MIN_MIX" "${common[@]}"
$PY -m generation.training.export_state "$OUT/mix" --tokenizer "$INIT" --out "$OUT/mix-last"

stamp "phase 2: jokes only, $MIN_JOKE min, lr $LR_JOKE"
$PY -m generation.training.train_gpt --data data/prepared-380 --init-from "$OUT/mix-last" \
  --out "$OUT/model" --run-dir "$OUT/jokes" --lr "$LR_JOKE" --warmup-steps 10 \
  --eval-every 100 --max-minutes "$MIN_JOKE" "${common[@]}"

stamp "phase 3: calibration"
$PY -m generation.training.calibrate "$OUT/model" --data data/prepared-380 --threads "$THREADS"
stamp "done: $OUT/model"
