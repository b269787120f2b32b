"""Shared reading of table-shaped logs (CSV/TSV written by loggers): one header, one row per record.

Loggers write sparse tables (Lightning leaves cells empty), literal `nan`/`inf` strings (Keras),
space-padded cells (YOLOv5), repeated headers (appended or resumed runs) and, when a run is cut
off, a broken last line. pandas parses clean numeric columns at C speed (an empty cell -> NaN,
"not logged"); a column holding a literal `nan` or other text comes back as text and is read
cell by cell, so that a LOGGED NaN stays distinct from an empty cell. Lines with the wrong number
of fields are skipped with their line number.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from parsers.model import MAX_COUNTER, METRIC_COLUMNS, ParseWarning, RunMeta, frame_from_columns
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

SEPARATORS = (",", ";", "\t")
MAX_WARNINGS = 20
_NAN_TEXT = re.compile(r"^[+-]?nan$", re.IGNORECASE)


@dataclass
class Table:
    """The data rows of a table (cells: one column per header name, labelled by position)."""

    columns: list[str]
    cells: pd.DataFrame
    lines: np.ndarray  # 1-based line number of each row
    header_line: int  # 1-based line number of the header
    header_text: str
    problems: list[tuple[int, str]] = field(default_factory=list)  # (line, message)
    skipped: int = 0


@dataclass
class NumericColumn:
    values: np.ndarray  # float64; NaN where the cell is empty or not a number
    present: np.ndarray  # bool: a value was logged (a literal `nan` counts as logged)
    junk: np.ndarray  # bool: a non-empty cell that is not a number


def detect_separator(header: str) -> str:
    """The separator that splits the header into the most fields (`,` when none appears)."""
    counts = [header.count(sep) for sep in SEPARATORS]
    return SEPARATORS[int(np.argmax(counts))] if max(counts) else ","


def first_content_line(lines: list[str]) -> int | None:
    """Index of the first line that is not blank."""
    return next((i for i, line in enumerate(lines) if line.strip()), None)


def head_lines(source: SourceFile, size: int = 16 * 1024) -> list[str]:
    """The first lines of a text file from its first non-blank one ([] for binary or blank files),
    for sniffing."""
    if source.looks_binary():
        return []
    lines = source.head_text(size).splitlines()
    first = first_content_line(lines)
    return [] if first is None else lines[first:]


def header_columns(source: SourceFile) -> list[str]:
    """The names in the first non-blank line split at its separator ([] when there is none)."""
    lines = head_lines(source, 8 * 1024)
    return split_header(lines[0], detect_separator(lines[0])) if lines else []


def text_lines(source: SourceFile) -> tuple[list[str], int]:
    """All lines, and the index of the first non-blank one (the header of a table)."""
    if source.looks_binary():
        raise ParseError("binary data, not a text table")
    lines = source.log_lines()
    first = first_content_line(lines)
    if first is None:
        raise ParseError("the file is empty")
    return lines, first


def split_header(header: str, sep: str) -> list[str]:
    return [name.strip().strip('"') for name in header.split(sep)]


def _field_count(line: str, sep: str) -> int:
    if '"' not in line:
        return line.count(sep) + 1
    return len(next(csv.reader([line], delimiter=sep), []))


def read_table(lines: list[str], header_index: int, sep: str) -> Table:
    """Rows below `lines[header_index]` with as many fields as the header; repeated headers
    (appended runs) are dropped silently, other misfit lines are counted as skipped."""
    header_text = lines[header_index]
    columns = split_header(header_text, sep)
    width = len(columns)
    body = lines[header_index + 1 :]
    if any('"' in line for line in body):
        counts = [_field_count(line, sep) for line in body]
    else:
        counts = [line.count(sep) + 1 for line in body]
    header_key = header_text.replace(" ", "")
    kept = [
        i
        for i, count in enumerate(counts)
        if count == width and body[i].replace(" ", "") != header_key and (width > 1 or body[i].strip())
    ]
    problems = [
        (header_index + 2 + i, f"expected {width} fields: {body[i][:80]!r}")
        for i, count in enumerate(counts)
        if count != width and body[i].strip()
    ]
    if kept:
        cells = _read_cells([body[i] for i in kept], sep, width)
    else:
        cells = pd.DataFrame({i: pd.Series([], dtype=np.float64) for i in range(width)})
    return Table(
        columns=columns,
        cells=cells,
        lines=np.asarray(kept, dtype=np.int64) + header_index + 2,
        header_line=header_index + 1,
        header_text=header_text,
        problems=problems,
        skipped=len(problems),
    )


def _read_cells(rows: list[str], sep: str, width: int) -> pd.DataFrame:
    """Numeric columns come back as float64 (empty cell -> NaN); a column with a literal `nan` or
    any text stays text so that `numeric` can tell a logged NaN from "not logged"."""
    try:
        cells = pd.read_csv(
            io.StringIO("\n".join(rows)),
            sep=sep,
            header=None,
            names=range(width),
            keep_default_na=False,
            na_values=[""],
            skipinitialspace=True,
            engine="c",
        )
        if len(cells) == len(rows):
            return cells
    except (pd.errors.ParserError, ValueError):
        pass
    # A quote the C tokenizer reads across lines (a cut quoted cell): split line by line.
    fields = [(next(csv.reader([row], delimiter=sep), []) + [""] * width)[:width] for row in rows]
    return pd.DataFrame(fields, columns=range(width), dtype=object)


def numeric(cells: pd.Series) -> NumericColumn:
    """Numbers of a column; `nan`, `inf`, `-inf` are values, empty cells are absent, other text
    is junk."""
    if pd.api.types.is_numeric_dtype(cells.dtype):
        values = cells.to_numpy(dtype=np.float64, na_value=np.nan)
        return NumericColumn(values=values, present=~np.isnan(values), junk=np.zeros(len(values), dtype=bool))
    text = cells.to_numpy(dtype=object, na_value="")
    text = np.array([str(t).strip() for t in text], dtype=object)
    values = pd.to_numeric(pd.Series(text, dtype=object), errors="coerce").to_numpy(
        dtype=np.float64, na_value=np.nan
    )
    present = text != ""
    failed = np.flatnonzero(present & np.isnan(values))
    junk = np.zeros(len(text), dtype=bool)
    junk[[i for i in failed if not _NAN_TEXT.match(text[i])]] = True
    return NumericColumn(values=values, present=present & ~junk, junk=junk)


def rows_with_number(table: Table, column: int, what: str) -> tuple[Table, NumericColumn]:
    """The rows whose `column` holds a number within MAX_COUNTER (the step or epoch counter), and that
    column; other rows (NaN, inf, 1e300) are counted as skipped."""
    counter = numeric(table.cells[column])
    ok = counter.present & (np.abs(counter.values) <= MAX_COUNTER)
    if ok.all():
        return table, counter
    bad_lines = table.lines[~ok]
    kept = replace(
        table,
        cells=table.cells[ok].reset_index(drop=True),
        lines=table.lines[ok],
        problems=table.problems + [(int(line), f"no {what} number; line skipped") for line in bad_lines],
        skipped=table.skipped + len(bad_lines),
    )
    return kept, numeric(kept.cells[column])


def rows_by_counter(table: Table, column: str, kind: str) -> tuple[Table, NumericColumn, np.ndarray]:
    """The rows that have a number in the counter `column` (step or epoch), that column, and the
    counter as int64 steps (fractional epochs are floored)."""
    if column not in table.columns:
        raise ParseError(f"no `{column}` column: not a {kind} file")
    table, counter = rows_with_number(table, table.columns.index(column), column)
    return table, counter, np.floor(counter.values).astype(np.int64)


def segments_from_counter(counter: np.ndarray, restart_on_equal: bool = False) -> np.ndarray:
    """0, 1, ... per row: a new segment starts where the counter goes back (a run appended to
    the same file); with `restart_on_equal`, a repeated value also starts one (Keras epochs)."""
    if len(counter) < 2:
        return np.zeros(len(counter), dtype=np.int64)
    diff = np.diff(counter)
    back = (diff <= 0) if restart_on_equal else (diff < 0)
    return np.concatenate([[0], np.cumsum(back)]).astype(np.int64)


class LongRows:
    """Collects metric columns of a wide table and emits the contract's long frame, row-major
    (all values of line 2, then line 3, ...) so that rows read in the order of the file."""

    def __init__(
        self,
        step: np.ndarray,
        lines: np.ndarray,
        epoch: np.ndarray | None = None,
        segment: np.ndarray | None = None,
        wall_time: np.ndarray | None = None,
    ) -> None:
        n = len(step)
        self._base = {
            "step": np.asarray(step, dtype=np.int64),
            "line": np.asarray(lines, dtype=np.int64),
            "epoch": np.full(n, np.nan) if epoch is None else np.asarray(epoch, dtype=np.float64),
            "segment": np.zeros(n, dtype=np.int64) if segment is None else segment,
            "wall_time": np.full(n, np.nan) if wall_time is None else np.asarray(wall_time, dtype=np.float64),
        }
        self._rows: list[np.ndarray] = []  # row indices of each added column's values
        self._values: list[np.ndarray] = []
        self._labels: list[tuple[str, str, str]] = []  # (split, metric, name)

    def add(self, values: np.ndarray, present: np.ndarray, split: str, metric: str, name: str) -> None:
        rows = np.flatnonzero(present)
        if len(rows):
            self._rows.append(rows)
            self._values.append(np.asarray(values, dtype=np.float64)[rows])
            self._labels.append((split, metric, name))

    def frame(self, source_name: str) -> pd.DataFrame:
        if not self._rows:
            return frame_from_columns({key: [] for key in ("step", "split", "metric", "value")})
        index = np.concatenate(self._rows)
        order = np.argsort(index, kind="stable")
        index = index[order]
        sizes = [len(rows) for rows in self._rows]
        columns = {key: array[index] for key, array in self._base.items()}
        columns["value"] = np.concatenate(self._values)[order]
        # Categoricals straight from codes: one label per added column, no per-row strings.
        for position, key in enumerate(("split", "metric", "name")):
            labels = [label[position] for label in self._labels]
            categories = list(dict.fromkeys(labels))
            codes = np.repeat([categories.index(label) for label in labels], sizes)[order]
            columns[key] = pd.Categorical.from_codes(codes, categories=categories)
        columns["source"] = pd.Categorical.from_codes(np.zeros(len(index), dtype=np.int64), [source_name])
        return pd.DataFrame({key: columns[key] for key in METRIC_COLUMNS})


def concat_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """Metrics frames joined into one, rows ordered by line (stable), contract dtypes kept."""
    columns = {
        name: np.concatenate(
            [frame[name].to_numpy(dtype=object if dtype == "category" else dtype) for frame in frames]
        )
        for name, dtype in METRIC_COLUMNS.items()
    }
    order = np.argsort(columns["line"], kind="stable")
    return frame_from_columns({name: values[order] for name, values in columns.items()})


def capped_warnings(source_name: str, problems: list[tuple[int, str]]) -> list[ParseWarning]:
    """At most MAX_WARNINGS warnings (in line order), then one line that counts the rest."""
    problems = sorted(problems)
    warnings = [ParseWarning(source_name, line, message) for line, message in problems[:MAX_WARNINGS]]
    if len(problems) > MAX_WARNINGS:
        rest = len(problems) - MAX_WARNINGS
        warnings.append(ParseWarning(source_name, 0, f"{rest} more line(s) with the same kind of problem"))
    return warnings


def junk_problems(table: Table, columns: dict[str, NumericColumn]) -> list[tuple[int, str]]:
    """One problem per line that holds a non-numeric cell in a numeric column (the cell is dropped)."""
    bad: dict[int, list[str]] = {}
    for name, column in columns.items():
        for row in np.flatnonzero(column.junk):
            bad.setdefault(int(row), []).append(name)
    return [
        (int(table.lines[row]), f"not a number in {', '.join(names)}; value(s) dropped")
        for row, names in sorted(bad.items())
    ]


def parsed_file(
    table: Table, rows: LongRows, columns: dict[str, NumericColumn], source_name: str, meta: RunMeta
) -> ParsedFile:
    """The ParsedFile of a table: its long frame, and warnings for skipped lines and junk cells."""
    frame = rows.frame(source_name)
    if frame.empty:
        raise ParseError("the table has a header but no values")
    return ParsedFile(
        metrics=frame,
        meta=meta,
        warnings=capped_warnings(source_name, table.problems + junk_problems(table, columns)),
        skipped_lines=table.skipped,
    )
