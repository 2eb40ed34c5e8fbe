"""Where the command-line tools the bootstrap installs live: on PATH, else in the checkout's .tools/bin."""

from __future__ import annotations

import shutil
from pathlib import Path

# scripts/install-kube-tools.sh and scripts/install-terraform.sh put helm, kubectl and terraform here.
TOOLS_BIN = Path(__file__).resolve().parents[2] / ".tools" / "bin"


def find_tool(executable: str) -> str:
    """`executable` as configured when it is a path or on PATH, else the bootstrap's copy when there is one.

    A tool found nowhere is returned unchanged, so running it reports the missing tool with its install hint.
    """
    if "/" in executable or shutil.which(executable):
        return executable
    installed = TOOLS_BIN / executable
    return str(installed) if installed.is_file() else executable
