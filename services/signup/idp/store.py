"""The identity provider's own database (SQLite): users, and the external ids deleted before
(or while) their user was created, so a create that arrives late for a withdrawn sign-up is
refused instead of leaving an account behind."""
from __future__ import annotations

import sqlite3
import uuid
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    id          TEXT PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE TABLE IF NOT EXISTS withdrawn (
    external_id TEXT PRIMARY KEY,
    at          TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
"""


@dataclass(frozen=True)
class Created:
    status: int          # 201 created, 200 already created for this external_id, 409 e-mail taken, 410 withdrawn
    user_id: str | None = None


class Store:
    def __init__(self, path: Path | str) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")   # WAL: durable at checkpoints, consistent always
        self.db.executescript(SCHEMA)

    def create(self, external_id: str, email: str, name: str) -> Created:
        """Idempotent by external_id (the caller's retry gets the same user back)."""
        email = email.strip().lower()
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            if self.db.execute("SELECT 1 FROM withdrawn WHERE external_id = ?", (external_id,)).fetchone():
                return Created(410)
            row = self.db.execute("SELECT id, email FROM users WHERE external_id = ?", (external_id,)).fetchone()
            if row is not None:
                return Created(200, row[0]) if row[1] == email else Created(409)
            if self.db.execute("SELECT 1 FROM users WHERE email = ?", (email,)).fetchone():
                return Created(409)
            user_id = uuid.uuid4().hex
            self.db.execute("INSERT INTO users (id, external_id, email, name) VALUES (?, ?, ?, ?)",
                            (user_id, external_id, email, name))
            return Created(201, user_id)

    def get(self, user_id: str) -> dict | None:
        return self._one("id = ?", user_id)

    def find(self, *, external_id: str | None = None, email: str | None = None) -> dict | None:
        if external_id is not None:
            return self._one("external_id = ?", external_id)
        return self._one("email = ?", (email or "").strip().lower())

    def _one(self, where: str, value: str) -> dict | None:
        row = self.db.execute(f"SELECT id, external_id, email, name, created_at FROM users WHERE {where}",
                              (value,)).fetchone()
        return dict(zip(("id", "external_id", "email", "name", "created_at"), row, strict=True)) if row else None

    def delete(self, user_id: str) -> bool:
        with self.db:
            return self.db.execute("DELETE FROM users WHERE id = ?", (user_id,)).rowcount > 0

    def withdraw(self, external_id: str) -> bool:
        """Delete the user of this external id, and refuse any later create for it; True if one existed."""
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("INSERT OR IGNORE INTO withdrawn (external_id) VALUES (?)", (external_id,))
            return self.db.execute("DELETE FROM users WHERE external_id = ?", (external_id,)).rowcount > 0

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM users").fetchone()[0])
