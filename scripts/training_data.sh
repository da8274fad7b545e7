# Sourced by the training scripts (cpu_pretrain_gpt.sh, gpu_train.sh): the working folder and
# environment their steps expect, and the prepared data they share, each made once and then kept.
# The functions run the Python in $PY.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false

prepare_jokes_380() {  # prepare_jokes_380 CORPUS: data/prepared-380, the jokes <= 380 characters
  [[ -f data/prepared-380/train.jsonl ]] ||
    $PY -m generation.training.corpus --corpus "$1" --out data/prepared-380 --max-chars 380
}

prepare_literature() {  # prepare_literature TAR_XZ: data/literature, the public-domain pieces
  [[ -f data/literature/train.jsonl ]] ||
    $PY -m generation.training.literature --src "$1" --out data/literature
}

mix_literature_and_jokes() {  # data/mix-lit: both, validated on the jokes' valid split
  $PY -m generation.training.mix --train data/literature --train data/prepared-380 \
    --eval data/prepared-380 --out data/mix-lit > /dev/null
}
