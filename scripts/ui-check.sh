#!/usr/bin/env bash
# `make ui-check`: check the Dagster UI in a real headless Chromium (scripts/ui_check.py) after `make demo`.
# Installs Debian's chromium and, into .tools/ui-venv, playwright (its own browser download is not used);
# starts `make ui` for the check when no webserver answers on 127.0.0.1:3000, and stops it afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  SUDO=(); ((EUID == 0)) || SUDO=(sudo)
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
if [[ ! -x .tools/ui-venv/bin/python ]]; then
  "${PYTHON:-python3}" -m venv .tools/ui-venv
fi
.tools/ui-venv/bin/python -m pip install --quiet --disable-pip-version-check "playwright>=1.50,<2" requests

started=""
if ! curl -fs -o /dev/null http://127.0.0.1:3000/server_info; then
  echo "ui-check: starting make ui for the check (log: .demo/ui-check.log)"
  mkdir -p .demo
  setsid make ui >.demo/ui-check.log 2>&1 &
  started=$!
  trap 'kill -- -"$started" 2>/dev/null || true' EXIT
  for _ in $(seq 120); do curl -fs -o /dev/null http://127.0.0.1:3000/server_info && break; sleep 1; done
  sleep 5  # the code location loads after the webserver answers
fi
FINTECH_RELEASE_DB_PASSWORD="$(cat .demo/db-password)" .tools/ui-venv/bin/python scripts/ui_check.py
