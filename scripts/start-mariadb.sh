#!/usr/bin/env bash
# Start the demo's MariaDB on 127.0.0.1:$DB_PORT (default 3306) with its data in
# $STATE_DIR/mariadb (default .demo), and give it the admin user fintech_release (all
# privileges, with grant option, from 127.0.0.1 and localhost) whose password is
# $FINTECH_RELEASE_DB_PASSWORD. Idempotent: a server already started here is reused and the
# user's password is set again from the variable. The server's root logs in only through the
# unix socket; SQL goes to the client on stdin, so the password never shows up in `ps`.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${DB_PORT:-3306}"
STATE_DIR="${STATE_DIR:-.demo}"
ADMIN_USER=fintech_release

die() { echo "start-mariadb: $*" >&2; exit 1; }

[[ -n ${FINTECH_RELEASE_DB_PASSWORD:-} ]] || die "FINTECH_RELEASE_DB_PASSWORD is not set.
Export the password the admin user $ADMIN_USER should have, e.g.
  export FINTECH_RELEASE_DB_PASSWORD=\"\$(head -c 18 /dev/urandom | base64)\""
[[ $PORT =~ ^[0-9]+$ ]] && ((PORT >= 1 && PORT <= 65535)) || die "DB_PORT must be a port number, not '$PORT'"

program() {
  command -v "$1" 2>/dev/null && return 0
  [[ -x /usr/sbin/$1 ]] && { echo "/usr/sbin/$1"; return 0; }
  die "$1 is not installed; install mariadb-server (scripts/install-system-deps.sh does it)"
}
MARIADBD="$(program mariadbd)"
INSTALL_DB="$(program mariadb-install-db)"
CLIENT="$(program mariadb)"

mkdir -p "$STATE_DIR/mariadb"
DIR="$(cd "$STATE_DIR/mariadb" && pwd)"
DATADIR="$DIR/data"
LOG="$DIR/mariadbd.err"
OS_USER="$(id -un)"  # as root mariadbd must be told --user=root; socket login maps to this user
SOCKET="$DIR/mariadbd.sock"
if ((${#SOCKET} > 100)); then  # a unix socket path must fit in 108 bytes
  SOCKET="${TMPDIR:-/tmp}/fintech-release-mariadb-$PORT.sock"
fi

client() { "$CLIENT" --no-defaults --socket="$SOCKET" --user="$OS_USER" --batch --skip-column-names "$@"; }
ours_answers() { [[ -S $SOCKET ]] && client -e 'SELECT 1' >/dev/null 2>&1; }
port_answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

if ours_answers; then
  echo "start-mariadb: MariaDB already runs on 127.0.0.1:$PORT (data in $DATADIR)"
else
  port_answers && die "something else listens on 127.0.0.1:$PORT; stop it or choose another port with DB_PORT=..."
  if [[ ! -d $DATADIR/mysql ]]; then
    echo "start-mariadb: creating the data directory $DATADIR"
    rm -rf "$DATADIR"
    "$INSTALL_DB" --no-defaults --datadir="$DATADIR" --user="$OS_USER" \
      --auth-root-authentication-method=socket --auth-root-socket-user="$OS_USER" --skip-test-db \
      >"$DIR/install-db.log" 2>&1 || { tail -n 25 "$DIR/install-db.log" >&2; die "mariadb-install-db failed"; }
  fi
  # --no-defaults first: nothing from /etc/mysql (the system server's datadir and socket).
  # setsid + closed stdio: the server outlives this script and does not hold make's output open.
  (
    exec setsid nohup "$MARIADBD" --no-defaults --datadir="$DATADIR" --socket="$SOCKET" --port="$PORT" \
      --bind-address=127.0.0.1 --pid-file="$DIR/mariadbd.pid" --log-error="$LOG" --user="$OS_USER" \
      --skip-name-resolve </dev/null >"$DIR/mariadbd.out" 2>&1
  ) &
  server=$!
  for _ in $(seq 120); do
    ours_answers && port_answers && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.5
  done
  if ! ours_answers || ! port_answers; then
    echo "start-mariadb: MariaDB did not answer on 127.0.0.1:$PORT within 60 s. Last lines of $LOG:" >&2
    tail -n 25 "$LOG" >&2 2>/dev/null || true
    exit 1
  fi
  echo "start-mariadb: MariaDB on 127.0.0.1:$PORT (data in $DATADIR, log $LOG)"
fi

# The admin user, with the password from the environment. printf is a shell builtin and the
# SQL reaches the client on stdin, so the password is in no process's argument list.
sql_string() { local s=${1//\\/\\\\}; s=${s//\'/\'\'}; printf "'%s'" "$s"; }
password="$(sql_string "$FINTECH_RELEASE_DB_PASSWORD")"
for host in 127.0.0.1 localhost; do
  account="'$ADMIN_USER'@'$host'"
  printf '%s\n' \
    "CREATE USER IF NOT EXISTS $account IDENTIFIED BY $password;" \
    "ALTER USER $account IDENTIFIED BY $password;" \
    "GRANT ALL PRIVILEGES ON *.* TO $account WITH GRANT OPTION;"
done | client || die "could not create the admin user $ADMIN_USER (see $LOG)"
echo "start-mariadb: admin user $ADMIN_USER may connect from 127.0.0.1 and localhost"
