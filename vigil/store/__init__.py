"""The store: SQLModel tables, engine and migrations (SQLite by default, or PostgreSQL)."""

from vigil.store.db import make_engine, open_store, session_scope, upgrade

__all__ = ["make_engine", "open_store", "session_scope", "upgrade"]
