"""Share-link storage: the run's files (gzip) + view settings under an unguessable id, in SQLite.

The files themselves are stored (not a rendered result) so that opening a link re-parses and
re-diagnoses them with the running code: the shared page is the same page. The database lives in
the folder named by LOSS_DOCTOR_DATA (default ./data), created on first use; WAL and a busy timeout
let several sessions of one server read and write at once.

Logs can hold tokens and paths, so a share does not live forever: it expires after the operator's
number of days (present.limits) and its owner gets a delete token, shown once and stored only as a
hash. An expired or deleted share keeps a tombstone row (id, dates, no files, no settings) so that
its link says what happened. Every sqlite3 error leaves as a ShareError whose kind names a catalogue
message (`ui.error.share_<kind>`).
"""

from __future__ import annotations

import gzip
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from present.limits import max_share_bytes, share_seconds

DATA_ENV = "LOSS_DOCTOR_DATA"
DEFAULT_DATA_DIR = "data"
DB_NAME = "shares.sqlite3"
# secrets.token_urlsafe(24): 192 random bits, 32 URL-safe characters (ids and delete tokens alike).
ID_BYTES = 24
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")
BUSY_TIMEOUT_S = 10.0
# sqlite3 primary result codes -> the kind of message the page shows.
_ERROR_KINDS = {5: "busy", 6: "busy", 13: "full", 18: "too_big"}

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
# Columns added after the first release: (name, declaration). `gone` is NULL, 'expired' or 'deleted'.
_ADDED_COLUMNS = (("expires", "REAL"), ("delete_hash", "TEXT"), ("gone", "TEXT"))


class ShareError(Exception):
    """A share could not be saved, opened or deleted; `kind` names the message, `sizes` its byte counts."""

    def __init__(self, kind: str, **sizes: int):
        super().__init__(kind)
        self.kind = kind
        self.sizes = sizes


class ShareNotFound(ShareError, LookupError):
    """No share behind this id: malformed, unknown, expired or deleted (the kind says which)."""


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
    expires: float = 0.0


@dataclass(frozen=True)
class Saved:
    """What the owner gets back from a save: the id, the delete token (never stored in clear), expiry."""

    id: str
    delete_token: str
    expires: float


def data_dir() -> Path:
    return Path(os.environ.get(DATA_ENV) or DEFAULT_DATA_DIR)


def valid_id(share_id: str) -> bool:
    return isinstance(share_id, str) and bool(ID_PATTERN.fullmatch(share_id))


def token_hash(token: str) -> str:
    """SHA-256 of a delete token: the token is 192 random bits, so no salt or stretching is needed."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def error_kind(err: sqlite3.Error) -> str:
    """The message kind for a sqlite3 error: busy (locked), full (disk), too_big, or unavailable."""
    code = getattr(err, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _ERROR_KINDS:
        return _ERROR_KINDS[code & 0xFF]
    text = str(err).lower()
    if isinstance(err, sqlite3.DataError) or "too big" in text:
        return "too_big"
    return "busy" if "locked" in text else "full" if "full" in text else "unavailable"


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except sqlite3.Error as err:
        raise ShareError(error_kind(err)) from err
    except OSError as err:  # the data folder cannot be created or opened
        raise ShareError("unavailable") from err


class ShareStore:
    """SQLite-backed store; one connection per call, so it is safe across Streamlit threads.

    `lifetime` (seconds) and `max_bytes` (uncompressed bytes per share) default to the operator's
    settings (present.limits)."""

    def __init__(
        self,
        path: Path | None = None,
        lifetime: float | None = None,
        max_bytes: int | None = None,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ):
        self.path = path or data_dir() / DB_NAME
        self.lifetime = share_seconds() if lifetime is None else lifetime
        self.max_bytes = max_share_bytes() if max_bytes is None else max_bytes
        self.busy_timeout = busy_timeout
        with _translated():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = self._connect()
            try:
                db.execute("PRAGMA journal_mode=WAL")
                with db:
                    db.executescript(_SCHEMA)
                    have = {row[1] for row in db.execute("PRAGMA table_info(shares)")}
                    for name, kind in _ADDED_COLUMNS:
                        if name not in have:
                            db.execute(f"ALTER TABLE shares ADD COLUMN {name} {kind}")
                    db.execute(
                        "CREATE INDEX IF NOT EXISTS shares_expires ON shares (expires) WHERE gone IS NULL"
                    )
                    # Shares saved before expiry existed live one lifetime from their creation.
                    db.execute(
                        "UPDATE shares SET expires = created + ? WHERE expires IS NULL", (self.lifetime,)
                    )
            finally:
                db.close()
        self.purge_expired()

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.busy_timeout)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return db

    def save(self, runs: list[SharedRun], settings: dict[str, Any]) -> Saved:
        """Store the runs; raises ShareError('too_large', size=, limit=) above the byte cap."""
        size = sum(len(data) for run in runs for _, data in run.files)
        if size > self.max_bytes:
            raise ShareError("too_large", size=size, limit=self.max_bytes)
        self.purge_expired()
        share_id, token = secrets.token_urlsafe(ID_BYTES), secrets.token_urlsafe(ID_BYTES)
        now = time.time()
        rows = [
            (share_id, r, p, run.label, name, gzip.compress(data, compresslevel=6))
            for r, run in enumerate(runs)
            for p, (name, data) in enumerate(run.files)
        ]
        with _translated():
            db = self._connect()
            try:
                with db:
                    db.execute(
                        "INSERT INTO shares (id, created, settings, expires, delete_hash)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (share_id, now, json.dumps(settings), now + self.lifetime, token_hash(token)),
                    )
                    db.executemany("INSERT INTO share_files VALUES (?, ?, ?, ?, ?, ?)", rows)
            finally:
                db.close()
        return Saved(share_id, token, now + self.lifetime)

    def _head(self, db: sqlite3.Connection, share_id: str) -> tuple[float, str, float, str | None]:
        """(created, settings, expires, delete_hash) of a live share; ShareNotFound otherwise."""
        if not valid_id(share_id):
            raise ShareNotFound("malformed")
        head = db.execute(
            "SELECT created, settings, expires, delete_hash, gone FROM shares WHERE id = ?", (share_id,)
        ).fetchone()
        if head is None:
            raise ShareNotFound("unknown")
        if head[4]:
            raise ShareNotFound(head[4])
        if head[2] <= time.time():
            raise ShareNotFound("expired")
        return head[:4]

    def check(self, share_id: str) -> None:
        """Raise ShareNotFound unless the share is live (cheap: no files are read)."""
        try:
            with _translated():
                db = self._connect()
                try:
                    self._head(db, share_id)
                finally:
                    db.close()
        except ShareNotFound as err:
            if err.kind == "expired":
                self.purge_expired()
            raise

    def load(self, share_id: str) -> Share:
        self.check(share_id)
        with _translated():
            db = self._connect()
            try:
                created, settings, expires, _ = self._head(db, share_id)
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
        return Share(share_id, [runs[k] for k in sorted(runs)], json.loads(settings), created, expires)

    def delete(self, share_id: str, token: str) -> None:
        """Remove a share's files and settings for good; ShareError('bad_token') if the token is wrong."""
        with _translated():
            db = self._connect()
            try:
                with db:
                    _, _, _, stored = self._head(db, share_id)
                    if not stored or not hmac.compare_digest(stored, token_hash(token)):
                        raise ShareError("bad_token")
                    self._bury(db, "id = ?", (share_id,), "deleted")
            finally:
                db.close()

    def purge_expired(self) -> int:
        """Remove the files and settings of every expired share; returns how many were purged."""
        with _translated():
            db = self._connect()
            try:
                with db:
                    return self._bury(db, "gone IS NULL AND expires <= ?", (time.time(),), "expired")
            finally:
                db.close()

    @staticmethod
    def _bury(db: sqlite3.Connection, where: str, params: tuple, reason: str) -> int:
        """Turn the matching shares into tombstones (inside the caller's transaction)."""
        ids = [row[0] for row in db.execute(f"SELECT id FROM shares WHERE {where}", params)]
        for share_id in ids:
            db.execute("DELETE FROM share_files WHERE share_id = ?", (share_id,))
            db.execute(
                "UPDATE shares SET gone = ?, settings = '{}', delete_hash = NULL WHERE id = ?",
                (reason, share_id),
            )
        return len(ids)


def share_link(app_url: str, share_id: str, delete_token: str | None = None) -> str:
    """The absolute link for a share: the app URL (query dropped, path kept) + ?d=<id>, and
    &delete=<token> for the owner's delete link."""
    parts = urlsplit(app_url or "")
    query = {"d": share_id} | ({"delete": delete_token} if delete_token else {})
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", urlencode(query), ""))
