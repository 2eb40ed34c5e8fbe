"""Refuse a pending migration that would break the version still serving, before anything is applied.

Migrations run before the rollout, so the release serving now meets the new schema first: every
change must be backward compatible (the *expand* half of expand/contract). Each statement of every
pending migration is parsed with **sqlglot** (MySQL dialect) and compared with the schema the
database has now, as `information_schema` reports it, updated statement by statement as the pending
migrations would change it (so dropping a column added by an earlier *pending* migration, which no
serving version knows, is fine). Refused, with the file, the statement and the reason:

* dropping, renaming, truncating or replacing a table or view that exists (``DROP TABLE``,
  ``RENAME TABLE``, ``ALTER TABLE … RENAME TO``, ``TRUNCATE``, ``CREATE OR REPLACE``), and ``DROP DATABASE``;
* dropping or renaming a column that exists (``DROP COLUMN``, ``RENAME COLUMN``, ``CHANGE old new``);
* narrowing a column's type (anything not provably wider: shorter strings, smaller integers, signed
  from unsigned, fewer digits or decimals, another type family);
* a ``NOT NULL`` without a default on an existing table: a new column, or an existing nullable one
  made ``NOT NULL`` (the serving version's inserts do not set it), or ``DROP DEFAULT`` on one;
* a statement sqlglot cannot parse, or an ``ALTER``/``DROP``/``RENAME``/``TRUNCATE`` it can only
  read as an opaque command: what cannot be checked is not called safe.

The *contract* step of an expand/contract change (dropping what no serving version uses any more)
is marked in the file itself with a line of its own::

    -- fintech-release: contract

and then is not checked: the author states that the version serving when it runs no longer needs
what it removes. The marker is part of the file, so it is covered by the file's checksum.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from fintech_release.errors import MigrationError

CONTRACT_MARKER = "-- fintech-release: contract"
_CONTRACT_LINE = re.compile(r"^[ \t]*--[ \t]*fintech-release:[ \t]*contract[ \t]*$", re.MULTILINE | re.IGNORECASE)
_UNCHECKABLE_COMMANDS = frozenset({"ALTER", "DROP", "RENAME", "TRUNCATE"})
_RENAME_PAIR = re.compile(r"`?(?:\w+`?\.`?)?(\w+)`?\s+TO\s+", re.IGNORECASE)
_STATEMENT_SHOWN = 160  # characters of a statement quoted in a message

_INTEGERS = ("TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT")
_TEXT_BYTES = {"TINYTEXT": 255, "TEXT": 65_535, "MEDIUMTEXT": 16_777_215, "LONGTEXT": 4_294_967_295}
_UTF8MB4_BYTES = 4  # the examples' character set: a VARCHAR(n) holds up to 4n bytes
_FLOATS = ("FLOAT", "DOUBLE")
_DECIMAL_DEFAULT = (10, 0)  # MySQL's DECIMAL without precision


@dataclass
class Column:
    """What the check needs to know of one existing column."""

    type: str  # information_schema COLUMN_TYPE, e.g. "varchar(140)"
    nullable: bool


@dataclass
class Schema:
    """Tables (lower-case name -> column name -> Column) of one database, as the pending migrations change it."""

    tables: dict[str, dict[str, Column]] = field(default_factory=dict)
    # Tables created by pending migrations: no serving version knows them, so anything goes.
    new: set[str] = field(default_factory=set)

    def served(self, table: str) -> bool:
        return table.lower() in self.tables and table.lower() not in self.new


def is_contract_step(text: str) -> bool:
    """True when the migration's text carries the contract marker on a line of its own."""
    return _CONTRACT_LINE.search(text) is not None


def check_pending(database: str, pending: list[tuple[str, str]], schema: Schema) -> None:
    """`MigrationError` for the first destructive statement in `pending` ((file name, text) in order).

    `schema` is the database as it is now; it is updated as each pending file would change it.
    """
    for name, text in pending:
        contract = is_contract_step(text)
        for statement in _statements(database, name, text, check=not contract):
            finding = None if contract else _finding(statement, schema)
            if finding is not None:
                raise MigrationError(
                    f"database {database!r}: {name} refused: `{_shown(statement)}` {finding}; the version serving now "
                    "runs against the new schema until its replicas are replaced. Make the change backward compatible "
                    f"(expand), or, once no serving version needs it, mark the file as the contract step with a line "
                    f"`{CONTRACT_MARKER}`"
                )
            _evolve(statement, schema)


def _statements(database: str, name: str, text: str, *, check: bool) -> list[exp.Expr]:
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # sqlglot warns on stderr for every statement it reads as a Command
    try:
        return [statement for statement in sqlglot.parse(text, read="mysql") if statement is not None]
    except ParseError as error:
        if not check:
            return []
        first = str(error).splitlines()[0]
        raise MigrationError(
            f"database {database!r}: {name} refused: it cannot be checked, the SQL parser does not understand it "
            f"({first}); what cannot be checked is not applied unless marked `{CONTRACT_MARKER}`"
        ) from None
    finally:
        logger.setLevel(level)


def _finding(statement: exp.Expr, schema: Schema) -> str | None:
    """Why `statement` would break the serving version, or None."""
    if isinstance(statement, exp.Drop):
        kind = (statement.args.get("kind") or "").upper()
        if kind in ("DATABASE", "SCHEMA"):
            return "drops a whole database"
        if kind in ("TABLE", "VIEW"):
            served = [t.name for t in statement.args.get("tables") or [] if schema.served(t.name)]
            return f"drops {kind.lower()} {', '.join(served)}, which the serving version may use" if served else None
        return None
    if isinstance(statement, exp.TruncateTable):
        served = [t.name for t in statement.expressions if schema.served(t.name)]
        return f"empties table {', '.join(served)}" if served else None
    if isinstance(statement, exp.Create):
        table = statement.find(exp.Table)
        if statement.args.get("replace") and table is not None and schema.served(table.name):
            return f"replaces {table.name}, which the serving version uses"
        return None
    if isinstance(statement, exp.Alter):
        return _alter_finding(statement, schema)
    if isinstance(statement, exp.Command):
        keyword = str(statement.this).upper()
        if keyword == "RENAME":
            served = [t for t in _renamed_tables(statement) if schema.served(t)]
            return f"renames table {', '.join(served)}, which the serving version uses" if served else None
        if keyword in _UNCHECKABLE_COMMANDS:
            return "cannot be checked: the SQL parser reads it only as an opaque command"
    return None


def _alter_finding(statement: exp.Alter, schema: Schema) -> str | None:
    table = statement.this.name
    if (statement.args.get("kind") or "").upper() != "TABLE" or not schema.served(table):
        return None
    columns = schema.tables[table.lower()]
    for action in statement.args.get("actions") or []:
        if isinstance(action, exp.AlterRename):
            return f"renames table {table}, which the serving version uses"
        if isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
            dropped = [c.name for c in action.args.get("tables") or [] if c.name.lower() in columns]
            if dropped:
                return f"drops column {table}.{', '.join(dropped)}, which the serving version may read or write"
        if isinstance(action, exp.RenameColumn) and action.this.name.lower() in columns:
            return f"renames column {table}.{action.this.name}, which the serving version uses by its name"
        if isinstance(action, exp.ModifyColumn):
            finding = _modify_finding(table, action, columns)
            if finding:
                return finding
        if isinstance(action, exp.ColumnDef) and _not_null_without_default(action):
            return (
                f"adds column {table}.{action.name} NOT NULL without a default: the serving version's inserts "
                "do not set it and would fail"
            )
        if isinstance(action, exp.AlterColumn) and action.args.get("drop"):
            existing = columns.get(action.this.name.lower())
            if existing is not None and not existing.nullable:
                return f"drops the default of NOT NULL column {table}.{action.this.name}, which inserts may rely on"
    return None


def _modify_finding(table: str, action: exp.ModifyColumn, columns: dict[str, Column]) -> str | None:
    definition: exp.ColumnDef = action.this
    old_name = action.args.get("rename_from")
    name = old_name.name if old_name is not None else definition.name
    existing = columns.get(name.lower())
    if existing is None:
        return None
    if name.lower() != definition.name.lower():
        return f"renames column {table}.{name} to {definition.name}, which the serving version uses by its name"
    new_type = definition.args.get("kind")
    if new_type is not None and not _widens(existing.type, new_type):
        return f"narrows column {table}.{name} from {existing.type.upper()} to {new_type.sql('mysql')}"
    if existing.nullable and _not_null_without_default(definition):
        return f"makes column {table}.{name} NOT NULL without a default, while the serving version may write NULL"
    return None


def _not_null_without_default(definition: exp.ColumnDef) -> bool:
    kinds = [c.args.get("kind") for c in definition.args.get("constraints") or []]
    not_null = any(isinstance(k, exp.NotNullColumnConstraint) and not k.args.get("allow_null") for k in kinds)
    exempt = (exp.DefaultColumnConstraint, exp.AutoIncrementColumnConstraint, exp.ComputedColumnConstraint)
    return not_null and not any(isinstance(k, exempt) for k in kinds)


def _widens(old_type: str, new: exp.DataType) -> bool:
    """True when every value of `old_type` fits `new` unchanged (the same type, or provably wider)."""
    try:
        old = exp.DataType.build(old_type, dialect="mysql")
    except ParseError:
        return False
    old_name, new_name = old.this.name, new.this.name
    if _strip_display_width(old).sql("mysql") == _strip_display_width(new).sql("mysql"):
        return True
    old_int, new_int = _integer(old_name), _integer(new_name)
    if old_int and new_int:
        (old_rank, old_unsigned), (new_rank, new_unsigned) = old_int, new_int
        if old_unsigned and not new_unsigned:
            return new_rank > old_rank
        return new_rank >= old_rank and old_unsigned == new_unsigned
    if old_name == "DECIMAL" and new_name == "DECIMAL":
        precision, scale = _decimal(old)
        new_precision, new_scale = _decimal(new)
        return new_scale >= scale and new_precision - new_scale >= precision - scale
    if old_name in ("CHAR", "VARCHAR") and new_name == "VARCHAR":
        return _length(new) >= _length(old)
    if old_name in ("CHAR", "VARCHAR") and new_name in _TEXT_BYTES:
        return _TEXT_BYTES[new_name] >= _length(old) * _UTF8MB4_BYTES
    if old_name in _TEXT_BYTES and new_name in _TEXT_BYTES:
        return _TEXT_BYTES[new_name] >= _TEXT_BYTES[old_name]
    if old_name in _FLOATS and new_name in _FLOATS:
        return _FLOATS.index(new_name) >= _FLOATS.index(old_name)
    return False


def _strip_display_width(data_type: exp.DataType) -> exp.DataType:
    """INT(11) and INT are the same type (the width is only for display)."""
    if _integer(data_type.this.name):
        return exp.DataType(this=data_type.this)
    return data_type


def _integer(name: str) -> tuple[int, bool] | None:
    """(rank, unsigned) of an integer type name (sqlglot writes unsigned ones as UBIGINT, …), else None."""
    unsigned = name.startswith("U") and name[1:] in _INTEGERS
    base = name[1:] if unsigned else name
    return (_INTEGERS.index(base), unsigned) if base in _INTEGERS else None


def _params(data_type: exp.DataType) -> list[int]:
    return [int(p.name) for p in data_type.expressions if p.name.isdigit()]


def _decimal(data_type: exp.DataType) -> tuple[int, int]:
    params = _params(data_type)
    if not params:
        return _DECIMAL_DEFAULT
    return params[0], params[1] if len(params) > 1 else 0


def _length(data_type: exp.DataType) -> int:
    params = _params(data_type)
    return params[0] if params else 1


def _renamed_tables(statement: exp.Command) -> list[str]:
    """The old names in a `RENAME TABLE a TO b, c TO d` that sqlglot kept as text."""
    text = str(statement.expression.name if isinstance(statement.expression, exp.Literal) else statement.expression)
    text = re.sub(r"^\s*TABLES?\s+", "", text, flags=re.IGNORECASE)
    return [match.group(1) for match in _RENAME_PAIR.finditer(text)]


def _evolve(statement: exp.Expr, schema: Schema) -> None:
    """Apply what `statement` does to the schema's tables and columns (as far as later checks need it)."""
    if isinstance(statement, exp.Create) and (statement.args.get("kind") or "").upper() == "TABLE":
        table = statement.find(exp.Table)
        if table is None:
            return
        columns = {
            definition.name.lower(): Column(
                type=(definition.args["kind"].sql("mysql") if definition.args.get("kind") else ""),
                nullable=not _not_null(definition),
            )
            for definition in statement.find_all(exp.ColumnDef)
        }
        if table.name.lower() not in schema.tables:
            schema.new.add(table.name.lower())
        schema.tables[table.name.lower()] = columns
    elif isinstance(statement, exp.Drop) and (statement.args.get("kind") or "").upper() in ("TABLE", "VIEW"):
        for table in statement.args.get("tables") or []:
            schema.tables.pop(table.name.lower(), None)
    elif isinstance(statement, exp.Alter) and statement.this.name.lower() in schema.tables:
        columns = schema.tables[statement.this.name.lower()]
        for action in statement.args.get("actions") or []:
            if isinstance(action, exp.ColumnDef):
                kind = action.args.get("kind")
                columns[action.name.lower()] = Column(kind.sql("mysql") if kind else "", not _not_null(action))
            elif isinstance(action, exp.Drop) and (action.args.get("kind") or "").upper() == "COLUMN":
                for column in action.args.get("tables") or []:
                    columns.pop(column.name.lower(), None)


def _not_null(definition: exp.ColumnDef) -> bool:
    return any(
        isinstance(c.args.get("kind"), exp.NotNullColumnConstraint) and not c.args["kind"].args.get("allow_null")
        for c in definition.args.get("constraints") or []
    )


def _shown(statement: exp.Expr) -> str:
    text = " ".join(statement.sql("mysql").split())
    return text if len(text) <= _STATEMENT_SHOWN else text[: _STATEMENT_SHOWN - 1] + "…"


__all__ = ["CONTRACT_MARKER", "Column", "Schema", "check_pending", "is_contract_step"]
