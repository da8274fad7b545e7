"""`python -m generation.judge train ...`: the only subcommand is training."""

import sys

from generation.judge.train import main

if __name__ == "__main__":
    if sys.argv[1:2] != ["train"]:
        sys.exit("usage: python -m generation.judge train [--ratings ratings.jsonl] [...]")
    sys.exit(main(sys.argv[2:]))
