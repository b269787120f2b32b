"""Any CSV/TSV with a header, a step-like column and numeric columns; plus header-less "transposed"
files that hold one series per row. The last resort among table formats (low sniff scores), so
that a specific format always wins when it recognises the file.

Counter column, in order of preference: step, global_step, iteration, iter, epoch (any case). An
`epoch` column beside a step column fills `epoch`; a `wall time`/`wall_time` column (TensorBoard's
CSV download: `Wall time,Step,Value`) gives wall_time. A TensorBoard download names its tag only
in the file name (`run-<run>-tag-<tag>.csv`), so its `Value` column takes the tag as name.

Transposed files (e.g. a list of per-epoch val losses and a list of accuracies written with
`np.savetxt`/`csv.writer` one list per row): 1-4 rows of >= 10 numbers. Row 1 is read as the
loss, row 2 as the accuracy, rows 3-4 as `row_3`, `row_4`; steps are the epoch index from 0.
Such files carry no split label; they are read as `val` (the only known real example holds
validation curves) and a warning says so.
"""

from __future__ import annotations

import re

from parsers.formats import _table
from parsers.model import ParseWarning, RunMeta, frame_from_columns
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "generic_csv"
FRAMEWORK = "unknown"

COUNTERS = ("step", "global_step", "iteration", "iter", "epoch")
_WALL_TIME = {"wall time", "wall_time"}
_TB_DOWNLOAD = re.compile(r"run[-_].*?[-_]tag[-_](?P<tag>.+)\.csv$", re.IGNORECASE)
# possessive digit runs and blanks: a backtracking `\d+\.?\d*` split a long run of digits every way
_NUMBER = r"[-+]?(?:\d++\.?\d*+(?:[eE][-+]?\d++)?|\.\d++|nan|inf)"
_NUMBER_ROW = re.compile(rf"^\s*+{_NUMBER}(?:\s*+,\s*+{_NUMBER}){{9,}}\s*+,?\s*+$", re.IGNORECASE)
_TRANSPOSED_MAX_BYTES = 4 * 1024 * 1024
_TRANSPOSED_NAMES = [("loss", "row 1"), ("accuracy", "row 2"), ("row_3", "row 3"), ("row_4", "row 4")]


def counter_column(columns: list[str]) -> str | None:
    """The column that counts steps (the first of COUNTERS present, case-insensitive)."""
    lowered = {c.lower(): c for c in columns}
    return next((lowered[name] for name in COUNTERS if name in lowered), None)


def sniff(source: SourceFile) -> float:
    lines = _table.head_lines(source, 8 * 1024)
    if not lines:
        return 0.0
    if _transposed_rows(source) is not None:
        return 0.2
    sep = _table.detect_separator(lines[0])
    columns = _table.split_header(lines[0], sep)
    counter = counter_column(columns)
    if len(columns) < 2 or counter is None or len(lines) < 2:
        return 0.0
    cells = [cell.strip() for cell in lines[1].split(sep)]
    if len(cells) != len(columns) or not _is_number(cells[columns.index(counter)]):
        return 0.0
    return 0.3 if sum(_is_number(cell) for cell in cells) >= 2 else 0.0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse(source: SourceFile) -> ParsedFile:
    if _transposed_rows(source) is not None:
        return _parse_transposed(source)
    return parse_table(source, RunMeta(framework=FRAMEWORK, format=FORMAT))


def parse_table(source: SourceFile, meta: RunMeta) -> ParsedFile:
    """A headed table: one metrics row per non-empty numeric cell (shared with timm_csv)."""
    lines, first = _table.text_lines(source)
    table = _table.read_table(lines, first, _table.detect_separator(lines[first]))
    counter = counter_column(table.columns)
    if counter is None:
        raise ParseError(f"no step-like column ({', '.join(COUNTERS)}) in the header")
    table, count, steps = _table.rows_by_counter(table, counter, "CSV metrics")
    lowered = [c.lower() for c in table.columns]
    epoch = count.values if counter.lower() == "epoch" else None
    wall_time = None
    if "epoch" in lowered and epoch is None:
        epoch = _table.numeric(table.cells[lowered.index("epoch")]).values
    for index, name in enumerate(lowered):
        if name in _WALL_TIME:
            seconds = _table.numeric(table.cells[index]).values
            wall_time = seconds - seconds[0] if len(seconds) else seconds
    rows = _table.LongRows(
        steps, table.lines, epoch=epoch, segment=_table.segments_from_counter(steps), wall_time=wall_time
    )
    tag = _TB_DOWNLOAD.search(source.name)
    numeric_columns = {}
    for index, name in enumerate(table.columns):
        if name == counter or name.lower() in _WALL_TIME or name.lower() == "epoch":
            continue
        column = _table.numeric(table.cells[index])
        if column.junk.sum() > column.present.sum():
            continue  # a text column (dates, names): not a metric
        numeric_columns[name] = column
        label = tag["tag"] if tag and name.lower() == "value" else name
        rows.add(column.values, column.present, *split_and_metric(label), label)
    return _table.parsed_file(table, rows, numeric_columns, source.name, meta)


def _transposed_rows(source: SourceFile) -> list[tuple[int, str]] | None:
    """(1-based line, text) of the rows of a header-less transposed file, or None."""
    if (
        source.size > _TRANSPOSED_MAX_BYTES
        or source.head_bytes(_TRANSPOSED_MAX_BYTES).count(b"\n") > 8
        or source.looks_binary()
    ):
        return None
    rows = [(i, line) for i, line in enumerate(source.log_lines(), start=1) if line.strip()]
    if not 1 <= len(rows) <= len(_TRANSPOSED_NAMES):
        return None
    return rows if all(_NUMBER_ROW.match(line) for _, line in rows) else None


def _parse_transposed(source: SourceFile) -> ParsedFile:
    columns: dict[str, list] = {key: [] for key in ("step", "epoch", "line", "value", "metric", "name")}
    rows = _transposed_rows(source) or []
    for (line, text), (metric, name) in zip(rows, _TRANSPOSED_NAMES, strict=False):
        numbers = [float(cell) for cell in text.split(",") if cell.strip()]
        columns["step"] += range(len(numbers))
        columns["epoch"] += range(len(numbers))
        columns["line"] += [line] * len(numbers)
        columns["value"] += numbers
        columns["metric"] += [metric] * len(numbers)
        columns["name"] += [name] * len(numbers)
    frame = frame_from_columns(
        {**columns, "split": ["val"] * len(columns["step"]), "source": [source.name] * len(columns["step"])}
    )
    note = (
        f"no header: {len(rows)} row(s) of numbers read as one series each over epochs 0, 1, ... "
        "(row 1 = loss, row 2 = accuracy); the file carries no split labels, so they are shown as val"
    )
    return ParsedFile(
        metrics=frame,
        meta=RunMeta(framework=FRAMEWORK, format=FORMAT),
        warnings=[ParseWarning(source.name, 0, note)],
    )
