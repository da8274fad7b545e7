#!/usr/bin/env bash
# Quick start, command 2: install, then lint and run the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements-dev.txt
scripts/setup-system.sh  # Chromium, an emoji font, PostgreSQL and Redis for the tests
.venv/bin/ruff check .
# two workers, one test file each at a time: the end-to-end tests wait on servers and sockets
# more than they compute, so the suite takes about half as long (README, "Development")
exec .venv/bin/python -m pytest -n 2 --dist loadfile "$@"
