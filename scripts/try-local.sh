#!/usr/bin/env bash
# Quick start, command 1: install, then run the bot against a local Bot API server with a web
# chat page (no Telegram, no network). Open the URL it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh requirements.txt
exec .venv/bin/python -m bot --local "$@"
