#!/usr/bin/env bash
# Stop the registry started by start-registry.sh. dockerd is left running.
set -euo pipefail
cd "$(dirname "$0")/.."

PIDFILE="${STATE_DIR:-.demo}/registry/registry.pid"
[[ -f $PIDFILE ]] || { echo "stop-demo: no registry pidfile, nothing to stop"; exit 0; }

pid="$(cat "$PIDFILE")"
# Only signal the pid if it is still our docker-registry (pids get reused).
if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/"$pid"/cmdline | grep -q docker-registry; then
  kill "$pid"
  for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  echo "stop-demo: stopped registry (pid $pid)"
fi
rm -f "$PIDFILE"
