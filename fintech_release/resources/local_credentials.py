"""Where the local platform keeps its databases' passwords: files under `local.state_dir`, never elsewhere.

Layout (every directory 0700, owned by the user running fintech-release)::

    <state_dir>/db-credentials/<database>/migrator.password   0600  the migration account's password
    <state_dir>/db-credentials/<database>/app_a.password      0400  an application account's password, owned by
    <state_dir>/db-credentials/<database>/app_b.password      0400  the services' user (uid 10001) and mounted
                                                                     read-only into each replica
    <state_dir>/db-credentials/<database>/active.json         0600  which application account is in use, and a
                                                                     random revision (no secret)

Why files here: the replicas need the password as a file (the DB_PASSWORD_FILE contract), the
local platform has no secret manager, and the event log, run config, labels and environment
listings must never hold it. Only root can give a file to another user: run as root (as the demo and
the suite do) the application files belong to the services' user with mode 0400; run as another
user, they stay yours with mode 0444, still behind the 0700 directories only you can enter.
Passwords come from `secrets.token_urlsafe` (192 bits).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from fintech_release.errors import MigrationError

Slot = Literal["a", "b"]
PASSWORD_BYTES = 24
DIRECTORY_MODE = 0o700
MIGRATOR_FILE = "migrator.password"
ACTIVE_FILE = "active.json"


class ActiveApplication(BaseModel, frozen=True):
    """Which of the two application accounts the replicas use, and the revision of its password."""

    slot: Slot
    revision: str


def new_password() -> str:
    """A fresh random password (URL-safe characters only: nothing to quote anywhere)."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def other(slot: Slot) -> Slot:
    return "b" if slot == "a" else "a"


class CredentialStore:
    """The password files of every database of the local platform, below one 0700 directory."""

    def __init__(self, root: Path, service_uid: int) -> None:
        self.root = Path(root)
        self.service_uid = service_uid

    def directory(self, database: str) -> Path:
        """The 0700 directory of `database`'s files (created with its parents)."""
        path = self.root / database
        for folder in (self.root, path):
            folder.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
            os.chmod(folder, DIRECTORY_MODE)
        return path

    def migrator_password(self, database: str) -> str:
        """The migration account's password, generated on first use."""
        path = self.directory(database) / MIGRATOR_FILE
        if not path.exists():
            _write_secret(path, new_password(), mode=0o600, owner=None)
        return path.read_text(encoding="utf-8").strip()

    def application_file(self, database: str, slot: Slot) -> Path:
        return self.directory(database) / f"app_{slot}.password"

    def application_password(self, database: str, slot: Slot) -> str | None:
        """The application account's password, or None when it has none on disk (retired or never used)."""
        path = self.application_file(database, slot)
        return path.read_text(encoding="utf-8").strip() if path.exists() else None

    def new_application_password(self, database: str, slot: Slot) -> str:
        """Generate and store a new password for the application account in `slot`; return it."""
        password = new_password()
        owner = self.service_uid if os.geteuid() == 0 else None
        _write_secret(self.application_file(database, slot), password, mode=0o400 if owner is not None else 0o444,
                      owner=owner)
        return password

    def forget_application_password(self, database: str, slot: Slot) -> None:
        self.application_file(database, slot).unlink(missing_ok=True)

    def active(self, database: str) -> ActiveApplication | None:
        path = self.directory(database) / ACTIVE_FILE
        if not path.exists():
            return None
        try:
            return ActiveApplication.model_validate_json(path.read_text(encoding="utf-8"))
        except ValueError:
            raise MigrationError(f"{path} is damaged; remove it and deploy again to get new credentials") from None

    def set_active(self, database: str, slot: Slot) -> ActiveApplication:
        """Make `slot` the account replicas use, under a new random revision."""
        active = ActiveApplication(slot=slot, revision=secrets.token_hex(8))
        _write_secret(self.directory(database) / ACTIVE_FILE, json.dumps(active.model_dump()), mode=0o600, owner=None)
        return active

    def remove(self, database: str) -> bool:
        """Delete every file of `database`; True when there were any."""
        path = self.root / database
        if not path.exists():
            return False
        shutil.rmtree(path)
        return True


def _write_secret(path: Path, text: str, *, mode: int, owner: int | None) -> None:
    """Write `text` to a new file beside `path` with `mode` (and `owner`), then move it into place atomically.

    A replica that mounted the old file keeps it (the mount holds the old inode) until it is replaced.
    """
    partial = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        if owner is not None:
            os.chown(partial, owner, owner)
        os.chmod(partial, mode)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


__all__ = ["ActiveApplication", "CredentialStore", "Slot", "new_password", "other"]
