"""The share store on PostgreSQL, for several app replicas behind one load balancer.

psycopg 3 with a connection pool (psycopg_pool): each call borrows a connection that the pool has
checked first, so after a server restart the next call reconnects by itself, and while the server is
down calls fail with ShareError('unavailable') after `timeout` seconds instead of hanging. The schema is
created on start under a transaction-level advisory lock, so replicas starting at once do not race.
A file is stored as the pieces of its gzip stream, one row each (`chunk` 0, 1, ...): they are written
with binary COPY as they are compressed and read through a server-side cursor one per fetch, so
neither way is a file's compressed whole in memory. File and run names are stored as UTF-8 bytes:
PostgreSQL text cannot hold the NUL character, which a file name may.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import groupby
from operator import itemgetter

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from share.store import BUSY_TIMEOUT_S, Head, ShareStore, StoredFile

POOL_MAX = 10  # connections per replica: more than the concurrent saves a replica's sessions make
POOL_TIMEOUT_S = 10.0
# psycopg_pool retries a failed connection with doubling delays until this many seconds, then gives up
# until the next call asks again: it bounds how long the pool may wait after the server is back.
RECONNECT_S = 15.0
# pg_advisory_xact_lock key for creating the schema ("LDSHARE" in ASCII).
SCHEMA_LOCK = 0x4C445348415245

_SCHEMA = """
CREATE TABLE shares (
    id text PRIMARY KEY,
    created double precision NOT NULL,
    settings text NOT NULL,
    expires double precision NOT NULL,
    delete_hash text,
    gone text
);
CREATE TABLE share_files (
    share_id text NOT NULL REFERENCES shares (id),
    run integer NOT NULL,
    position integer NOT NULL,
    chunk integer NOT NULL,
    run_label bytea NOT NULL,
    name bytea NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (share_id, run, position, chunk)
);
CREATE INDEX shares_expires ON shares (expires) WHERE gone IS NULL;
-- The files are gzip already: TOAST stores them out of line without compressing them again.
ALTER TABLE share_files ALTER COLUMN data SET STORAGE EXTERNAL;
"""
_HEAD = "SELECT created, settings, expires, delete_hash, gone FROM shares WHERE id = %s"
_COPY_FILES = (
    "COPY share_files (share_id, run, position, chunk, run_label, name, data) FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["text", "int4", "int4", "int4", "bytea", "bytea", "bytea"]
_BURY = (
    "WITH doomed AS ({select} FOR UPDATE {skip}),"
    " files AS (DELETE FROM share_files WHERE share_id IN (SELECT id FROM doomed))"
    " UPDATE shares SET gone = %(reason)s, settings = '{{}}', delete_hash = NULL"
    " WHERE id IN (SELECT id FROM doomed)"
)
# SQLSTATEs (PostgreSQL appendix A) -> the kind of message the page shows; classes by their first two.
_STATE_KINDS = {
    "53100": "full",  # disk_full
    "53200": "busy",  # out_of_memory
    "53300": "busy",  # too_many_connections
    "55P03": "busy",  # lock_not_available
    "57014": "busy",  # query_canceled (statement_timeout)
}
_CLASS_KINDS = {"40": "busy", "54": "too_big"}  # transaction rollback (deadlock...), program limit


def sqlstate_kind(err: psycopg.Error) -> str:
    """The message kind for a PostgreSQL error: full (disk), too_big, busy, or unavailable (the
    connection is lost, the server shuts down, anything else)."""
    state = err.sqlstate or ""
    return _STATE_KINDS.get(state) or _CLASS_KINDS.get(state[:2], "unavailable")


def _text(data: bytes) -> str:
    return data.decode("utf-8", "surrogatepass")


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


class PostgresStore(ShareStore):
    """The store several replicas share: the same rules as SQLite (share.store.ShareStore)."""

    def __init__(
        self,
        url: str,
        lifetime: float | None = None,
        max_bytes: int | None = None,
        timeout: float = POOL_TIMEOUT_S,
        pool_max: int = POOL_MAX,
        busy_timeout: float = BUSY_TIMEOUT_S,
    ):
        """`timeout`: seconds a call waits for a connection; `busy_timeout`: seconds a statement waits
        for a row or table lock (PostgreSQL's lock_timeout) before the call fails as busy."""
        super().__init__(lifetime, max_bytes)
        self.url = url
        self.busy_timeout = busy_timeout
        self.pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_max,
            open=False,
            check=ConnectionPool.check_connection,
            configure=self._configure,
            timeout=timeout,
            reconnect_timeout=RECONNECT_S,
            name="loss-doctor-shares",
        )
        try:
            with self._translated():
                self.pool.open(wait=False)
                with self.pool.connection() as conn:
                    # Replicas starting at once wait for one another; once the tables exist, no DDL
                    # runs (it would lock the tables the other replicas are using).
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
                    if conn.execute("SELECT to_regclass('share_files')").fetchone() == (None,):
                        conn.execute(_SCHEMA)
            self.purge_expired()
        except BaseException:
            self.pool.close()
            raise

    def close(self) -> None:
        self.pool.close()

    def _configure(self, conn: psycopg.Connection) -> None:
        """Each new connection: never wait for a lock forever (the pool wants it left idle)."""
        conn.execute("SELECT set_config('lock_timeout', %s, false)", (f"{int(self.busy_timeout * 1000)}ms",))
        conn.commit()

    def _error_kind(self, err: Exception) -> str | None:
        if isinstance(err, PoolTimeout):
            # Every connection in use: busy. Fewer: the pool could not connect, the server is down.
            stats = self.pool.get_stats()
            in_use = stats["pool_size"] - stats["pool_available"]
            return "busy" if in_use >= self.pool.max_size else "unavailable"
        return sqlstate_kind(err) if isinstance(err, psycopg.Error) else None

    def _insert(self, share_id: str, head: Head, files: Iterable[StoredFile]) -> None:
        with self.pool.connection() as conn, conn.cursor() as cur:
            cur.execute(
                "INSERT INTO shares (id, created, settings, expires, delete_hash)"
                " VALUES (%s, %s, %s, %s, %s)",
                (share_id, *head[:4]),
            )
            with cur.copy(_COPY_FILES) as copy:
                copy.set_types(_COPY_TYPES)
                for file in files:
                    label, name = _bytes(file.run_label), _bytes(file.name)
                    for chunk, data in enumerate(file.chunks):
                        copy.write_row((share_id, file.run, file.position, chunk, label, name, data))

    def _head(self, share_id: str) -> Head | None:
        with self.pool.connection() as conn:
            row = conn.execute(_HEAD, (share_id,)).fetchone()
        return None if row is None else Head(*row)

    @contextmanager
    def _reading(self, share_id: str) -> Iterator[tuple[Head | None, Iterator[StoredFile]]]:
        with self.pool.connection() as conn:
            # One snapshot for the head and the files; read-only, so it neither locks nor writes.
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            row = conn.execute(_HEAD, (share_id,)).fetchone()
            yield None if row is None else Head(*row), self._files(conn, share_id)

    @staticmethod
    def _files(conn: psycopg.Connection, share_id: str) -> Iterator[StoredFile]:
        """The caller reads each file's chunks before the next file (as ShareStore.load does)."""
        with conn.cursor(name="share_files") as cur:
            cur.itersize = 1  # one piece of one file in the client's memory at a time
            cur.execute(
                "SELECT run, position, run_label, name, data FROM share_files"
                " WHERE share_id = %s ORDER BY run, position, chunk",
                (share_id,),
            )
            for (run, position, label, name), rows in groupby(cur, key=itemgetter(0, 1, 2, 3)):
                yield StoredFile(run, position, _text(label), _text(name), (row[4] for row in rows))

    def _bury_one(self, share_id: str, authorise: Callable[[Head | None], None], reason: str) -> None:
        with self.pool.connection() as conn:
            row = conn.execute(_HEAD + " FOR UPDATE", (share_id,)).fetchone()
            authorise(None if row is None else Head(*row))
            conn.execute(
                _BURY.format(select="SELECT id FROM shares WHERE id = %(id)s", skip=""),
                {"id": share_id, "reason": reason},
            )

    def _bury_expired(self, now: float) -> int:
        """SKIP LOCKED: a share another replica is reading or burying is left for the next purge."""
        select = "SELECT id FROM shares WHERE gone IS NULL AND expires <= %(now)s"
        with self.pool.connection() as conn:
            cur = conn.execute(
                _BURY.format(select=select, skip="SKIP LOCKED"), {"now": now, "reason": "expired"}
            )
            return cur.rowcount
