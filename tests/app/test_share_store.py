"""Share store: round trip, unguessable ids, strict id validation, data folder from the environment,
expiry, owner delete, byte cap, sqlite3 errors as message kinds."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time

import pytest

from present.limits import MAX_SHARE_MB_ENV, SHARE_DAYS_ENV
from share.store import (
    DATA_ENV,
    SharedRun,
    ShareError,
    ShareNotFound,
    ShareStore,
    error_kind,
    share_link,
    valid_id,
)

RUN = SharedRun("run a", [("train.log", b"I0101 Iteration 0, loss = 6.9\n" * 100)])


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "nested" / "data"))
    return ShareStore()


def test_data_folder_is_created_from_the_environment(store, tmp_path):
    assert store.path == tmp_path / "nested" / "data" / "shares.sqlite3"
    assert store.path.is_file()


def test_round_trip_keeps_runs_files_and_settings(store):
    runs = [
        SharedRun(
            "run a", [("train.log", b"I0101 Iteration 0, loss = 6.9\n" * 1000), ("solver.prototxt", b"")]
        ),
        SharedRun("run b", [("events.out.tfevents.1.host", bytes(range(256)))]),
    ]
    share_id = store.save(runs, {"lang": "zh", "smoothing": 0.3, "log_scale": True}).id
    share = store.load(share_id)
    assert [(r.label, r.files) for r in share.runs] == [(r.label, r.files) for r in runs]
    assert share.settings == {"lang": "zh", "smoothing": 0.3, "log_scale": True}


def test_files_are_stored_compressed(store):
    data = b"I0101 12:00:00 solver.cpp:228] Iteration 100, loss = 2.3\n" * 5000
    share_id = store.save([SharedRun("r", [("a.log", data)])], {}).id
    with sqlite3.connect(store.path) as db:
        (blob,) = db.execute("SELECT data FROM share_files WHERE share_id = ?", (share_id,)).fetchone()
    assert len(blob) < len(data) / 20


def test_ids_are_long_random_and_distinct(store):
    ids = {store.save([SharedRun("r", [("a.log", b"x")])], {}).id for _ in range(50)}
    assert len(ids) == 50
    assert all(valid_id(i) and len(i) * 6 >= 128 for i in ids)


def test_journal_is_wal(store):
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


@pytest.mark.parametrize(
    "bad", ["", "abc", "../../etc/passwd", "A" * 31, "A" * 33, "A" * 31 + "!", "' OR 1=1 --" + "A" * 21]
)
def test_malformed_ids_are_rejected(store, bad):
    with pytest.raises(ShareNotFound, match="malformed"):
        store.load(bad)


def test_unknown_id_is_reported_as_unknown(store):
    with pytest.raises(ShareNotFound, match="unknown"):
        store.load("A" * 32)


def test_share_link_keeps_the_app_path_and_replaces_the_query():
    assert share_link("http://127.0.0.1:8501", "X" * 32) == "http://127.0.0.1:8501/?d=" + "X" * 32
    assert share_link("https://h.example/ld/?d=old&x=1", "Y" * 32) == "https://h.example/ld/?d=" + "Y" * 32
    assert (
        share_link("http://h/", "X" * 32, "t-_" * 10) == "http://h/?d=" + "X" * 32 + "&delete=" + "t-_" * 10
    )


def count_files(store: ShareStore, share_id: str) -> int:
    with sqlite3.connect(store.path) as db:
        return db.execute("SELECT COUNT(*) FROM share_files WHERE share_id = ?", (share_id,)).fetchone()[0]


def test_owner_deletes_with_the_token_and_the_link_then_says_deleted(store):
    saved = store.save([RUN], {"lang": "zh"})
    assert valid_id(saved.delete_token) and saved.delete_token != saved.id
    store.delete(saved.id, saved.delete_token)
    with pytest.raises(ShareNotFound, match="deleted"):
        store.load(saved.id)
    assert count_files(store, saved.id) == 0
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT settings, delete_hash FROM shares").fetchone() == ("{}", None)
    with pytest.raises(ShareNotFound, match="deleted"):
        store.delete(saved.id, saved.delete_token)


@pytest.mark.parametrize("token", ["", "x", "A" * 32])
def test_a_wrong_token_deletes_nothing(store, token):
    saved = store.save([RUN], {})
    with pytest.raises(ShareError, match="bad_token"):
        store.delete(saved.id, token)
    assert store.load(saved.id).runs[0].files == RUN.files


def test_delete_token_is_stored_only_as_its_hash(store):
    saved = store.save([RUN], {})
    raw = b"".join(p.read_bytes() for p in store.path.parent.iterdir())
    assert saved.delete_token.encode() not in raw
    with sqlite3.connect(store.path) as db:
        (stored,) = db.execute("SELECT delete_hash FROM shares").fetchone()
    assert stored == hashlib.sha256(saved.delete_token.encode()).hexdigest()


def test_expired_shares_are_purged_and_say_expired(store, monkeypatch):
    old, live = store.save([RUN], {}), None
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + store.lifetime + 1)
    live = store.save([RUN], {})  # a save purges what has expired
    assert count_files(store, old.id) == 0 and count_files(store, live.id) == 1
    with pytest.raises(ShareNotFound, match="expired"):
        store.load(old.id)
    assert store.load(live.id).runs


def test_an_expired_share_is_refused_even_before_the_purge(store, monkeypatch):
    saved = store.save([RUN], {})
    now = time.time()
    monkeypatch.setattr(time, "time", lambda: now + store.lifetime + 1)
    with pytest.raises(ShareNotFound, match="expired"):
        store.check(saved.id)
    assert count_files(store, saved.id) == 0


def test_lifetime_defaults_to_90_days_and_follows_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv(SHARE_DAYS_ENV, raising=False)
    assert ShareStore(tmp_path / "a.sqlite3").lifetime == 90 * 86400
    monkeypatch.setenv(SHARE_DAYS_ENV, "2.5")
    store = ShareStore(tmp_path / "b.sqlite3")
    saved = store.save([RUN], {})
    assert saved.expires == pytest.approx(time.time() + 2.5 * 86400, abs=60)
    assert store.load(saved.id).expires == saved.expires
    monkeypatch.setenv(SHARE_DAYS_ENV, "ninety")
    with pytest.raises(ValueError, match=SHARE_DAYS_ENV):
        ShareStore(tmp_path / "c.sqlite3")


def test_shares_above_the_byte_cap_are_refused_with_their_sizes(tmp_path, monkeypatch):
    monkeypatch.setenv(MAX_SHARE_MB_ENV, "0.001")  # 1048 bytes
    store = ShareStore(tmp_path / "s.sqlite3")
    big = SharedRun("big", [("a.log", b"x" * 1000), ("b.log", b"y" * 100)])
    with pytest.raises(ShareError, match="too_large") as err:
        store.save([big], {})
    assert err.value.sizes == {"size": 1100, "limit": 1048}
    with sqlite3.connect(store.path) as db:
        assert db.execute("SELECT COUNT(*) FROM shares").fetchone()[0] == 0
    assert store.save([SharedRun("small", [("a.log", b"x" * 1000)])], {}).id


def test_a_locked_database_is_reported_as_busy(tmp_path):
    store = ShareStore(tmp_path / "s.sqlite3", busy_timeout=0.2)
    saved = store.save([RUN], {})
    holder = sqlite3.connect(store.path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(ShareError, match="busy"):
            store.save([RUN], {})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert store.load(saved.id).runs


class LimitedStore(ShareStore):
    """A store whose connections get a tiny database size or value length: disk full, blob too big."""

    pragma = ""
    length: int | None = None

    def _connect(self) -> sqlite3.Connection:
        db = super()._connect()
        if self.pragma:
            db.execute(self.pragma)
        if self.length:
            db.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, self.length)
        return db


def test_a_full_disk_is_reported_as_full(tmp_path):
    store = LimitedStore(tmp_path / "s.sqlite3")
    store.pragma = "PRAGMA max_page_count = 12"
    with pytest.raises(ShareError, match="full"):
        store.save([SharedRun("r", [("a.log", os.urandom(200_000))])], {})


def test_a_value_above_sqlites_length_limit_is_reported_as_too_big(tmp_path):
    store = LimitedStore(tmp_path / "s.sqlite3")
    store.length = 5000
    with pytest.raises(ShareError, match="too_big"):
        store.save([SharedRun("r", [("a.log", os.urandom(20_000))])], {})


def test_an_unusable_data_folder_is_reported_as_unavailable(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(ShareError, match="unavailable"):
        ShareStore(tmp_path / "file" / "shares.sqlite3")


@pytest.mark.parametrize(
    ("err", "kind"),
    [
        (sqlite3.OperationalError("database is locked"), "busy"),
        (sqlite3.OperationalError("database or disk is full"), "full"),
        (sqlite3.DataError("string or blob too big"), "too_big"),
        (sqlite3.DatabaseError("file is not a database"), "unavailable"),
    ],
)
def test_error_kinds_from_messages(err, kind):
    assert error_kind(err) == kind


def test_a_database_from_before_expiry_is_migrated(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE shares (id TEXT PRIMARY KEY, created REAL NOT NULL, settings TEXT NOT NULL);"
            "CREATE TABLE share_files (share_id TEXT NOT NULL, run INTEGER NOT NULL, position INTEGER NOT NULL,"
            " run_label TEXT NOT NULL, name TEXT NOT NULL, data BLOB NOT NULL, PRIMARY KEY (share_id, run, position));"
        )
        db.execute("INSERT INTO shares VALUES (?, ?, '{}')", ("B" * 32, time.time()))
        db.execute("INSERT INTO shares VALUES (?, ?, '{}')", ("C" * 32, time.time() - 400 * 86400))
    store = ShareStore(path, lifetime=90 * 86400)
    assert store.load("B" * 32).expires == pytest.approx(time.time() + 90 * 86400, abs=60)
    with pytest.raises(ShareNotFound, match="expired"):
        store.load("C" * 32)
