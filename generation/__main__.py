"""`python -m generation "Молоко" --method gpt -n 3`: see `generation.cli`."""

from generation.cli import main

raise SystemExit(main())
