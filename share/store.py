"""Share-link storage: the run's files (gzip) + view settings under an unguessable id, in SQLite.

The files themselves are stored (not a rendered result) so that opening a link re-parses and
re-diagnoses them with the running code: the shared page is the same page. The database lives in
the folder named by LOSS_DOCTOR_DATA (default ./data), created on first use; WAL and a busy timeout
let several sessions of one server read and write at once.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DATA_ENV = "LOSS_DOCTOR_DATA"
DEFAULT_DATA_DIR = "data"
DB_NAME = "shares.sqlite3"
# secrets.token_urlsafe(24): 192 random bits, 32 URL-safe characters.
ID_BYTES = 24
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shares (
    id TEXT PRIMARY KEY,
    created REAL NOT NULL,
    settings TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS share_files (
    share_id TEXT NOT NULL REFERENCES shares(id),
    run INTEGER NOT NULL,
    position INTEGER NOT NULL,
    run_label TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (share_id, run, position)
);
"""


class ShareNotFound(LookupError):
    """No share with this id (or the id is malformed); the message is fit for the page."""


@dataclass
class SharedRun:
    label: str
    files: list[tuple[str, bytes]]


@dataclass
class Share:
    id: str
    runs: list[SharedRun]
    settings: dict[str, Any] = field(default_factory=dict)
    created: float = 0.0


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR)


def valid_id(share_id: str) -> bool:
    return isinstance(share_id, str) and bool(ID_PATTERN.fullmatch(share_id))


class ShareStore:
    """SQLite-backed store; one connection per call, so it is safe across Streamlit threads."""

    def __init__(self, path: Path | None = None):
        self.path = path or data_dir() / DB_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("PRAGMA busy_timeout = 10000")
        return db

    def save(self, runs: list[SharedRun], settings: dict[str, Any]) -> str:
        share_id = secrets.token_urlsafe(ID_BYTES)
        rows = [
            (share_id, r, p, run.label, name, gzip.compress(data, compresslevel=6))
            for r, run in enumerate(runs)
            for p, (name, data) in enumerate(run.files)
        ]
        db = self._connect()
        try:
            with db:
                db.execute(
                    "INSERT INTO shares (id, created, settings) VALUES (?, ?, ?)",
                    (share_id, time.time(), json.dumps(settings)),
                )
                db.executemany("INSERT INTO share_files VALUES (?, ?, ?, ?, ?, ?)", rows)
        finally:
            db.close()
        return share_id

    def load(self, share_id: str) -> Share:
        if not valid_id(share_id):
            raise ShareNotFound("malformed")
        db = self._connect()
        try:
            head = db.execute("SELECT created, settings FROM shares WHERE id = ?", (share_id,)).fetchone()
            if head is None:
                raise ShareNotFound("unknown")
            files = db.execute(
                "SELECT run, run_label, name, data FROM share_files"
                " WHERE share_id = ? ORDER BY run, position",
                (share_id,),
            ).fetchall()
        finally:
            db.close()
        runs: dict[int, SharedRun] = {}
        for run, label, name, blob in files:
            runs.setdefault(run, SharedRun(label, [])).files.append((name, gzip.decompress(blob)))
        return Share(share_id, [runs[k] for k in sorted(runs)], json.loads(head[1]), head[0])


def share_link(app_url: str, share_id: str) -> str:
    """The absolute link for a share: the app URL (query dropped, path kept) + ?d=<id>."""
    parts = urlsplit(app_url or "")
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", f"d={share_id}", ""))
