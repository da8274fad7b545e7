#!/usr/bin/env bash
# Quick start, command 2: install, then lint and run the whole test suite. CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements-dev.txt
scripts/setup-system.sh  # Chromium, an emoji font, PostgreSQL and Redis for the tests
.venv/bin/ruff check .
exec .venv/bin/python -m pytest "$@"
