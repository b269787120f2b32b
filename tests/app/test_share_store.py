"""Share store: round trip, unguessable ids, strict id validation, data folder from the environment."""

from __future__ import annotations

import sqlite3

import pytest

from share.store import DATA_ENV, SharedRun, ShareNotFound, ShareStore, valid_id


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
    share_id = store.save(runs, {"lang": "zh", "smoothing": 0.3, "log_scale": True})
    share = store.load(share_id)
    assert [(r.label, r.files) for r in share.runs] == [(r.label, r.files) for r in runs]
    assert share.settings == {"lang": "zh", "smoothing": 0.3, "log_scale": True}


def test_files_are_stored_compressed(store):
    data = b"I0101 12:00:00 solver.cpp:228] Iteration 100, loss = 2.3\n" * 5000
    share_id = store.save([SharedRun("r", [("a.log", data)])], {})
    with sqlite3.connect(store.path) as db:
        (blob,) = db.execute("SELECT data FROM share_files WHERE share_id = ?", (share_id,)).fetchone()
    assert len(blob) < len(data) / 20


def test_ids_are_long_random_and_distinct(store):
    ids = {store.save([SharedRun("r", [("a.log", b"x")])], {}) for _ in range(50)}
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
    from share.store import share_link

    assert share_link("http://127.0.0.1:8501", "X" * 32) == "http://127.0.0.1:8501/?d=" + "X" * 32
    assert share_link("https://h.example/ld/?d=old&x=1", "Y" * 32) == "https://h.example/ld/?d=" + "Y" * 32
