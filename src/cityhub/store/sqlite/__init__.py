"""The embedded default backend: SQLite in WAL mode with JSON1 and R*Tree."""

from cityhub.store.sqlite.backend import SqliteStore, damaged

__all__ = ["SqliteStore", "damaged"]
