"""A reader connection that records its statements, for tests that check which SQL a read runs."""

from __future__ import annotations

import sqlite3
from typing import Any


class Recording:
    """A reader connection that keeps the statements run through it, with their parameters."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.statements: list[tuple[str, list[Any]]] = []

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        self.statements.append((sql, list(params)))
        return self.conn.execute(sql, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.conn, name)
