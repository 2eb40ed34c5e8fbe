#!/usr/bin/env bash
# Install checkov (the infrastructure-as-code scanner `make test` runs) into its own virtualenv,
# .tools/checkov, at the version pinned in pyproject.toml (optional dependency `security-scan`).
#
# Not in .venv: checkov depends on bc-python-hcl2, Bridgecrew's fork of python-hcl2, which installs
# the same top-level `hcl2` package as python-hcl2 (the tests' HCL parser) with another API; in one
# environment whichever was installed last breaks the other.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.tools/checkov"
PYTHON="${PYTHON:-python3}"

PIN="$("$PYTHON" - "$ROOT/pyproject.toml" <<'PY'
import sys, tomllib
extras = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
print(next(pin for pin in extras["security-scan"] if pin.startswith("checkov")))
PY
)"
VERSION="${PIN#checkov==}"
if [[ -x "$VENV/bin/checkov" ]] && [[ "$("$VENV/bin/checkov" --version 2>/dev/null)" == "$VERSION" ]]; then
  echo "install-checkov: checkov $VERSION"
  exit 0
fi
echo "install-checkov: installing $PIN into $VENV"
"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "$PIN"
"$VENV/bin/checkov" --version
