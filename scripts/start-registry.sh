#!/usr/bin/env bash
# Start Debian's docker-registry on 127.0.0.1:$REGISTRY_PORT (default 5000),
# storing images in $STATE_DIR/registry (default .demo). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${REGISTRY_PORT:-5000}"
STATE_DIR="${STATE_DIR:-.demo}"
mkdir -p "$STATE_DIR/registry/data"
DIR="$(cd "$STATE_DIR/registry" && pwd)"
URL="http://127.0.0.1:$PORT/v2/"

answers() { curl -fsS --noproxy '*' --max-time 2 "$URL" >/dev/null 2>&1; }

if answers; then
  echo "start-registry: a registry already answers on 127.0.0.1:$PORT"
  exit 0
fi

cat >"$DIR/config.yml" <<YAML
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $DIR/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
YAML

# docker-registry treats every REGISTRY_* variable as a config override (even
# REGISTRY_PORT, with a warning), so start it without them.
(
  unset "${!REGISTRY_@}"
  exec setsid nohup /usr/bin/docker-registry serve "$DIR/config.yml" </dev/null >"$DIR/registry.log" 2>&1
) &
echo $! >"$DIR/registry.pid"

for _ in $(seq 60); do
  answers && { echo "start-registry: registry on 127.0.0.1:$PORT (data in $DIR/data)"; exit 0; }
  kill -0 "$(cat "$DIR/registry.pid")" 2>/dev/null || break
  sleep 0.5
done
echo "start-registry: registry did not answer on $URL. Last lines of $DIR/registry.log:" >&2
tail -n 25 "$DIR/registry.log" >&2
exit 1
