#!/usr/bin/env bash
# Install the Debian/Ubuntu packages fintech-release needs (idempotent).
# Fast no-op when everything is present; uses sudo only when not root.
# PYTHON (default python3) must be Python 3.11.
set -euo pipefail

PYTHON="${PYTHON:-python3}"

die() { echo "install-system-deps: $*" >&2; exit 1; }

# package:probe - the package counts as present if dpkg has it installed OR
# the probe (a command, also looked up in /usr/sbin, or an absolute path)
# exists. The probe avoids e.g. replacing docker-ce with docker.io.
wanted=(
  docker.io:dockerd
  docker-registry:/usr/bin/docker-registry
  gradle:gradle
  junit4:/usr/share/java/junit4.jar
  "openjdk-17-jdk-headless:/usr/lib/jvm/java-17-openjdk-$(dpkg --print-architecture)/bin/jlink"
  checkstyle:checkstyle
  git:git
  make:make
  mariadb-server:mariadbd
  mariadb-client:mysqldump
  libmariadb-java:/usr/share/java/mariadb-java-client.jar
  nginx-light:nginx
  ca-certificates:/etc/ssl/certs/ca-certificates.crt
  curl:curl
  unzip:unzip
  postgresql:/usr/lib/postgresql
)

python_is_311() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null
}

check_python() {
  python_is_311 || die "$PYTHON is $("$PYTHON" --version 2>&1), but fintech-release needs Python 3.11.
Install Python 3.11 (e.g. apt-get install python3.11 python3.11-venv, or pyenv) and run again with PYTHON=python3.11."
}

present() {
  local pkg=${1%%:*} probe=${1#*:}
  if [[ $probe == /* ]]; then [[ -e $probe ]] && return 0
  else command -v "$probe" >/dev/null 2>&1 || [[ -x /usr/sbin/$probe ]] && return 0
  fi
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'
}

# Fail early (before a long apt run) when an existing python3 is the wrong version.
python_found=true
if command -v "$PYTHON" >/dev/null 2>&1; then check_python; else python_found=false; fi

missing=()
for entry in "${wanted[@]}"; do
  present "$entry" || missing+=("${entry%%:*}")
done
$python_found || missing+=(python3)
# venv needs ensurepip, which Debian ships separately in python3-venv.
if ! $python_found || ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if ((${#missing[@]} == 0)); then
  exit 0
fi

command -v apt-get >/dev/null 2>&1 || die "missing ${missing[*]} and apt-get is not available; install them by hand."
SUDO=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 || die "missing ${missing[*]}; run as root or install sudo."
  SUDO=(sudo)
fi

echo "install-system-deps: installing ${missing[*]}"
"${SUDO[@]}" apt-get update
# Some newer releases no longer ship nginx-light; fall back to plain nginx.
if [[ " ${missing[*]} " == *" nginx-light "* ]] && ! apt-cache show nginx-light >/dev/null 2>&1; then
  missing=("${missing[@]/#nginx-light/nginx}")
fi
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive \
  apt-get install -y --no-install-recommends "${missing[@]}"

check_python
