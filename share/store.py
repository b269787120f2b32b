"""Share-link storage: the run's files (gzip) + view settings under an unguessable id.

The files themselves are stored (not a rendered result) so that opening a link re-parses and
re-diagnoses them with the running code: the shared page is the same page. `open_store()` picks the
back-end: the embedded SQLite file in the folder named by LOSS_DOCTOR_DATA (default ./data, created on
first use; WAL and a busy timeout let several sessions of one server read and write at once), or, when
LOSS_DOCTOR_DATABASE_URL is set, PostgreSQL (share/postgres.py), which several app replicas share.

Logs can hold tokens and paths, so a share does not live forever: it expires after the operator's
number of days (present.limits) and its owner gets a delete token, shown once and stored only as a
hash. An expired or deleted share keeps a tombstone row (id, dates, no files, no settings) so that
its link says what happened. Every database error leaves as a ShareError whose kind names a catalogue
message (`ui.error.share_<kind>`). Files are compressed, written and read one at a time, so a share's
compressed bytes are never all in memory beside its files; PostgreSQL stores each file as
pieces of its gzip stream, so there not even one file's compressed bytes are held whole.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import json
import os
import re
import secrets
import sqlite3
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlencode, urlsplit, urlunsplit

from present.limits import max_share_bytes, share_seconds

DATA_ENV = "LOSS_DOCTOR_DATA"
DATABASE_URL_ENV = "LOSS_DOCTOR_DATABASE_URL"
DEFAULT_DATA_DIR = "data"
DB_NAME = "shares.sqlite3"
# secrets.token_urlsafe(24): 192 random bits, 32 URL-safe characters (ids and delete tokens alike).
ID_BYTES = 24
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{32}$")
BUSY_TIMEOUT_S = 10.0
CHUNK_BYTES = 1024**2  # input compressed at a time, and the least size of a stored piece but the last
GZIP_WBITS = zlib.MAX_WBITS | 16  # zlib's setting for a gzip header and trailer
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


class Head(NamedTuple):
    """A share's row: `gone` is None, 'expired' or 'deleted'; `settings` is JSON text."""

    created: float
    settings: str
    expires: float
    delete_hash: str | None
    gone: str | None


class StoredFile(NamedTuple):
    """One file as a back-end writes or reads it: `chunks` are the pieces of its gzip stream, in order,
    produced (on save) or fetched (on load) one at a time."""

    run: int
    position: int
    run_label: str
    name: str
    chunks: Iterable[bytes]


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


def gzip_chunks(data: bytes) -> Iterator[bytes]:
    """The gzip stream of `data` (level 6) in pieces of CHUNK_BYTES to twice that (zlib holds some
    input back), compressed as they are taken: a back-end that stores the pieces as they come never
    holds the whole compressed file. A file that compresses below CHUNK_BYTES is one piece."""
    packer = zlib.compressobj(6, zlib.DEFLATED, GZIP_WBITS)
    view = memoryview(data)
    pending: list[bytes] = []
    for start in range(0, len(view), CHUNK_BYTES):
        pending.append(packer.compress(view[start : start + CHUNK_BYTES]))
        if sum(map(len, pending)) >= CHUNK_BYTES:
            yield b"".join(pending)
            pending = []
    pending.append(packer.flush())
    yield b"".join(pending)


def gunzip_chunks(chunks: Iterable[bytes]) -> bytes:
    """The file behind a gzip stream given in pieces (one piece: a whole stream, as gzip.compress
    wrote before issue 12); only the output and one piece are in memory at a time."""
    unpacker = zlib.decompressobj(GZIP_WBITS)
    out = io.BytesIO()
    for chunk in chunks:
        view = memoryview(chunk)  # a whole file's stream (SQLite) is inflated a slice at a time too
        for start in range(0, len(view), CHUNK_BYTES):
            out.write(unpacker.decompress(view[start : start + CHUNK_BYTES]))
    out.write(unpacker.flush())
    return out.getvalue()  # BytesIO hands its buffer over without a copy


def live(head: Head | None) -> Head:
    """The head of a share that can be opened; ShareNotFound (unknown, expired, deleted) otherwise."""
    if head is None:
        raise ShareNotFound("unknown")
    if head.gone:
        raise ShareNotFound(head.gone)
    if head.expires <= time.time():
        raise ShareNotFound("expired")
    return head


def require_valid(share_id: str) -> None:
    """Refuse a malformed id before it reaches a query."""
    if not valid_id(share_id):
        raise ShareNotFound("malformed")


class ShareStore(ABC):
    """What the page uses, and the rules both back-ends share: the byte quota, random ids and delete
    tokens, gzip per file, expiry, tombstones. A back-end supplies storage primitives, each one
    transaction, and names the message kind of its database errors.

    `lifetime` (seconds) and `max_bytes` (uncompressed bytes per share) default to the operator's
    settings (present.limits)."""

    def __init__(self, lifetime: float | None = None, max_bytes: int | None = None):
        self.lifetime = share_seconds() if lifetime is None else lifetime
        self.max_bytes = max_share_bytes() if max_bytes is None else max_bytes

    def save(self, runs: list[SharedRun], settings: dict[str, Any]) -> Saved:
        """Store the runs; raises ShareError('too_large', size=, limit=) above the byte quota."""
        size = sum(len(data) for run in runs for _, data in run.files)
        if size > self.max_bytes:
            raise ShareError("too_large", size=size, limit=self.max_bytes)
        self.purge_expired()
        share_id, token = secrets.token_urlsafe(ID_BYTES), secrets.token_urlsafe(ID_BYTES)
        now = time.time()
        head = Head(now, json.dumps(settings), now + self.lifetime, token_hash(token), None)
        # Generators: each file is compressed piece by piece as the back-end writes it.
        files = (
            StoredFile(r, p, run.label, name, gzip_chunks(data))
            for r, run in enumerate(runs)
            for p, (name, data) in enumerate(run.files)
        )
        with self._translated():
            self._insert(share_id, head, files)
        return Saved(share_id, token, head.expires)

    def check(self, share_id: str) -> None:
        """Raise ShareNotFound unless the share is live (cheap: no files are read)."""
        require_valid(share_id)
        try:
            with self._translated():
                live(self._head(share_id))
        except ShareNotFound as err:
            if err.kind == "expired":
                self.purge_expired()
            raise

    def load(self, share_id: str) -> Share:
        self.check(share_id)
        runs: dict[int, SharedRun] = {}
        with self._translated(), self._reading(share_id) as (head, files):
            created, settings, expires, _, _ = live(head)
            for stored in files:
                run = runs.setdefault(stored.run, SharedRun(stored.run_label, []))
                run.files.append((stored.name, gunzip_chunks(stored.chunks)))
        return Share(share_id, [runs[k] for k in sorted(runs)], json.loads(settings), created, expires)

    def delete(self, share_id: str, token: str) -> None:
        """Remove a share's files and settings for good; ShareError('bad_token') if the token is wrong."""
        require_valid(share_id)

        def authorise(head: Head | None) -> None:
            stored = live(head).delete_hash
            if not stored or not hmac.compare_digest(stored, token_hash(token)):
                raise ShareError("bad_token")

        with self._translated():
            self._bury_one(share_id, authorise, "deleted")

    def purge_expired(self) -> int:
        """Remove the files and settings of every expired share; returns how many were purged."""
        with self._translated():
            return self._bury_expired(time.time())

    @abstractmethod
    def close(self) -> None:
        """Release the back-end's connections."""

    @contextmanager
    def _translated(self) -> Iterator[None]:
        try:
            yield
        except ShareError:
            raise
        except Exception as err:
            kind = self._error_kind(err)
            if kind is None:
                raise
            raise ShareError(kind) from err

    @abstractmethod
    def _error_kind(self, err: Exception) -> str | None:
        """The message kind of a database error, or None for an exception that is not one."""

    @abstractmethod
    def _insert(self, share_id: str, head: Head, files: Iterable[StoredFile]) -> None:
        """Write a share and its files in one transaction, consuming `files` and their chunks in order."""

    @abstractmethod
    def _head(self, share_id: str) -> Head | None: ...

    @abstractmethod
    def _reading(self, share_id: str) -> AbstractContextManager[tuple[Head | None, Iterator[StoredFile]]]:
        """The head and the files (in run, position order, fetched as they are consumed) as one
        consistent read."""

    @abstractmethod
    def _bury_one(self, share_id: str, authorise: Callable[[Head | None], None], reason: str) -> None:
        """Turn the share into a tombstone if `authorise(head)` returns, atomically with reading head."""

    @abstractmethod
    def _bury_expired(self, now: float) -> int:
        """Turn every share expired at `now` into a tombstone; returns how many."""


def open_store() -> ShareStore:
    """The store the page uses: PostgreSQL when LOSS_DOCTOR_DATABASE_URL is set, else SQLite in
    LOSS_DOCTOR_DATA. psycopg is imported only then, so the SQLite default needs nothing else."""
    url = os.environ.get(DATABASE_URL_ENV, "").strip()
    if url:
        from share.postgres import PostgresStore

        return PostgresStore(url)
    return SQLiteStore()


class SQLiteStore(ShareStore):
    """The embedded default; one connection per call, so it is safe across Streamlit threads."""

    def __init__(
        self,
        path: Path | None = None,
        lifetime: float | None = None,
        max_bytes: int | None = None,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ):
        super().__init__(lifetime, max_bytes)
        self.path = path or data_dir() / DB_NAME
        self.busy_timeout = busy_timeout
        with self._translated():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._use_wal()
            # The write lock first: stores starting at once (replicas, processes) migrate one by one.
            with self._writing() as db:
                for statement in filter(str.strip, _SCHEMA.split(";")):
                    db.execute(statement)
                have = {row[1] for row in db.execute("PRAGMA table_info(shares)")}
                for name, kind in _ADDED_COLUMNS:
                    if name not in have:
                        db.execute(f"ALTER TABLE shares ADD COLUMN {name} {kind}")
                db.execute("CREATE INDEX IF NOT EXISTS shares_expires ON shares (expires) WHERE gone IS NULL")
                # Shares saved before expiry existed live one lifetime from their creation.
                db.execute("UPDATE shares SET expires = created + ? WHERE expires IS NULL", (self.lifetime,))
        self.purge_expired()

    def _use_wal(self) -> None:
        """Switch the file to write-ahead logging. The switch takes the database lock without waiting
        on SQLite's busy handler, so stores starting at once retry it until `busy_timeout`."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                with self._connection() as db:
                    db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def close(self) -> None:
        """Nothing to release: each call opens and closes its own connection."""

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.busy_timeout)
        db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
        return db

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        db = self._connect()
        try:
            yield db
        finally:
            db.close()

    def _error_kind(self, err: Exception) -> str | None:
        if isinstance(err, sqlite3.Error):
            return error_kind(err)
        # The data folder cannot be created or opened.
        return "unavailable" if isinstance(err, OSError) else None

    def _insert(self, share_id: str, head: Head, files: Iterable[StoredFile]) -> None:
        """A file is one BLOB here: its pieces are joined as it is written."""
        with self._connection() as db, db:
            db.execute(
                "INSERT INTO shares (id, created, settings, expires, delete_hash) VALUES (?, ?, ?, ?, ?)",
                (share_id, *head[:4]),
            )
            rows = ((share_id, f.run, f.position, f.run_label, f.name, b"".join(f.chunks)) for f in files)
            db.executemany("INSERT INTO share_files VALUES (?, ?, ?, ?, ?, ?)", rows)

    @staticmethod
    def _select_head(db: sqlite3.Connection, share_id: str) -> Head | None:
        row = db.execute(
            "SELECT created, settings, expires, delete_hash, gone FROM shares WHERE id = ?", (share_id,)
        ).fetchone()
        return None if row is None else Head(*row)

    def _head(self, share_id: str) -> Head | None:
        with self._connection() as db:
            return self._select_head(db, share_id)

    @contextmanager
    def _reading(self, share_id: str) -> Iterator[tuple[Head | None, Iterator[StoredFile]]]:
        with self._connection() as db:
            db.execute("BEGIN")  # one snapshot for the head and the files
            head = self._select_head(db, share_id)
            files = db.execute(
                "SELECT rowid, run, position, run_label, name FROM share_files"
                " WHERE share_id = ? ORDER BY run, position",
                (share_id,),
            ).fetchall()
            yield head, (StoredFile(*row[1:], self._pieces(db, row[0])) for row in files)

    @staticmethod
    def _pieces(db: sqlite3.Connection, rowid: int) -> Iterator[bytes]:
        """A stored file's gzip stream read CHUNK_BYTES at a time (an incremental BLOB read)."""
        with db.blobopen("share_files", "data", rowid, readonly=True) as blob:
            while piece := blob.read(CHUNK_BYTES):
                yield piece

    @contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A transaction that holds the write lock from its first read: what it reads stays true
        until it commits (two purges at once would both count, and rewrite, the same shares)."""
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            with db:
                yield db

    def _bury_one(self, share_id: str, authorise: Callable[[Head | None], None], reason: str) -> None:
        with self._writing() as db:
            authorise(self._select_head(db, share_id))
            self._bury(db, "id = ?", (share_id,), reason)

    def _bury_expired(self, now: float) -> int:
        with self._writing() as db:
            return self._bury(db, "gone IS NULL AND expires <= ?", (now,), "expired")

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
