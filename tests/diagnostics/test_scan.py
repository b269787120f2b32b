"""The fleet scan end to end: a tree mixing corpus runs of several formats, tracker stores and unreadable
files; every run gets its row (the same verdict as diagnosing it alone), the worst first; the three
report formats; a worker that dies; the dask executor on a LocalCluster started here."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from diag_helpers import REPO

from diagnostics import diagnose, scan
from diagnostics.split import CORPUS
from parsers import ParseError, load_paths

FIXTURES = REPO / "tests" / "fixtures" / "trackers"
EVIL = "<img src=x onerror=alert(1)>"


def corpus_runs_by_format() -> dict[str, Path]:
    """The first corpus run of each format (labels.csv order)."""
    runs: dict[str, Path] = {}
    with (CORPUS / "labels.csv").open() as fh:
        for row in csv.DictReader(fh):
            runs.setdefault(row["format"], CORPUS / row["path"])
    return runs


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    for fmt, run in corpus_runs_by_format().items():
        shutil.copytree(run, root / "corpus" / fmt / run.name)
    for name in ("mlruns", "tb_logdir", "wandb"):
        shutil.copytree(FIXTURES / name, root / "trackers" / name)
    shutil.copy(FIXTURES / "mlflow.db", root / "trackers")
    (root / "broken").mkdir()
    (root / "broken" / "weights.bin").write_bytes(bytes(range(256)) * 64)
    (root / EVIL).mkdir()
    shutil.copy(FIXTURES / "wandb" / "healthy-sgd" / "files" / "output.log", root / EVIL / "train.log")
    return root


@pytest.fixture(scope="module")
def rows(tree) -> list[scan.ScanRow]:
    return scan.scan(tree, jobs=2, progress=False)


def test_every_run_has_its_row_with_the_verdict_it_gets_alone(tree, rows):
    by_path = {row.path: row for row in rows}
    corpus = corpus_runs_by_format()
    assert len(corpus) >= 5
    for fmt, run in corpus.items():
        row = by_path[f"corpus/{fmt}/{run.name}"]
        alone = diagnose(load_paths([run]))
        assert (row.format, row.symptom, row.confidence) == (
            fmt,
            alone.symptom.symptom,
            round(alone.symptom.confidence, 3),
        )
        assert row.onset_step == alone.symptom.onset_step and not row.error
        assert row.rules.split() == list(dict.fromkeys(f.rule for f in alone.findings))
        assert row.cause == ("" if alone.healthy else alone.causes[0].id)
    trackers = [row for row in rows if row.path.startswith("trackers/")]
    assert (
        len(trackers) == 2 * 4 + 1
    )  # two runs in each of mlruns, mlflow.db, tb_logdir, wandb; + the db's third
    assert {row.format for row in trackers} == {"mlflow", "tfevents", "print_style"}
    assert sum(row.symptom == "nan" for row in trackers) == 4  # the diverging run, in each store
    assert len(rows) == len(corpus) + len(trackers) + 2


def test_unreadable_file_is_a_row_with_the_reason(rows):
    (broken,) = [row for row in rows if row.path == "broken"]
    assert broken.error.startswith("weights.bin: no training metrics recognised")
    assert not broken.symptom and broken.confidence is None


def test_rows_are_sorted_worst_first(rows):
    assert [row.severity for row in rows] == sorted(row.severity for row in rows)
    kinds = [1 if row.error else 2 if row.symptom == "healthy" else 0 for row in rows]
    assert kinds == sorted(kinds) and set(kinds) == {0, 1, 2}  # problems, unreadable, healthy
    assert rows[0].symptom == "nan"


def test_csv_and_jsonl_reports_hold_the_rows(tmp_path, tree, rows):
    scan.write_report(rows, str(tmp_path / "r.csv"), tree, "en")
    scan.write_report(rows, str(tmp_path / "r.jsonl"), tree, "en")
    with (tmp_path / "r.csv").open() as fh:
        table = list(csv.DictReader(fh))
    records = [json.loads(line) for line in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert list(table[0]) == scan.REPORT_FIELDS == list(records[0])
    assert [r["path"] for r in table] == [r["path"] for r in records] == [row.path for row in rows]
    assert records == [row.record() for row in rows]
    assert table[0]["confidence"] == str(rows[0].confidence)
    formula = scan.ScanRow(path='=HYPERLINK("http://x")', error="@SUM(1)")
    scan.write_report([formula], str(tmp_path / "f.csv"), tree, "en")
    (cells,) = csv.DictReader((tmp_path / "f.csv").open())
    assert (cells["path"], cells["error"]) == ('\'=HYPERLINK("http://x")', "'@SUM(1)")


def test_html_report_links_each_row_to_its_diagnosis_and_escapes_the_logs(tmp_path, tree, rows):
    scan.write_report(rows, str(tmp_path / "r.html"), tree, "zh")
    page = (tmp_path / "r.html").read_text()
    for index in range(len(rows)):
        assert f'<a href="#run-{index}">' in page and f'<section id="run-{index}">' in page
    assert EVIL not in page and "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "<script" not in page and "http" not in page  # self-contained: nothing to fetch
    assert "诊断结论" in page and "无法读取" in page


def crash_on_broken(root: str, group, **options):
    """A worker that dies (as a native crash would) on the `broken` folder."""
    if group.label == "broken":
        os._exit(7)
    return REAL_SCAN_GROUP(root, group, **options)


REAL_SCAN_GROUP = scan.scan_group


def test_folder_that_cannot_be_listed_is_a_row_with_the_reason(tmp_path, monkeypatch):
    shutil.copytree(
        FIXTURES / "tb_logdir", tmp_path, dirs_exist_ok=True
    )  # two runs, and a folder this user may not list
    (tmp_path / "locked").mkdir()
    listing = os.scandir

    def scandir(path):  # tests run as root, which chmod cannot stop: refuse as the kernel would
        if Path(path).name == "locked":
            raise PermissionError(13, "Permission denied", str(path))
        return listing(path)

    monkeypatch.setattr(os, "scandir", scandir)
    groups = scan.disk_groups(tmp_path)
    assert [g.label for g in groups] == ["diverging-lr10", "healthy-sgd", "locked"]
    (row,) = scan.scan_group(str(tmp_path), groups[-1])
    assert row.path == "locked" and row.error == "the folder cannot be read: locked: Permission denied"


def test_a_worker_that_dies_gives_its_run_a_row_and_the_scan_goes_on(tree, rows, monkeypatch):
    monkeypatch.setattr(scan, "scan_group", crash_on_broken)  # forked workers inherit it
    crashed = scan.scan(tree, jobs=2, progress=False)
    assert [row.path for row in crashed] == [row.path for row in rows]
    (broken,) = [row for row in crashed if row.path == "broken"]
    assert broken.error == "the worker process died while reading this run"
    assert [r.record() for r in crashed if r.path != "broken"] == [
        r.record() for r in rows if r.path != "broken"
    ]


def stuck_on_diverging(sources):
    """A reader that never returns on one run (as a parser stuck in a loop would)."""
    if any(source.name.startswith("diverging") for source in sources):
        time.sleep(3600)
    return REAL_LOAD_RUN(sources)


REAL_LOAD_RUN = scan.load_run


def test_a_run_past_the_timeout_gets_a_row_and_the_scan_goes_on(tmp_path, monkeypatch):
    shutil.copytree(FIXTURES / "tb_logdir", tmp_path, dirs_exist_ok=True)
    for event in tmp_path.glob("diverging-lr10/events*"):  # the run's file names say which one it is
        event.rename(event.with_name("diverging." + event.name))
    monkeypatch.setattr(scan, "load_run", stuck_on_diverging)  # forked workers inherit it
    started = time.monotonic()
    rows = scan.scan(tmp_path, jobs=2, progress=False, timeout=2)
    assert time.monotonic() - started < 60
    assert [(row.path, row.error) for row in rows] == [
        ("diverging-lr10", "the run took longer than 2 s (--timeout); skipped"),
        ("healthy-sgd", ""),
    ]


def test_dask_executor_on_a_local_cluster_gives_the_same_rows(tree, rows):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    ) as cluster:
        remote = scan.scan(tree, executor="dask", scheduler=cluster.scheduler_address, progress=False)
    assert [row.record() for row in remote] == [row.record() for row in rows]


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "diagnostics", *args]
    return subprocess.run(
        command, cwd=REPO, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_command_line_scan_writes_the_report_with_a_progress_bar(tmp_path):
    root = tmp_path / "runs"
    shutil.copytree(FIXTURES / "tb_logdir", root)
    result = _cli("scan", str(root), "--jobs", "1", "--out", str(tmp_path / "report.html"))
    assert result.returncode == 1, result.stderr  # the diverging run
    assert "scan: 100%" in result.stderr and "2/2" in result.stderr
    assert (tmp_path / "report.html").read_text().count("<section id=") == 2
    printed = _cli("scan", str(root), "--jobs", "1")
    assert printed.stdout.splitlines()[0] == ",".join(scan.REPORT_FIELDS)
    assert [line.split(",")[0] for line in printed.stdout.splitlines()[1:]] == [
        "diverging-lr10",
        "healthy-sgd",
    ]
    missing = _cli("scan", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "not a folder" in missing.stderr and "Traceback" not in missing.stderr
    assert _cli("scan", str(root), "--out", "r.txt").returncode == 2  # argparse: unknown report kind
    quick = {"DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    nobody = _cli("scan", str(root), "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9", env=quick)
    assert nobody.returncode == 2 and "Cannot reach the dask scheduler tcp://127.0.0.1:9" in nobody.stderr
    assert "Traceback" not in nobody.stderr


def test_command_line_diagnoses_each_run_of_a_store(tmp_path):
    result = _cli(str(FIXTURES / "mlflow.db"), "--json")
    reports = json.loads(result.stdout)
    assert [r["run"] for r in reports] == [
        f"mlflow.db#{n}" for n in ("healthy-sgd", "diverging-lr10", "flat-lr1e-7")
    ]
    assert [r["symptom"] for r in reports] == ["healthy", "nan", "flat"] and result.returncode == 1
    text = _cli(str(FIXTURES / "tb_logdir"))
    assert text.stdout.count("### Run ") == 2 and text.returncode == 1


def test_scan_of_the_real_logs_gives_each_log_its_verdict_alone():
    real = REPO.parent / "shared" / "real_logs"
    if not (real / "MANIFEST.csv").exists():
        pytest.skip("../shared/real_logs is not here")
    with (real / "MANIFEST.csv").open() as fh:
        logs = [row["file"] for row in csv.DictReader(fh)]
    by_path = {row.path: row for row in scan.scan(real, jobs=2, progress=False)}
    # a folder holding one log is that run, named by the folder; "." (MANIFEST.csv, README.md) is no run
    alone_in_folder = {
        name.split("/")[0]: name
        for name in logs
        if sum(n.startswith(name.split("/")[0] + "/") for n in logs) == 1
    }
    by_path |= {alone_in_folder[folder]: by_path.pop(folder) for folder in alone_in_folder}
    assert set(by_path) == {*logs, "."} and by_path["."].error.startswith("2 files could not be read: | ")
    for name in logs:
        try:
            alone = diagnose(load_paths([real / name]))
        except ParseError as err:
            assert by_path[name].error.startswith(str(err).splitlines()[0][:200])
            continue
        assert (by_path[name].symptom, by_path[name].confidence) == (
            alone.symptom.symptom,
            round(alone.symptom.confidence, 3),
        )
