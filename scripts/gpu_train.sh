#!/usr/bin/env bash
# Train the models on a lent GPU in one run (the `device` tool, 15 minutes of device time in all):
#   GPT: a larger GPT than the shipped one (default 12 layers x 384, 6 heads, 128 positions, ~26 M
#     parameters, 52 MB in bf16) pre-trained from scratch on public-domain literature + the jokes
#     (so it learns Russian before jokes; see generation/training), then fine-tuned on the
#     stage-2 jokes (<= 380 characters, humornet/anecapi x4), then temperature-calibrated.
#   DiffuSeq: trained side by side on the same card for MIN_DIFF minutes (data/prepared, the
#     jokes <= 200 characters; tokenizer = models/gpt's, the same BPE it was trained with).
# Why 384 wide and not 512+: $OUT brings back at most 64 MB (8 files of <= 16 MB), so the bf16
# GPT must stay under ~58 MB to come back with its tokenizer and logs in one call (12 x 512 would
# be 88 MB). DiffuSeq's weights (33 MB) then no longer fit beside it: they stay packed on the
# machine, and a follow-up call within the machine's 30 s warm window fetches them:
#   PACK_ONLY=diffuseq scripts/gpu_train.sh
# Everything it reads must travel: data/gpu (made here by `scripts/gpu_train.sh prepare`, ~20 MB
# of xz: the literature pieces, data/prepared-380 and data/prepared), carried
# with carry=["data/gpu"]. NOTE: the tracked tree (models/*.safetensors) is itself ~71 MiB, over
# the tool's 64 MiB for what travels; the lead has to get the weights out of the tree that travels
# before this can run.
#   WHICH="gpt diffuseq"  which models to train (default both)
#   MIN_PRE, MIN_FT       GPT minutes: pre-training on the mix, joke fine-tuning (default 4.5, 2)
#   MIN_DIFF              DiffuSeq minutes (default 7.5)
# The defaults keep the whole command near 9 minutes (two tokenizations, evals, calibration and
# packing come on top of the budgets), under the tool's 10 minutes a command (timeout_s 600).
#   N_LAYER, N_EMBD, N_HEAD, BATCH   GPT size and batch (default 12, 384, 6, 256)
#   DEVICE                cuda (default) or cpu: the CPU smoke test, with tiny sizes and minutes
#   OUT                   where results go (the tool sets it)
# Results: $OUT/gpt.tar.part-* (cat gpt.tar.part-* | tar -x: gpt/ = the calibrated model,
# gpt-*run/ = metrics and loss curves, without optimizer states) and $OUT/logs.txt.
set -u
source "$(dirname "$0")/training_data.sh"
WHICH="${WHICH:-gpt diffuseq}"
MIN_PRE="${MIN_PRE:-4.5}"
MIN_FT="${MIN_FT:-2}"
MIN_DIFF="${MIN_DIFF:-7.5}"
N_LAYER="${N_LAYER:-12}"
N_EMBD="${N_EMBD:-384}"
N_HEAD="${N_HEAD:-6}"
BATCH="${BATCH:-256}"
DEVICE="${DEVICE:-cuda}"
PY="${PY:-python3}"
work="${WORK:-/tmp/train}"
OUT="${OUT:-/tmp/out}"

if [[ "${1:-}" == "prepare" ]]; then  # here, before the run: pack what must travel
  set -e
  PY=.venv/bin/python
  mkdir -p data/gpu
  prepare_literature ../shared/data/literature/ruslit_public_domain.tar.xz
  prepare_jokes_380 ../shared/data/jokes
  [[ -f data/prepared/train.jsonl ]] ||
    $PY -m generation.training.corpus --corpus ../shared/data/jokes --out data/prepared
  tar -cJf data/gpu/data.tar.xz --exclude=fun.jsonl data/literature/train.jsonl \
    data/prepared-380 data/prepared
  ls -la data/gpu
  exit 0
fi

pack() {  # pack <name> <paths under $work>...: <= 15 MiB parts into $OUT
  local name=$1
  shift
  tar -cf "/tmp/$name.tar" --exclude="*.pt" --exclude="*.pt.tmp" -C "$work" "$@"
  split -b 15M "/tmp/$name.tar" "$OUT/$name.tar.part-"
}
if [[ -n "${PACK_ONLY:-}" ]]; then
  pack "$PACK_ONLY" "$PACK_ONLY" "$PACK_ONLY-run" "$PACK_ONLY.log"
  ls -la "$OUT"
  exit 0
fi

mkdir -p "$work" "$OUT"
[[ "$DEVICE" == cuda ]] && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
$PY -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"
[[ -f data/gpu/data.tar.xz ]] && tar -xJf data/gpu/data.tar.xz
mix_literature_and_jokes || exit 1

gpt() {  # pre-train on literature + jokes, fine-tune on jokes, calibrate
  local common=(--tokenizer models/gpt --device "$DEVICE" --batch-size "$BATCH" --samples 2
    --no-progress --max-weights-mb 62 --oversample humornet=4 --oversample anecapi=4)
  $PY -m generation.training.train_gpt --data data/mix-lit --out "$work/gpt-pre" \
    --run-dir "$work/gpt-pre-run" --n-layer "$N_LAYER" --n-embd "$N_EMBD" --n-head "$N_HEAD" \
    --n-positions 128 --lr 1e-3 --warmup-steps 200 --dropout 0.1 --eval-every 300 \
    --max-minutes "$MIN_PRE" "${common[@]}" || return 1
  # The pre-training run selects by the jokes' valid loss; fine-tune from its last weights.
  $PY -m generation.training.export_state "$work/gpt-pre-run" --tokenizer models/gpt \
    --out "$work/gpt-pre-last" || return 1
  $PY -m generation.training.train_gpt --data data/prepared-380 --init-from "$work/gpt-pre-last" \
    --out "$work/gpt" --run-dir "$work/gpt-run" --lr 2e-4 --warmup-steps 50 --dropout 0.15 \
    --eval-every 100 --max-minutes "$MIN_FT" "${common[@]}" || return 1
  $PY -m generation.training.calibrate "$work/gpt" --data data/prepared-380
}

pids=()
if [[ " $WHICH " == *" gpt "* ]]; then
  gpt > "$work/gpt.log" 2>&1 &
  pids+=($!)
fi
if [[ " $WHICH " == *" diffuseq "* ]]; then
  diff_size=(--preset gpu --batch-size 1024)
  [[ "$DEVICE" == cpu ]] && diff_size=(--preset tiny --batch-size 16)
  $PY -m generation.training.train_diffuseq --data data/prepared --tokenizer models/gpt \
    --out "$work/diffuseq" --run-dir "$work/diffuseq-run" --device "$DEVICE" "${diff_size[@]}" \
    --lr 1e-3 --warmup 300 --x0-ce-weight 1 --eval-minutes 2 \
    --max-minutes "$MIN_DIFF" > "$work/diffuseq.log" 2>&1 &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; echo "job $pid exit $?"; done
for log in "$work"/*.log; do
  echo "== $log"
  tr '\r' '\n' < "$log" | grep -v "it/s\]$" | tail -n 40
done > "$OUT/logs.txt"
cat "$OUT/logs.txt"
[[ -d "$work/gpt" ]] && pack gpt gpt gpt-run gpt-pre-run
ls -la "$OUT"
