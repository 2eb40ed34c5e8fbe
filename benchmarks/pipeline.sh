#!/usr/bin/env bash
# The demo release as a plain script, the way the original Jenkins pipeline ran it: one tool after another, no
# orchestrator. benchmarks/orchestration.py runs it beside fintech-release and compares the two.
#
#   pipeline.sh SERVICE=REPOSITORY=DATABASE=REPLICAS …      (settings in the environment, see below)
#
# Per service, in order: git clone + checkout of the branch head, Checkstyle with fintech-release's ruleset and the
# demo's quality gate (blocker 0, critical 0, major ≤ 50), `gradle --offline --console=plain --daemon test`, then
# `… assemble -Pversion=V` (our build_tool runs these two invocations, in that order), `docker build` (the legacy
# builder, as the Docker SDK's /build does; host network, BASE_IMAGE and JAR_FILE build args, OCI labels), tag and
# `docker push` to the loopback registry. Then ci, as our deploy_ci run does it: nginx started with no routes; per
# service its database, a migration and an application account, the migrations applied in version order as the
# migration account; every replica started (host network on the ci address, PORT/BIND_ADDRESS/APP_ENV/DB_* and the
# password file mounted read-only, restart on-failure:5) and waited for on /health; the routes written, `nginx -t`,
# reload; finally the test stage: every replica watched for HEALTH_WINDOW seconds (running, never restarted).
# What it leaves (containers labelled SCOPE, nginx under WORK, databases ci_*) the caller removes.
#
# Each stage's start is appended to $WORK/stages.log as "<epoch seconds> <service or -> <stage>" for the comparison.
set -euo pipefail

: "${WORK:?}" "${REGISTRY:?}" "${REGISTRY_PATH:?}" "${IMAGE_NAMESPACE:?}" "${BASE_IMAGE:?}" "${CHECKSTYLE_CONFIG:?}"
: "${DB_HOST:?}" "${DB_PORT:?}" "${DB_ADMIN:?}" "${DB_PASSWORD:?}" "${ADDRESS:?}" "${INGRESS_PORT:?}"
: "${HEALTH_WINDOW:?}" "${SCOPE:?}" "${BUILD:?}"
ENVIRONMENT=ci
export DOCKER_BUILDKIT=0 GIT_TERMINAL_PROMPT=0

stage() { printf '%s %s %s\n' "$(date +%s.%N)" "$1" "$2" >>"$WORK/stages.log"; }
fail() { echo "pipeline.sh: $*" >&2; exit 1; }

mkdir -p "$WORK/src" "$WORK/secrets" "$WORK/nginx/tmp"
chmod 0755 "$WORK" "$WORK/secrets"
admin_cnf="$WORK/admin.cnf"
(umask 077; printf '[client]\nhost=%s\nport=%s\nuser=%s\npassword=%s\n' "$DB_HOST" "$DB_PORT" "$DB_ADMIN" "$DB_PASSWORD" >"$admin_cnf")

declare -A PUSHED
for spec in "$@"; do
  IFS='=' read -r name repo database replicas <<<"$spec"
  src="$WORK/src/$name"

  stage "$name" clone
  git clone --quiet --no-checkout -- "$repo" "$src"
  git -C "$src" checkout --quiet --detach master

  stage "$name" analysis
  report="$src/build/reports/analysis/checkstyle-result.xml"
  mkdir -p "$(dirname "$report")"
  checkstyle -c "$CHECKSTYLE_CONFIG" -f xml -o "$report" "$src/src/main/java" >/dev/null || true  # exit code = errors
  [[ -s $report ]] || fail "$name: Checkstyle wrote no report"
  ! grep -q 'Got an exception' "$report" || fail "$name: quality gate: a file cannot be parsed (blocker)"
  critical=$(grep -c 'severity="error"' "$report" || true)
  major=$(grep -c 'severity="warning"' "$report" || true)
  ((critical == 0 && major <= 50)) || fail "$name: quality gate: critical $critical (allowed 0), major $major (allowed 50)"

  stage "$name" tests
  (cd "$src" && gradle --offline --console=plain --daemon test >"$WORK/$name-test.log" 2>&1) \
    || fail "$name: tests failed (see $WORK/$name-test.log)"

  stage "$name" jar
  base_version=$(sed -n 's/^[[:space:]]*version[[:space:]]*[=:][[:space:]]*//p' "$src/gradle.properties")
  version="$base_version-$BUILD"
  (cd "$src" && gradle --offline --console=plain --daemon assemble "-Pversion=$version" >"$WORK/$name-jar.log" 2>&1) \
    || fail "$name: the jar did not build (see $WORK/$name-jar.log)"
  jar="build/libs/$name-$version.jar"
  [[ -f $src/$jar ]] || fail "$name: no $jar"

  stage "$name" image
  local_ref="$IMAGE_NAMESPACE/$name:$version"
  docker build --quiet --network host --build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "JAR_FILE=$jar" \
    --label "org.opencontainers.image.title=$name" --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$(git -C "$src" rev-parse HEAD)" \
    --label "org.opencontainers.image.base.name=$BASE_IMAGE" -t "$local_ref" "$src" >/dev/null

  stage "$name" push
  target="$REGISTRY/$REGISTRY_PATH/$name:$version"
  docker tag "$local_ref" "$target"
  docker push --quiet "$target" >/dev/null
  PUSHED[$name]=$(docker inspect --format '{{index .RepoDigests 0}}' "$target")
done

stage - ingress
conf="$WORK/nginx/nginx.conf"
render_nginx() {  # the routes given as "service=upstream servers;…" arguments
  {
    echo "worker_processes 1; daemon on; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;"
    echo "events { worker_connections 256; }"
    echo "http { access_log off; client_body_temp_path $WORK/nginx/tmp/body; proxy_temp_path $WORK/nginx/tmp/proxy;"
    echo "  proxy_next_upstream error timeout http_502 http_503;"
    for route in "$@"; do
      IFS='=' read -r service servers <<<"$route"
      echo "  upstream ${service//-/_} { $servers }"
    done
    echo "  server { listen $ADDRESS:$INGRESS_PORT; location = /_ingress/health { return 200 'ok'; }"
    for route in "$@"; do
      service=${route%%=*}
      echo "    location /$service/ { proxy_pass http://${service//-/_}/; }"
    done
    echo "  }"
    echo "}"
  } >"$conf"
}
render_nginx
chmod -R 0777 "$WORK/nginx/tmp"
nginx -t -q -c "$conf"
nginx -c "$conf"

routes=()
replica_names=()
for spec in "$@"; do
  IFS='=' read -r name repo database replicas <<<"$spec"
  db="${ENVIRONMENT}_${database}"

  stage "$name" database
  mig_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  app_password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  mysql --defaults-extra-file="$admin_cnf" <<SQL
CREATE DATABASE IF NOT EXISTS \`$db\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci;
CREATE USER IF NOT EXISTS '${db}_mig'@'127.0.0.1' IDENTIFIED BY '$mig_password';
ALTER USER '${db}_mig'@'127.0.0.1' IDENTIFIED BY '$mig_password';
GRANT ALL PRIVILEGES ON \`$db\`.* TO '${db}_mig'@'127.0.0.1';
CREATE USER IF NOT EXISTS '${db}_app'@'127.0.0.1' IDENTIFIED BY '$app_password';
ALTER USER '${db}_app'@'127.0.0.1' IDENTIFIED BY '$app_password';
GRANT SELECT, INSERT, UPDATE, DELETE ON \`$db\`.* TO '${db}_app'@'127.0.0.1';
SQL
  if [[ -d $WORK/src/$name/migrations ]]; then
    while read -r migration; do
      MYSQL_PWD="$mig_password" mysql -h "$DB_HOST" -P "$DB_PORT" -u "${db}_mig" "$db" <"$migration"
    done < <(find "$WORK/src/$name/migrations" -maxdepth 1 -name 'V*__*.sql' | sort -V)
  fi
  printf '%s' "$app_password" >"$WORK/secrets/$db"
  chmod 0444 "$WORK/secrets/$db"

  stage "$name" replicas
  servers=""
  started=()
  for ((i = 0; i < replicas; i++)); do
    port=$(python3 -c "import socket; s=socket.socket(); s.bind(('$ADDRESS', 0)); print(s.getsockname()[1])")
    replica="fr-bench-script-$name-$BUILD-$i"
    docker run --detach --quiet --name "$replica" --network host --restart on-failure:5 \
      --label "io.fintech-release.scope=$SCOPE" --label "io.fintech-release.service=$name" \
      -e "PORT=$port" -e "BIND_ADDRESS=$ADDRESS" -e "APP_ENV=$ENVIRONMENT" -e "DB_HOST=$DB_HOST" -e "DB_PORT=$DB_PORT" \
      -e "DB_NAME=$db" -e "DB_USER=${db}_app" -e "DB_PASSWORD_FILE=/run/secrets/db-password" \
      --mount "type=bind,src=$WORK/secrets/$db,dst=/run/secrets/db-password,readonly" "${PUSHED[$name]}" >/dev/null
    started+=("$port")
    replica_names+=("$replica")
    servers+="server $ADDRESS:$port; "
  done
  for port in "${started[@]}"; do
    deadline=$((SECONDS + 60))
    until curl -fsS --max-time 1 -o /dev/null "http://$ADDRESS:$port/health"; do
      ((SECONDS < deadline)) || fail "$name: a replica on port $port never answered /health"
      sleep 0.25
    done
  done
  routes+=("$name=$servers")
done

stage - routes
render_nginx "${routes[@]}"
nginx -t -q -c "$conf"
nginx -s reload -c "$conf"
for spec in "$@"; do
  name=${spec%%=*}
  deadline=$((SECONDS + 10))
  until curl -fsS --max-time 1 -o /dev/null "http://$ADDRESS:$INGRESS_PORT/$name/health"; do
    ((SECONDS < deadline)) || fail "$name: not reachable through the ingress"
    sleep 0.1
  done
done

stage - health
end=$(($(date +%s%N) + HEALTH_WINDOW * 1000000000))
while :; do
  for replica in "${replica_names[@]}"; do
    read -r running restarts < <(docker inspect --format '{{.State.Running}} {{.RestartCount}}' "$replica")
    [[ $running == true && $restarts == 0 ]] || fail "$replica: running=$running, restarts=$restarts"
  done
  (($(date +%s%N) < end)) || break
  sleep 0.5
done
stage - done
