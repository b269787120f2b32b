"""Runs kept by experiment trackers, read offline from their files (no tracker installed).

MLflow file store: `mlruns/<experiment>/<run>/` holds `meta.yaml`, `metrics/<key>` (one
`<timestamp_ms> <value> <step>` line per point; keys with `/` are sub-folders), `params/<key>` and
`tags/<key>` (the value is the whole file). MLflow's SQLite store (`mlflow.db`, the default since
3.7) holds many runs in the tables `runs`, `metrics`, `params`, `tags`, `experiments`; each run is
read on its own (stdlib `sqlite3`) and written out as the file store's files, so that one reader
serves both and a run uploaded from a database can be shared like any other.

W&B: a local run folder (`wandb/run-…/` or `offline-run-…/`) keeps the run's captured stdout in
`files/output.log` (read by the text-log readers), its settings in `files/config.yaml` (`key:` then
`  value: …`) and the last logged values in `files/wandb-summary.json`. The curves logged with
`wandb.log` only are in the binary `run-<id>.wandb` file, which needs the wandb package to read.

Inside a run, files are named by their path relative to the run's folder (`metrics/train/loss`).
"""

from __future__ import annotations

import json
import re
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from parsers import load
from parsers.formats import tfevents
from parsers.formats._table import segments_from_counter
from parsers.hparams import hyperparams_from_text
from parsers.model import (
    MAX_COUNTER,
    LogLine,
    ParseWarning,
    RunMeta,
    TrainingLog,
    as_counter,
    frame_from_columns,
    hidden_nan_note,
    reveal_hidden_nan,
)
from parsers.source import ParseError, SourceFile

MLFLOW_FORMAT = "mlflow"
SQLITE_MAGIC = b"SQLite format 3\x00"
_MLFLOW_TABLES = {"runs", "metrics", "params", "tags", "experiments"}
_MAX_WARNINGS = 20
# MLflow's SQL store keeps NaN as 0 with is_nan set, and +-inf as +-float max.
_FLOAT_MAX = sys.float_info.max
_YAML_SCALAR = re.compile(r"^(?P<key>[A-Za-z_][\w.\-]*):[ \t]*(?P<value>.*?)\s*$")
# Files only W&B writes in a run folder (`files/output.log` and `files/config.yaml` alone could be anyone's).
_WANDB_FILES = ("files/wandb-metadata.json", "files/wandb-summary.json")


def is_mlflow_run(names: Sequence[str]) -> bool:
    """The files of an MLflow file-store run: its `meta.yaml` and metrics or params below it."""
    return "meta.yaml" in names and any(n.startswith(("metrics/", "params/")) for n in names)


def is_wandb_run(names: Sequence[str]) -> bool:
    """A W&B run folder: its binary `run-<id>.wandb`, or the metadata or summary W&B writes."""
    return any(n in _WANDB_FILES for n in names) or any(
        "/" not in n and n.startswith("run-") and n.endswith(".wandb") for n in names
    )


def top_level_yaml(text: str) -> dict[str, str]:
    """The `key: value` lines at the top level of a small YAML file (MLflow's meta.yaml), values as
    written with quotes removed. PyYAML is not a dependency and nothing else of YAML is needed."""
    out = {}
    for line in text.splitlines():
        match = _YAML_SCALAR.match(line)
        if match:
            out[match["key"]] = match["value"].strip("'\"")
    return out


def mlflow_run_name(sources: Sequence[SourceFile]) -> str:
    """The run's name (the `mlflow.runName` tag, else meta.yaml's `run_name`), or its id."""
    by_name = {s.name: s for s in sources}
    if "tags/mlflow.runName" in by_name:
        return by_name["tags/mlflow.runName"].text.strip()
    meta = top_level_yaml(by_name["meta.yaml"].text) if "meta.yaml" in by_name else {}
    return meta.get("run_name") or meta.get("run_id") or meta.get("run_uuid") or ""


def load_mlflow_run(sources: Sequence[SourceFile]) -> TrainingLog:
    """One MLflow file-store run as a TrainingLog: every metric file a curve, params as settings."""
    warnings: list[ParseWarning] = []
    curves = []
    for source in sources:
        if source.name.startswith("metrics/"):
            curves.append((source.name, *_metric_points(source, warnings)))
    curves = [c for c in curves if len(c[1])]
    params = {s.name[len("params/") :]: s.text.strip() for s in sources if s.name.startswith("params/")}
    meta = RunMeta(format=MLFLOW_FORMAT, formats=[MLFLOW_FORMAT])
    if params:
        _settings_from_params(params, meta)
    if not curves:
        raise ParseError(
            "this MLflow run logged no metric values"
            + (f" (its params: {', '.join(sorted(params)[:10])})" if params else "")
        )
    keys = {name[len("metrics/") :] for name, *_ in curves}
    framework = tfevents.framework_of(keys)
    meta.framework = "pytorch" if framework == "lightning" else framework
    first_time = min(float(times.min()) for _, times, *_ in curves)
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("step", "value", "wall_time", "line", "segment")}
    labels: list[tuple[str, str, str, str]] = []  # (split, metric, name, source) of each curve
    for name, times, values, steps, lines in curves:
        key = name[len("metrics/") :]
        columns["step"].append(steps)
        columns["value"].append(values)
        columns["wall_time"].append((times - first_time) / 1000.0)
        columns["line"].append(lines)
        columns["segment"].append(segments_from_counter(steps))
        labels.append((*tfevents.tag_split_metric(key, keys, framework), key, name))
    sizes = [len(steps) for steps in columns["step"]]
    categories = {}  # labels from codes, one per curve: no per-row strings
    for position, column in enumerate(("split", "metric", "name", "source")):
        names = list(dict.fromkeys(label[position] for label in labels))
        codes = np.repeat([names.index(label[position]) for label in labels], sizes)
        categories[column] = pd.Categorical.from_codes(codes, categories=names)
    frame = frame_from_columns({k: np.concatenate(v) for k, v in columns.items()} | categories)
    lr = frame.loc[(frame["metric"] == "lr") & np.isfinite(frame["value"]), "value"]
    if len(lr):
        meta.peak_lr = float(lr.max())
    hidden = reveal_hidden_nan(frame)  # HF's Trainer reports to MLflow as to its other writers
    if hidden:
        warnings.insert(0, ParseWarning("", 0, hidden_nan_note(hidden)))
    return TrainingLog(
        metrics=frame,
        meta=meta,
        warnings=warnings,
        skipped_lines=sum(1 for w in warnings if w.line),
        sources=[s.name for s in sources if s.name.startswith(("metrics/", "params/", "meta.yaml"))],
    )


def _settings_from_params(params: dict[str, str], meta: RunMeta) -> None:
    """The run's params read as settings (`lr` -> base lr, ...), all at once so that settings that
    go together are read together; each fact then quotes its own file (`params/lr`, line 1)."""
    keys = sorted(params)
    hyperparams_from_text("\n".join(f"{key}: {params[key]}" for key in keys), "params", meta)
    for fact, where in meta.where.items():
        if where.source == "params" and 1 <= where.line <= len(keys):
            key = keys[where.line - 1]
            meta.where[fact] = LogLine(f"params/{key}", 1, params[key])


def _metric_points(
    source: SourceFile, warnings: list[ParseWarning]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(timestamps ms, values, steps, line numbers) of an MLflow metric file; a line that is not
    `<timestamp> <value> [<step>]` (MLflow reads 2 or 3 fields, step 0 when absent) is skipped."""
    regular = regular_points(source.log_text)
    return regular if regular is not None else points_line_by_line(source, warnings)


def points_line_by_line(
    source: SourceFile, warnings: list[ParseWarning]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    times, values, steps, lines = [], [], [], []
    skipped = 0
    for number, line in enumerate(source.log_lines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) not in (2, 3):
                raise ValueError
            time, value = int(fields[0]), float(fields[1])
            step = as_counter(int(fields[2])) if len(fields) == 3 else 0
            if step is None:
                raise ValueError
        except ValueError:
            skipped += 1
            if skipped <= _MAX_WARNINGS:
                warnings.append(
                    ParseWarning(source.name, number, f"not `<timestamp> <value> <step>`: {line[:80]!r}")
                )
            continue
        times.append(time)
        values.append(value)
        steps.append(step)
        lines.append(number)
    return (
        np.asarray(times, dtype=np.float64),
        np.asarray(values, dtype=np.float64),
        np.asarray(steps, dtype=np.int64),
        np.asarray(lines, dtype=np.int64),
    )


def regular_points(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The points of a file whose every line is `<timestamp> <value> <step>` with single spaces (what
    MLflow writes), converted by numpy in one go; None for anything else, read line by line."""
    body = text[:-1] if text.endswith("\n") else text
    if not body or "\t" in body or "  " in body or "\n " in body or " \n" in body or body[0] == " ":
        return None
    raw = np.frombuffer(body.encode("utf-8"), dtype=np.uint8)
    breaks = np.flatnonzero(raw == ord("\n"))
    spaces_per_line = np.diff(np.searchsorted(np.flatnonzero(raw == ord(" ")), np.r_[-1, breaks, len(raw)]))
    if not (spaces_per_line == 2).all():
        return None
    try:
        table = np.array(body.split(), dtype=object).reshape(-1, 3)
        times, steps = table[:, 0].astype(np.int64), table[:, 2].astype(np.int64)
        values = table[:, 1].astype(np.float64)
    except (ValueError, OverflowError):
        return None
    if np.abs(steps).max() > MAX_COUNTER:
        return None
    return times.astype(np.float64), values, steps, np.arange(1, len(steps) + 1, dtype=np.int64)


def open_mlflow_db(data: bytes | Path) -> sqlite3.Connection | None:
    """A read-only connection to an MLflow SQLite store (a path, or the bytes of an upload), or None
    when the file is not one."""
    try:
        if isinstance(data, Path):
            connection = sqlite3.connect(f"{data.resolve().as_uri()}?mode=ro", uri=True)
        else:
            connection = sqlite3.connect(":memory:")
            connection.deserialize(data)
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.Error:
        return None
    if not tables >= _MLFLOW_TABLES:
        connection.close()
        return None
    return connection


def mlflow_db_runs(connection: sqlite3.Connection) -> list[tuple[str, str]]:
    """(run id, run name) of the live runs of a store, by experiment then start time."""
    rows = connection.execute(
        "SELECT run_uuid, name FROM runs WHERE lifecycle_stage != 'deleted' "
        "ORDER BY experiment_id, start_time, run_uuid"
    )
    return [(str(run_id), str(name or run_id)) for run_id, name in rows]


def mlflow_db_run_files(connection: sqlite3.Connection, run_id: str) -> list[SourceFile]:
    """One run of an SQLite store as the files the file store would hold for it (values written with
    `repr`, so they read back exactly; NaN and +-inf restored from MLflow's encoding)."""
    run = connection.execute(
        "SELECT run_uuid, name, experiment_id, status, start_time, end_time, lifecycle_stage, artifact_uri "
        "FROM runs WHERE run_uuid = ?",
        (run_id,),
    ).fetchone()
    if run is None:
        raise ParseError(f"no run {run_id!r} in this MLflow database")
    fields = ("run_id", "run_name", "experiment_id", "status", "start_time", "end_time", "lifecycle_stage")
    meta_text = "".join(
        f"{field}: {value}\n" for field, value in zip(fields, run, strict=False) if value is not None
    )
    files = [
        SourceFile("meta.yaml", f"run_uuid: {run[0]}\n{meta_text}artifact_uri: {run[7] or ''}\n".encode())
    ]
    points: dict[str, list[str]] = {}
    # in the order they were logged, as the file store keeps them (a resumed run's steps go back)
    query = "SELECT key, timestamp, value, step, is_nan FROM metrics WHERE run_uuid = ? "
    query += "ORDER BY key, timestamp, step"
    for key, timestamp, value, step, is_nan in connection.execute(query, (run_id,)):
        points.setdefault(key, []).append(f"{timestamp} {_stored_value(value, is_nan)!r} {step}\n")
    files += [SourceFile(f"metrics/{key}", "".join(lines).encode()) for key, lines in points.items()]
    for table in ("params", "tags"):
        rows = connection.execute(
            f"SELECT key, value FROM {table} WHERE run_uuid = ? ORDER BY key", (run_id,)
        )
        files += [SourceFile(f"{table}/{key}", str(value).encode()) for key, value in rows]
    return files


def _stored_value(value: float, is_nan: bool) -> float:
    if is_nan:
        return float("nan")
    if abs(value) >= _FLOAT_MAX:
        return float("inf") if value > 0 else float("-inf")
    return float(value)


def load_wandb_run(sources: Sequence[SourceFile]) -> TrainingLog:
    """A W&B run folder: `files/output.log` through the text-log readers, `files/config.yaml` as the
    run's settings. Without a readable output.log, the error says where the curves are."""
    by_name = {s.name: s for s in sources}
    log_source = by_name.get("files/output.log")
    if log_source is None or log_source.is_blank():
        raise ParseError(_no_output_message(by_name.get("files/wandb-summary.json")))
    try:
        log = load([SourceFile("output.log", log_source.data, log_source.notes)])
    except ParseError as err:
        raise ParseError(
            f"files/output.log: {err}\n{_no_output_message(by_name.get('files/wandb-summary.json'))}"
        ) from None
    config = by_name.get("files/config.yaml")
    if config is not None:
        settings = RunMeta()
        hyperparams_from_text(wandb_config_text(config.text), "config.yaml", settings)
        settings.hyperparams = {k: v for k, v in settings.hyperparams.items() if not k.startswith("_wandb")}
        log.meta.merge(settings)
        log.sources.append("config.yaml")
    log.meta.formats = [*log.meta.formats, "wandb"]
    return log


def wandb_config_text(text: str) -> str:
    """W&B's config.yaml (`lr:` / `  desc: …` / `  value: 0.1`) as `lr: 0.1` lines at the line numbers
    of their values, other lines blank: the settings reader then quotes the file's own lines."""
    lines = text.split("\n")
    out = [""] * len(lines)
    key = None
    for number, line in enumerate(lines):
        if line and not line[0].isspace() and line.rstrip().endswith(":"):
            key = line.rstrip()[:-1].strip("'\"")
        elif key is not None and line.startswith("  value:"):
            value = line[len("  value:") :].strip()
            if value:
                out[number] = f"{key}: {value}"
    return "\n".join(out)


def _no_output_message(summary: SourceFile | None) -> str:
    message = (
        "this W&B run folder has no printed training log (files/output.log); the curves logged with "
        "wandb.log are only in its binary run-<id>.wandb file. Export them from W&B (a panel's CSV) "
        "or print the metrics to stdout."
    )
    if summary is None:
        return message
    try:
        last = json.loads(summary.text)
    except ValueError:
        return message
    if isinstance(last, dict):
        values = ", ".join(f"{k}={v}" for k, v in last.items() if not k.startswith("_"))[:300]
        message += f" Last values (wandb-summary.json): {values}"
    return message
