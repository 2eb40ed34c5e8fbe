"""Least privilege for one account on one database, on MariaDB, MySQL 5.7 and MySQL 8.0 (Cloud SQL).

`converge_account` leaves an account exactly `privileges` on one database and nothing else: no role,
no global privilege, no privilege on another database, no GRANT OPTION. It reads what the account
holds, grants what is missing first (so a replica using the account never loses access while it
runs), then revokes the rest, reads again and raises when anything is left. A second call finds
nothing to do. The statements are the same on every server except where they must differ:

* **Roles.** Cloud SQL for MySQL 8.0 grants every user it creates through its API the role
  `cloudsqlsuperuser` as a default role; MySQL 8.0 keeps role grants in `mysql.role_edges` and drops
  the default-role entry with the grant (`REVOKE role FROM user`). MariaDB keeps them in
  `mysql.roles_mapping`, names roles without a host and keeps the default role until
  `SET DEFAULT ROLE NONE FOR user`. MySQL 5.7 has no roles: Cloud SQL gives its users the
  superuser's privileges directly, on `*.*`, and those are global privileges here.
* **Database names.** In a database-level GRANT, `_` and `%` are wildcards, so `staging_payments`
  also covers `stagingXpayments` unless written `staging\\_payments`. MySQL 8.0 with
  `partial_revokes=ON` (Cloud SQL) compares names literally, backslash included: there the escaped
  name would name no database and the account could reach nothing. So the name is escaped exactly
  when the server treats it as a pattern.
* **Reading other accounts.** `information_schema.USER_PRIVILEGES` and `SCHEMA_PRIVILEGES` list
  every account's privileges to a caller with SELECT on the `mysql` schema (the admin), the same on
  all three servers; revoking names each privilege found rather than `ALL PRIVILEGES`, which would
  need privileges the Cloud SQL admin lacks (SUPER, FILE, those its partial revokes withhold).

Table-, column- and routine-level grants are left alone: nothing here creates them. No statement
carries a password; the changes returned name accounts and privileges only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

import pymysql

from fintech_release.errors import MigrationError

DATA_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
ALL_PRIVILEGES = ("ALL PRIVILEGES",)
ER_UNKNOWN_SYSTEM_VARIABLE = 1193
GRANT_HINT = "the admin user needs each privilege it grants or revokes WITH GRANT OPTION"
ROLE_HINT = "the admin user needs ROLE_ADMIN (MySQL 8.0) or the role WITH ADMIN OPTION"
ACCOUNT_PART = re.compile(r"^[A-Za-z0-9_.%~:-]{1,255}$")
Cursor = pymysql.cursors.Cursor


@dataclass(frozen=True)
class Account:
    """A MySQL account `'user'@'host'` (names checked: they are interpolated into GRANT and REVOKE)."""

    user: str
    host: str

    def __post_init__(self) -> None:
        for part in (self.user, self.host):
            if not ACCOUNT_PART.match(part):
                raise MigrationError(f"invalid MySQL account part {part!r}: use letters, digits and _ . % ~ : -")

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"


@dataclass(frozen=True)
class Server:
    """What decides the syntax: MariaDB or MySQL, its version, and whether database names are literal."""

    flavour: Literal["mariadb", "mysql"]
    major: int
    partial_revokes: bool

    @classmethod
    def inspect(cls, cursor: Cursor) -> Server:
        cursor.execute("SELECT VERSION()")
        version = str(_value(cursor))
        try:
            cursor.execute("SELECT @@GLOBAL.partial_revokes")
            partial_revokes = bool(int(_value(cursor)))
        except pymysql.err.OperationalError as error:
            if error.args[0] != ER_UNKNOWN_SYSTEM_VARIABLE:  # MariaDB and MySQL 5.7 do not have it
                raise
            partial_revokes = False
        flavour: Literal["mariadb", "mysql"] = "mariadb" if "mariadb" in version.lower() else "mysql"
        major = re.match(r"\d+", version)
        return cls(flavour, int(major[0]) if major else 0, partial_revokes)

    def schema_name(self, database: str) -> str:
        """`database` as a database-level GRANT must spell it to mean that database only."""
        return database if self.partial_revokes else database.replace("_", "\\_").replace("%", "\\%")


@dataclass
class Held:
    """What an account holds: roles, global privileges and database-level privileges (name -> grantable)."""

    roles: list[str] = field(default_factory=list)  # as REVOKE names them
    global_privileges: dict[str, bool] = field(default_factory=dict)
    schemas: dict[str, dict[str, bool]] = field(default_factory=dict)  # the schema name as stored
    default_role: str | None = None  # MariaDB only; MySQL 8.0 drops it with the role


def converge_account(
    cursor: Cursor, server: Server, account: Account, database: str, privileges: tuple[str, ...]
) -> tuple[str, ...]:
    """Leave `account` exactly `privileges` on `database`; return what changed (no secrets), empty when nothing."""
    target = server.schema_name(database)
    before = _held(cursor, server, account)
    wanted = ", ".join(privileges)
    _execute(cursor, account, f"GRANT {wanted} ON {_schema(target)}.* TO {account}")
    changes: list[str] = []
    after_grant = _held(cursor, server, account).schemas.get(target, {})
    if after_grant.keys() != before.schemas.get(target, {}).keys():
        changes.append(f"granted {wanted} on {database}")
    for schema, held in before.schemas.items():
        extra = [p for p in held if p != "USAGE" and (schema != target or not _wanted(p, privileges))]
        if extra:
            _execute(cursor, account, f"REVOKE {', '.join(extra)} ON {_schema(schema)}.* FROM {account}")
            changes.append(f"revoked {', '.join(extra)} on {schema}")
        if any(held.values()):
            _execute(cursor, account, f"REVOKE GRANT OPTION ON {_schema(schema)}.* FROM {account}")
            changes.append(f"revoked GRANT OPTION on {schema}")
    extra = [p for p in before.global_privileges if p != "USAGE"]
    if extra:
        _execute(cursor, account, f"REVOKE {', '.join(extra)} ON *.* FROM {account}")
        changes.append(f"revoked global {', '.join(extra)}")
    if any(before.global_privileges.values()):
        _execute(cursor, account, f"REVOKE GRANT OPTION ON *.* FROM {account}")
        changes.append("revoked global GRANT OPTION")
    for role in before.roles:
        _execute(cursor, account, f"REVOKE {role} FROM {account}", needs=ROLE_HINT)
        changes.append(f"revoked role {role}")
    if before.default_role:
        _execute(cursor, account, f"SET DEFAULT ROLE NONE FOR {account}", needs=ROLE_HINT)
    _check(cursor, server, account, database, target)
    return tuple(changes)


def _value(cursor: Cursor) -> Any:
    """The one value a query that always answers one row (`SELECT VERSION()`) answered."""
    row = cursor.fetchone()
    if row is None:
        raise MigrationError("the database server answered a one-row query with no row")
    return row[0]


def _execute(cursor: Cursor, account: Account, statement: str, *, needs: str = GRANT_HINT) -> None:
    """Run a GRANT, REVOKE or SET DEFAULT ROLE (no secret in it); a refusal names the statement and what it needs."""
    try:
        cursor.execute(statement)
    except pymysql.MySQLError as error:
        said = f"{error.args[1]} (error {error.args[0]})" if len(error.args) >= 2 else str(error)
        raise MigrationError(f"limiting account {account}: `{statement}` failed: {said}; {needs}") from None


def _wanted(privilege: str, privileges: tuple[str, ...]) -> bool:
    return privileges == ALL_PRIVILEGES or privilege in privileges


def _held(cursor: Cursor, server: Server, account: Account) -> Held:
    held = Held()
    grantee = str(account)
    cursor.execute(
        "SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s", (grantee,)
    )
    held.global_privileges = {row[0].upper(): row[1] == "YES" for row in cursor.fetchall()}
    if not held.global_privileges:
        # The admin sees only its own rows without SELECT on the mysql schema: then it can check nothing.
        raise MigrationError(
            f"account {account} does not exist, or the admin user may not read other accounts' privileges "
            "(it needs SELECT on the mysql schema)"
        )
    cursor.execute(
        "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.SCHEMA_PRIVILEGES "
        "WHERE GRANTEE = %s",
        (grantee,),
    )
    for schema, privilege, grantable in cursor.fetchall():
        held.schemas.setdefault(schema, {})[privilege.upper()] = grantable == "YES"
    if server.flavour == "mariadb":
        cursor.execute(
            "SELECT Role FROM mysql.roles_mapping WHERE User = %s AND Host = %s", (account.user, account.host)
        )
        held.roles = [_schema(row[0]) for row in cursor.fetchall()]
        cursor.execute(
            "SELECT JSON_VALUE(Priv, '$.default_role') FROM mysql.global_priv WHERE User = %s AND Host = %s",
            (account.user, account.host),
        )
        row = cursor.fetchone()
        held.default_role = row[0] if row and row[0] else None
    elif server.major >= 8:
        cursor.execute(
            "SELECT FROM_USER, FROM_HOST FROM mysql.role_edges WHERE TO_USER = %s AND TO_HOST = %s",
            (account.user, account.host),
        )
        held.roles = [f"{_schema(user)}@{_schema(host)}" for user, host in cursor.fetchall()]
    return held


def _check(cursor: Cursor, server: Server, account: Account, database: str, target: str) -> None:
    """`MigrationError` naming what `account` still holds beyond its own database."""
    held = _held(cursor, server, account)
    left = [f"role {role}" for role in held.roles]
    left += [f"global {p}" for p in held.global_privileges if p != "USAGE"]
    left += [f"privileges on {schema}" for schema in held.schemas if schema != target]
    if any(held.global_privileges.values()) or any(held.schemas.get(target, {}).values()):
        left.append("GRANT OPTION")
    if target not in held.schemas:
        left.append(f"no privileges on {database} at all")
    if left:
        raise MigrationError(
            f"account {account} could not be limited to database {database!r}: it still has {', '.join(left)}; "
            "check that the admin user may grant and revoke them (GRANT OPTION, and ROLE_ADMIN for roles)"
        )


def _schema(name: str) -> str:
    """A backquoted identifier (a database name as stored, or a role or host name)."""
    return "`" + name.replace("`", "``") + "`"


__all__ = ["ALL_PRIVILEGES", "DATA_PRIVILEGES", "Account", "Server", "converge_account"]
