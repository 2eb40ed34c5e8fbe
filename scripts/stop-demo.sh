#!/usr/bin/env bash
# Stop the demo's registry and MariaDB (started by start-registry.sh and start-mariadb.sh).
# dockerd is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE_DIR="${STATE_DIR:-.demo}"

# stop NAME PIDFILE: signal the pid only if it still runs NAME (pids get reused).
stop() {
  local name=$1 pidfile=$2 pid
  [[ -f $pidfile ]] || { echo "stop-demo: $name is not running"; return 0; }
  pid="$(cat "$pidfile")"
  if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' </proc/"$pid"/cmdline | grep -q "$name"; then
    kill "$pid"
    for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    echo "stop-demo: stopped $name (pid $pid)"
  fi
  rm -f "$pidfile"
}

stop docker-registry "$STATE_DIR/registry/registry.pid"
stop mariadbd "$STATE_DIR/mariadb/mariadbd.pid"
