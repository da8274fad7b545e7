#!/usr/bin/env bash
# Train the default models on a lent GPU in one run (the `device` tool): GPT and DiffuSeq side by
# side on one card, each within its own time budget. Needs data/prepared (carried along).
# Results are packed into $OUT as <=15 MB tar parts (the tool returns files of at most 16 MB,
# 64 MB in all), without optimizer states. Unpack here with: cat train.tar.part-* | tar -x
#   WHICH="gpt diffuseq"  which models to train (default both)
#   MIN_GPT, MIN_DIFF     minutes for each
set -u
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
WHICH="${WHICH:-gpt diffuseq}"
MIN_GPT="${MIN_GPT:-6}"
MIN_DIFF="${MIN_DIFF:-6}"
work=/tmp/train && mkdir -p "$work"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers, tokenizers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'tokenizers', tokenizers.__version__)"

pids=()
if [[ " $WHICH " == *" gpt "* ]]; then
  python3 -m generation.train_gpt --data data/prepared --tokenizer data/prepared/tokenizer \
    --out "$work/gpt" --run-dir "$work/gpt-run" --device cuda \
    --n-layer 8 --n-embd 384 --n-head 6 --n-positions 128 --batch-size 256 --lr 1e-3 \
    --warmup-steps 200 --dropout 0.15 --max-steps 6000 --max-minutes "$MIN_GPT" --eval-every 300 \
    --samples 2 --no-progress > "$work/gpt.log" 2>&1 &
  pids+=($!)
fi
if [[ " $WHICH " == *" diffuseq "* ]]; then
  python3 -m generation.diffuseq.train --data data/prepared --tokenizer data/prepared/tokenizer \
    --out "$work/diffuseq" --run-dir "$work/diffuseq-run" --device cuda --preset gpu \
    --batch-size 1024 --lr 1e-3 --warmup 300 --x0-ce-weight 1 --eval-minutes 1.5 \
    --max-minutes "$MIN_DIFF" > "$work/diffuseq.log" 2>&1 &
  pids+=($!)
fi
for pid in "${pids[@]}"; do wait "$pid"; echo "job $pid exit $?"; done
for log in "$work"/*.log; do echo "== $log"; tr '\r' '\n' < "$log" | grep -v "it/s\]$" | tail -n 25; done
tar -cf /tmp/train.tar --exclude="*.pt" --exclude="*.pt.tmp" -C /tmp train
ls -la /tmp/train.tar
split -b 15M /tmp/train.tar "$OUT/train.tar.part-"
ls -la "$OUT"
