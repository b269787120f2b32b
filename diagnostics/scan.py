"""Fleet scan: `python -m diagnostics scan ROOT [--jobs N] [--out report.csv|.jsonl|.html]
[--executor dask --scheduler tcp://HOST:PORT] [--lang zh]`.

Finds the runs under ROOT (`parsers.runs.disk_groups`: a log with its configs, an MLflow run or
database, a TensorBoard run folder, a W&B run folder or panel export), diagnoses them in parallel
and writes one row per run (path, format, symptom, confidence, leading cause, onset step, rule ids),
the worst first. A run that cannot be read gets a row with the reason; a worker that dies (a crash in
native code, the memory killer) gives its run a row and the scan goes on.

Local processes by default. `--executor dask` sends the same work to a dask.distributed cluster
(each worker must see ROOT at the same path, e.g. a shared file system); dask is an optional
install (`requirements-fleet.txt`), imported only then.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from html import escape
from pathlib import Path

from tqdm import tqdm

from diagnostics import SYMPTOM_PRIORITY, diagnose
from i18n import LANGUAGES, t
from parsers import ParseError
from parsers.runs import RunGroup, disk_groups, disk_runs, load_run

REPORT_KINDS = (".csv", ".jsonl", ".html")
# Seconds one run may take in a local worker: a 1 GB log parses in under 10 s, so a run past this is
# stuck (a skipped run gets a row; the scan goes on).
DEFAULT_TIMEOUT = 600
_REASON_CHARS = 300  # an unreadable run's reason in the table: its first line, cut here
# Groups handed to the local pool beyond the busy workers: enough to keep them fed, few enough that
# a dead worker leaves little to re-run one by one.
_QUEUED_PER_WORKER = 2


@dataclass
class ScanRow:
    """One run's line of the report (`detail`, the full diagnosis as text, only goes in the HTML)."""

    path: str
    format: str = ""
    symptom: str = ""
    confidence: float | None = None
    cause: str = ""
    onset_step: int | None = None
    rules: str = ""  # the ids of the rules with a finding, space-separated
    error: str = ""  # why the run could not be read or diagnosed
    detail: str = field(default="", repr=False)

    @property
    def severity(self) -> tuple[int, float, str]:
        """Sort key: the verdicts in the order the diagnosis ranks them (NaN first), then the runs
        that could not be read, then healthy ones; more confident first, then by path."""
        if self.error:
            rank = len(SYMPTOM_PRIORITY)
        elif self.symptom in SYMPTOM_PRIORITY:
            rank = SYMPTOM_PRIORITY.index(self.symptom)
        else:
            rank = len(SYMPTOM_PRIORITY) + 1
        return rank, -(self.confidence or 0.0), self.path

    def record(self) -> dict[str, object]:
        return {k: v for k, v in asdict(self).items() if k != "detail"}


REPORT_FIELDS = [f.name for f in fields(ScanRow) if f.name != "detail"]


def scan_group(
    root: str, group: RunGroup, lang: str = "en", details: bool = True, timeout: int = 0
) -> list[ScanRow]:
    """Read, split and diagnose one group: never raises (each failure is its run's row). `details`:
    keep each run's full diagnosis as text (the HTML report's; a fleet's worth costs memory).
    `timeout`: seconds a run may take (0: no limit)."""
    from diagnostics.__main__ import render_text  # the CLI's report; imported here, in the worker

    try:
        runs = disk_runs(Path(root), group)
    except Exception as err:  # unreadable folder, broken database: the group's one row
        return [_failed(group.label, err)]
    rows = []
    for run in runs:
        try:
            with _time_limit(timeout):
                log = load_run(run.sources)
                diagnosis = diagnose(log)
        except Exception as err:
            rows.append(_failed(run.label, err))
            continue
        leading = diagnosis.causes[0].id if diagnosis.causes and not diagnosis.healthy else ""
        rows.append(
            ScanRow(
                path=run.label,
                format=log.meta.format,
                symptom=diagnosis.symptom.symptom,
                confidence=round(diagnosis.symptom.confidence, 3),
                cause=leading,
                onset_step=diagnosis.symptom.onset_step,
                rules=" ".join(dict.fromkeys(f.rule for f in diagnosis.findings)),
                detail=render_text(log, diagnosis, lang) if details else "",
            )
        )
    return rows


class RunTimeout(Exception):
    """A run took longer than the scan's --timeout."""


@contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """Raise RunTimeout in this process after `seconds` (SIGALRM; Python code is interrupted between
    operations, one long native call only when it returns). No limit for 0, or outside the main
    thread (dask's threaded workers), where a signal cannot be set."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise RunTimeout(f"the run took longer than {seconds} s (--timeout); skipped")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def _failed(label: str, err: BaseException) -> ScanRow:
    """The row of a run that could not be read: the reason on one line (several files' reasons
    joined), cut to _REASON_CHARS; the whole message goes in the HTML report."""
    reason = (
        str(err) if isinstance(err, (ParseError, OSError, RunTimeout)) else f"{type(err).__name__}: {err}"
    )
    one_line = " | ".join(line.strip() for line in reason.splitlines() if line.strip()) or type(err).__name__
    cut = one_line if len(one_line) <= _REASON_CHARS else one_line[: _REASON_CHARS - 1] + "…"
    return ScanRow(path=label, error=cut, detail=reason)


def _crashed(group: RunGroup, how: str) -> list[ScanRow]:
    return [ScanRow(path=group.label, error=how, detail=how)]


def scan_local(
    root: Path, groups: list[RunGroup], jobs: int, work: Callable[..., list[ScanRow]], done: Callable
) -> None:
    """Each group in a pool of `jobs` processes. When a worker dies, the pool is broken for every
    group in flight: those are run again one at a time, each in its own process, so that only the
    group that kills its process gets the "crashed" row."""
    pending = list(groups)
    while pending:
        suspects: list[RunGroup] = []
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            running: dict[Future, RunGroup] = {}
            while pending or running:
                while pending and len(running) < jobs * _QUEUED_PER_WORKER:
                    group = pending.pop(0)
                    running[pool.submit(work, str(root), group)] = group
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    group = running.pop(future)
                    try:
                        done(future.result())
                    except BrokenProcessPool:
                        suspects.append(group)
                        broken = True
                if broken:
                    suspects += running.values()
                    break
        for group in suspects:
            with ProcessPoolExecutor(max_workers=1) as alone:
                try:
                    done(alone.submit(work, str(root), group).result())
                except BrokenProcessPool:
                    done(_crashed(group, "the worker process died while reading this run"))


def scan_dask(
    root: Path, groups: list[RunGroup], scheduler: str, work: Callable[..., list[ScanRow]], done: Callable
) -> None:
    """Each group as a task of a dask.distributed cluster; a task whose worker died (dask retries it
    on another first) gives its run a row."""
    from distributed import Client, as_completed

    with Client(scheduler) as client:
        futures = client.map(work, [str(root)] * len(groups), groups, pure=False)
        by_key = dict(zip((f.key for f in futures), groups, strict=True))
        for future in as_completed(futures):
            try:
                done(future.result())
            except Exception as err:  # KilledWorker, a lost connection: this task's row
                done(_crashed(by_key[future.key], f"the dask task failed: {type(err).__name__}: {err}"))
            future.release()


def scan(
    root: Path,
    jobs: int = 0,
    executor: str = "local",
    scheduler: str | None = None,
    lang: str = "en",
    progress: bool = True,
    details: bool = True,
    timeout: int = 0,
) -> list[ScanRow]:
    """Every run under `root`, diagnosed, sorted by severity."""
    groups = disk_groups(root)
    rows: list[ScanRow] = []
    bar = tqdm(total=len(groups), desc="scan", unit="run", file=sys.stderr, disable=not progress)

    def done(found: list[ScanRow]) -> None:
        rows.extend(found)
        bar.update(1)

    # looked up here, not bound at import: a test replaces it with one whose worker dies
    work = partial(scan_group, lang=lang, details=details, timeout=timeout)
    with bar:
        if executor == "dask":
            scan_dask(root, groups, scheduler or "", work, done)
        else:
            scan_local(root, groups, max(jobs or os.cpu_count() or 1, 1), work, done)
    return sorted(rows, key=lambda row: row.severity)


def write_report(rows: Iterable[ScanRow], out: str | None, root: Path, lang: str) -> None:
    """The report in the format of `out`'s suffix (.csv, .jsonl, .html); CSV on stdout without one."""
    rows = list(rows)
    suffix = Path(out).suffix.lower() if out else ".csv"
    if suffix == ".jsonl":
        text = "".join(json.dumps(_strict(row.record()), ensure_ascii=False) + "\n" for row in rows)
    elif suffix == ".html":
        text = html_report(rows, root, lang)
    else:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, REPORT_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(_spreadsheet_safe(row.record()) for row in rows)
        text = buffer.getvalue()
    if out:
        Path(out).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _spreadsheet_safe(record: dict[str, object]) -> dict[str, object]:
    """Text cells taken from file names and logs (path, error) that a spreadsheet would run as a
    formula (`=`, `+`, `-`, `@` first) get a leading `'`, as OWASP advises for CSV exports."""
    return {
        k: f"'{v}" if k in ("path", "error") and isinstance(v, str) and v[:1] in ("=", "+", "-", "@") else v
        for k, v in record.items()
    }


def _strict(record: dict[str, object]) -> dict[str, object]:
    return {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in record.items()}


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1400px;
color:#111827;padding:0 1rem} table{border-collapse:collapse;font-size:.88rem;width:100%}
td,th{border-bottom:1px solid #e5e7eb;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f9fafb;position:sticky;top:0} tr.problem td:nth-child(3){color:#b91c1c;font-weight:600}
tr.unreadable td:nth-child(3){color:#92400e} tr.healthy td:nth-child(3){color:#15803d}
pre{background:#f6f8fa;padding:.6rem .8rem;border-radius:.375rem;overflow-x:auto;font-size:.82rem;
white-space:pre-wrap}
section{margin-top:2rem;border-top:1px solid #e5e7eb} .muted{color:#6b7280}
"""


def html_report(rows: list[ScanRow], root: Path, lang: str) -> str:
    """One self-contained page: the table (each run links to its diagnosis below it), then every
    run's full diagnosis as preformatted text. Everything taken from a log is escaped."""
    counts: dict[str, int] = {}
    for row in rows:
        key = "unreadable" if row.error else row.symptom
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{_symptom_name(k, lang)}: {n}" for k, n in counts.items())
    head = "".join(f"<th>{escape(t(f'scan.column.{name}', lang))}</th>" for name in REPORT_FIELDS)
    body, sections = [], []
    for index, row in enumerate(rows):
        kind = "unreadable" if row.error else ("healthy" if row.symptom == "healthy" else "problem")
        cells = [f'<a href="#run-{index}">{escape(row.path)}</a>']
        cells += [escape(_cell(getattr(row, name), lang, name)) for name in REPORT_FIELDS[1:]]
        body.append(f'<tr class="{kind}">' + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
        sections.append(
            f'<section id="run-{index}"><h2>{escape(row.path)}</h2><pre>{escape(row.detail)}</pre>'
            f'<p><a href="#top">{escape(t("scan.back", lang))}</a></p></section>'
        )
    title = escape(t("scan.title", lang))
    return (
        f'<!DOCTYPE html><html lang="{escape(lang)}"><head><meta charset="utf-8"><title>{title}</title>'
        f'<style>{_CSS}</style></head><body><h1 id="top">{title}</h1>'
        f'<p class="muted">{escape(t("scan.summary", lang, root=str(root), runs=len(rows)))} '
        f"{escape(summary)}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        f"{''.join(sections)}</body></html>"
    )


def _symptom_name(symptom: str, lang: str) -> str:
    return t("scan.unreadable", lang) if symptom == "unreadable" else t(f"symptoms.{symptom}.title", lang)


def _cell(value: object, lang: str, name: str) -> str:
    if value is None or value == "":
        return ""
    if name == "symptom":
        return _symptom_name(str(value), lang)
    if name == "cause":
        return t(f"causes.{value}.title", lang)
    if name == "confidence" and isinstance(value, float):
        return f"{round(100 * value)}%"
    return str(value)


def main(argv: list[str]) -> int:
    """Exit status: 0 every run healthy, 1 a run with a problem or unreadable, 2 ROOT unreadable."""
    parser = argparse.ArgumentParser(
        prog="python -m diagnostics scan", description="Diagnose every training run under a folder."
    )
    parser.add_argument("root", help="folder to search for runs")
    parser.add_argument("--jobs", type=int, default=0, help="worker processes (default: one per core)")
    parser.add_argument("--out", help="report file: .csv, .jsonl or .html (default: CSV on stdout)")
    parser.add_argument("--executor", choices=("local", "dask"), default="local")
    parser.add_argument("--scheduler", help="dask scheduler address, e.g. tcp://10.0.0.5:8786")
    parser.add_argument("--lang", choices=sorted(LANGUAGES), default="en")
    parser.add_argument(
        "--timeout",
        type=int,
        default=DEFAULT_TIMEOUT,
        help="seconds a run may take before it is skipped (0: none)",
    )
    args = parser.parse_args(argv)
    root = Path(args.root)
    if args.out and Path(args.out).suffix.lower() not in REPORT_KINDS:
        parser.error(f"--out must end in one of {', '.join(REPORT_KINDS)}")
    if args.executor == "dask" and not args.scheduler:
        parser.error("--executor dask needs --scheduler tcp://HOST:PORT")
    if not root.is_dir():
        print(t("cli.unreadable", args.lang, error=f"{root}: not a folder"), file=sys.stderr)
        return 2
    try:
        details = bool(args.out) and Path(args.out).suffix.lower() == ".html"
        rows = scan(
            root.resolve(),
            args.jobs,
            args.executor,
            args.scheduler,
            args.lang,
            details=details,
            timeout=args.timeout,
        )
    except ImportError as err:
        print(t("scan.no_dask", args.lang, error=err), file=sys.stderr)
        return 2
    except OSError as err:  # the dask scheduler cannot be reached (TimeoutError is an OSError)
        print(t("scan.no_scheduler", args.lang, scheduler=args.scheduler, error=err), file=sys.stderr)
        return 2
    write_report(rows, args.out, root, args.lang)
    return 0 if all(row.symptom == "healthy" and not row.error for row in rows) else 1
