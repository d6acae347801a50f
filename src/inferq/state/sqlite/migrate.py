"""Bring a database up to the current schema by applying ``migrations/`` in order."""

from __future__ import annotations

import sqlite3
import time

from inferq import errors
from inferq.state.sqlite import sql


def migrate(connection: sqlite3.Connection) -> list[int]:
    """Apply the migrations this database lacks, in one transaction; the versions applied.

    ``BEGIN IMMEDIATE`` takes the write lock first, so processes opening the same new file at
    once migrate it one after the other, and the later ones find nothing to do.
    """
    connection.execute("BEGIN IMMEDIATE")
    try:
        applied = _apply_pending(connection)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    return applied


def _apply_pending(connection: sqlite3.Connection) -> list[int]:
    connection.execute(sql.query("create_schema_migrations"))
    done = {row[0] for row in connection.execute(sql.query("applied_migrations"))}
    known = sql.migrations()
    if unknown := done - {migration.version for migration in known}:
        raise errors.ConfigError(
            f"the database has migrations {sorted(unknown)} this inferq does not know: "
            "it was written by a newer version"
        )
    pending = [migration for migration in known if migration.version not in done]
    for migration in pending:
        _apply(connection, migration)
    return [migration.version for migration in pending]


def _apply(connection: sqlite3.Connection, migration: sql.Migration) -> None:
    for statement in sql.statements(migration.script):
        connection.execute(statement)
    record = {"version": migration.version, "name": migration.name, "applied_at": time.time()}
    connection.execute(sql.query("record_migration"), record)
