#!/usr/bin/env bash
# System packages the tests need beyond Python: Debian's Chromium (the web chat's browser test,
# tests/test_webchat_browser.py, drives it through Playwright) and a colour emoji font (the
# chat's 👍/👎 buttons and its screenshot), and PostgreSQL and Redis servers (tests/servers.py
# starts throwaway ones for the storage and replica tests). Installs only what is missing; uses
# sudo when not root. Safe to run again. scripts/test.sh calls it, so CI on a clean machine gets
# them.
set -euo pipefail
packages=(chromium fonts-noto-color-emoji postgresql redis-server)
missing=()
for package in "${packages[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
  [[ "$status" == "install ok installed" ]] || missing+=("$package")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-system.sh: no apt-get here; install ${missing[*]} by hand" >&2
  exit 1
fi
sudo=()
if [[ "$(id -u)" -ne 0 ]]; then
  sudo=(sudo)
fi
echo "setup-system.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
