"""The webhook's durable record of deliveries and of the launches they owe: SQLite under `webhook.state_dir`.

A delivery is answered only once this record is on disk, so an accepted delivery survives a crash, a
restart or a power cut, and its launches are retried from here until they launch or a newer head of
the same branch supersedes them. SQLite because the record must outlive Dagster being down (Dagster's
event log cannot hold it then), needs one atomic step for "is this body new, and what does it owe",
and comes with Python: WAL journal with `synchronous=FULL` syncs every commit to disk before the answer.

    deliveries  one row per signed push body: its SHA-256 (unique: a replayed body is found here, also
                after its run was deleted), our delivery id, Bitbucket's request id (unsigned, for logs)
    launches    one row per run a delivery owes: pending -> launched | exists | superseded; `unsure_until`
                while a launchRun's answer was lost (see launcher.py)

One webhook process uses a state directory at a time (`webhook.lock`, released by the kernel when the
process ends), so the in-process lock per run key is the only one needed.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from pydantic import BaseModel

from fintech_release.errors import ExternalSystemError
from fintech_release.triggers.ci_runs import CiRun

DATABASE = "deliveries.sqlite3"
LOCK_FILE = "webhook.lock"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id TEXT PRIMARY KEY,
    body_sha256 TEXT NOT NULL UNIQUE,
    received_at REAL NOT NULL,
    event TEXT NOT NULL,
    request_id TEXT NOT NULL,
    repository TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS launches (
    id INTEGER PRIMARY KEY,
    delivery_id TEXT NOT NULL REFERENCES deliveries (id),
    run_key TEXT NOT NULL,
    job_name TEXT NOT NULL,
    service TEXT NOT NULL,
    branch TEXT NOT NULL,
    sha TEXT NOT NULL,
    partition_key TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    run_id TEXT,
    launched_at REAL,
    unsure_until REAL  -- a launchRun was sent and its answer not seen: until then, only look the run up
);
CREATE INDEX IF NOT EXISTS launches_due ON launches (state, next_attempt_at);
CREATE INDEX IF NOT EXISTS launches_branch ON launches (service, branch, state);
"""
PENDING, LAUNCHED, EXISTS, SUPERSEDED = "pending", "launched", "exists", "superseded"


class Recorded(BaseModel, frozen=True):
    """The outcome of recording one delivery: its id, and for a body seen before, the first delivery's states."""

    delivery: str
    duplicate: bool
    states: tuple[str, ...] = ()  # of the first delivery's launches, when duplicate
    superseded: tuple[str, ...] = ()  # run keys of older pending launches this delivery replaced


class Launch(BaseModel, frozen=True):
    """One run a delivery owes, as recorded."""

    id: int
    delivery: str
    run: CiRun
    state: str
    attempts: int
    next_attempt_at: float
    detail: str
    run_id: str | None
    received_at: float
    launched_at: float | None
    unsure_until: float | None


class DeliveryStore:
    """The SQLite record; every method is safe to call from any thread."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = directory
        self._lock_fd = _lock_directory(directory)
        try:
            self._db = sqlite3.connect(
                directory / DATABASE, isolation_level=None, check_same_thread=False, timeout=10
            )
            os.chmod(directory / DATABASE, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # WAL: FULL syncs each commit, NORMAL only checkpoints
            self._db.executescript(SCHEMA)
            self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.Error as error:
            os.close(self._lock_fd)
            raise ExternalSystemError(f"webhook: cannot open {directory / DATABASE}: {error}") from None
        self._mutex = threading.Lock()

    def close(self) -> None:
        with self._mutex:
            self._db.close()
        os.close(self._lock_fd)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._mutex:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def record(
        self, *, body_sha256: str, event: str, request_id: str, repository: str, runs: Sequence[CiRun], now: float
    ) -> Recorded:
        """Record a delivery and the runs it owes, unless its body was recorded before; durable on return.

        Older pending launches of the same job, service and branch for another commit are superseded.
        """
        with self._transaction() as db:
            first = db.execute("SELECT id FROM deliveries WHERE body_sha256 = ?", (body_sha256,)).fetchone()
            if first is not None:
                states = db.execute("SELECT state FROM launches WHERE delivery_id = ? ORDER BY id", first).fetchall()
                return Recorded(delivery=first[0], duplicate=True, states=tuple(state for (state,) in states))
            delivery = uuid.uuid4().hex
            db.execute(
                "INSERT INTO deliveries (id, body_sha256, received_at, event, request_id, repository) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (delivery, body_sha256, now, event, request_id, repository),
            )
            superseded: list[str] = []
            for run in runs:
                older = db.execute(
                    "SELECT id, run_key FROM launches WHERE state = ? AND job_name = ? AND service = ? AND branch = ? "
                    "AND sha <> ?",
                    (PENDING, run.job_name, run.service, run.branch, run.sha),
                ).fetchall()
                db.executemany(
                    "UPDATE launches SET state = ?, detail = ? WHERE id = ? AND state = ?",
                    [(SUPERSEDED, f"superseded by {run.sha[:12]} (delivery {delivery})", id_, PENDING)
                     for id_, _ in older],
                )
                superseded += [run_key for _, run_key in older]
                db.execute(
                    "INSERT INTO launches (delivery_id, run_key, job_name, service, branch, sha, partition_key, "
                    "state, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (delivery, run.run_key, run.job_name, run.service, run.branch, run.sha, run.partition_key,
                     PENDING, now),
                )
            return Recorded(delivery=delivery, duplicate=False, superseded=tuple(superseded))

    def next_due(self, now: float, busy: set[str]) -> Launch | float | None:
        """The pending launch due first whose run key is not `busy`; else when the next one is due (or None)."""
        keys = sorted(busy)
        with self._mutex:
            row = self._db.execute(
                f"{_SELECT} WHERE l.state = ? AND l.run_key NOT IN ({', '.join('?' * len(keys))}) "
                "ORDER BY l.next_attempt_at, l.id LIMIT 1",
                (PENDING, *keys),
            ).fetchone()
        if row is None:
            return None
        launch = _launch(row)
        return launch if launch.next_attempt_at <= now else launch.next_attempt_at

    def sending(self, launch_id: int, *, unsure_until: float) -> None:
        """A launchRun is about to be sent: if its answer is lost (a timeout, a crash), attempts until
        `unsure_until` only look the run up, since the webserver may still be creating it."""
        with self._transaction() as db:
            db.execute("UPDATE launches SET unsure_until = ? WHERE id = ?", (unsure_until, launch_id))

    def finished(self, launch_id: int, *, run_id: str, launched: bool, now: float) -> None:
        """The launch has its run: launched now, or one existed. Recorded even when it was superseded meanwhile."""
        with self._transaction() as db:
            db.execute(
                "UPDATE launches SET state = ?, run_id = ?, launched_at = ?, attempts = attempts + 1, detail = '', "
                "unsure_until = NULL WHERE id = ?",
                (LAUNCHED if launched else EXISTS, run_id, now, launch_id),
            )

    def failed(self, launch_id: int, *, error: str, retry_at: float, settled: bool) -> int:
        """Count a failed attempt and when to try again; returns the attempts so far.

        `settled`: the launchRun of this attempt certainly created nothing that a look-up would miss (the
        webserver answered it, or it never reached the webserver), so the next look-up is to be believed.
        """
        with self._transaction() as db:
            db.execute(
                "UPDATE launches SET attempts = attempts + 1, next_attempt_at = ?, detail = ?, "
                "unsure_until = CASE WHEN ? THEN NULL ELSE unsure_until END WHERE id = ? AND state = ?",
                (retry_at, error[:500], settled, launch_id, PENDING),
            )
            (attempts,) = db.execute("SELECT attempts FROM launches WHERE id = ?", (launch_id,)).fetchone()
            return int(attempts)

    def retry_now(self, now: float) -> int:
        """Make every pending launch due (at start: a restart tries again at once); returns how many."""
        with self._transaction() as db:
            return db.execute("UPDATE launches SET next_attempt_at = ? WHERE state = ?", (now, PENDING)).rowcount

    def launches(self, delivery: str | None = None) -> list[Launch]:
        """Every recorded launch (of one delivery), oldest first."""
        where, args = ("WHERE l.delivery_id = ?", (delivery,)) if delivery else ("", ())
        with self._mutex:
            rows = self._db.execute(f"{_SELECT} {where} ORDER BY l.id", args).fetchall()
        return [_launch(row) for row in rows]

    def pending(self) -> int:
        with self._mutex:
            (count,) = self._db.execute("SELECT COUNT(*) FROM launches WHERE state = ?", (PENDING,)).fetchone()
        return int(count)


_SELECT = (
    "SELECT l.id, l.delivery_id, l.job_name, l.service, l.branch, l.sha, l.partition_key, l.state, l.attempts, "
    "l.next_attempt_at, l.detail, l.run_id, d.received_at, l.launched_at, l.unsure_until FROM launches l "
    "JOIN deliveries d ON d.id = l.delivery_id"
)


def _launch(row: tuple) -> Launch:
    (id_, delivery, job, service, branch, sha, partition, state, attempts, due, detail, run_id, received, done,
     unsure) = row
    run = CiRun(job_name=job, service=service, branch=branch, sha=sha, partition_key=partition)
    return Launch(
        id=id_, delivery=delivery, run=run, state=state, attempts=attempts, next_attempt_at=due, detail=detail,
        run_id=run_id, received_at=received, launched_at=done, unsure_until=unsure,
    )


def _lock_directory(directory: Path) -> int:
    """Hold `webhook.lock` in `directory` for this process; refuse when another process holds it."""
    fd = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise ExternalSystemError(
            f"webhook: another webhook process uses {directory} (it holds {LOCK_FILE}); run one webhook per "
            "webhook.state_dir"
        ) from None
    return fd
