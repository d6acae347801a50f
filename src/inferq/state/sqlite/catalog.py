"""``SQLiteCatalog``: models, endpoint configs and endpoints in the ``resources`` table."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from inferq import errors
from inferq.state.base import Kind, Resource
from inferq.state.sqlite.database import Database, changes, fetch_all, fetch_one


class SQLiteCatalog:
    def __init__(self, database: Database) -> None:
        self._database = database

    async def create(self, kind: Kind, name: str, doc: dict[str, Any], now: float) -> Resource:
        params = {**_key(kind, name), "name": name, "doc": json.dumps(doc), "now": now}
        row = await self._database.write(fetch_one("create_resource", params))
        if row is None:
            raise errors.Conflict(f"{kind} {name!r} exists already")
        return _resource(row)

    async def get(self, kind: Kind, name: str) -> Resource:
        row = await self._database.read(fetch_one("get_resource", _key(kind, name)))
        return _found(row, kind, name)

    async def list(self, kind: Kind) -> list[Resource]:
        rows = await self._database.read(fetch_all("list_resources", {"kind": kind.value}))
        return [_resource(row) for row in rows]

    async def update(self, kind: Kind, name: str, doc: dict[str, Any], now: float) -> Resource:
        params = {**_key(kind, name), "doc": json.dumps(doc), "now": now}
        row = await self._database.write(fetch_one("update_resource", params))
        return _found(row, kind, name)

    async def delete(self, kind: Kind, name: str) -> None:
        if not await self._database.write(changes("delete_resource", _key(kind, name))):
            raise _not_found(kind, name)


def _key(kind: Kind, name: str) -> dict[str, Any]:
    return {"kind": kind.value, "name_lower": name.lower()}


def _found(row: sqlite3.Row | None, kind: Kind, name: str) -> Resource:
    if row is None:
        raise _not_found(kind, name)
    return _resource(row)


def _not_found(kind: Kind, name: str) -> errors.NotFound:
    return errors.NotFound(f"{kind} {name!r} does not exist")


def _resource(row: sqlite3.Row) -> Resource:
    return Resource(
        kind=Kind(row["kind"]),
        name=row["name"],
        doc=json.loads(row["doc"]),
        created=row["created"],
        modified=row["modified"],
    )
