"""Keras `CSVLogger` files: `epoch` first, then the logs keys (`loss`, `acc`, `val_loss`, ...).

The step is the epoch number as Keras wrote it (0-based). With `append=True` every new `fit()`
continues the same file without a new header and the epoch column starts again (0, or the
`initial_epoch`): a counter that does not increase starts a new segment, and the step stays the
epoch number within it. Keras writes non-finite values as the literal strings `nan`/`inf`; they
are kept as values. The separator is whatever `CSVLogger(separator=...)` was (`,`, `;`, tab).

CSVLogger writes the logs keys SORTED after `epoch`; a hand-written `epoch,loss,...` table with
unsorted names is still read here (it has the same shape) but with a lower score and without
claiming the run was Keras.
"""

from __future__ import annotations

from parsers.formats import _table
from parsers.model import RunMeta
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "keras_csv"
FRAMEWORK = "keras"


def sniff(source: SourceFile) -> float:
    columns = _table.header_columns(source)
    if len(columns) < 2 or columns[0] != "epoch" or "step" in columns:
        return 0.0
    if "loss" not in columns and not any(c.startswith("val_") for c in columns):
        return 0.0
    return 0.8 if written_by_csvlogger(columns) else 0.4


def written_by_csvlogger(columns: list[str]) -> bool:
    return columns[:1] == ["epoch"] and columns[1:] == sorted(columns[1:])


def parse(source: SourceFile) -> ParsedFile:
    lines, first = _table.text_lines(source)
    table = _table.read_table(lines, first, _table.detect_separator(lines[first]))
    table, epoch, epochs = _table.rows_by_counter(table, "epoch", "Keras CSVLogger")
    segment = _table.segments_from_counter(epochs, restart_on_equal=True)
    rows = _table.LongRows(epochs, table.lines, epoch=epoch.values, segment=segment)
    numeric_columns = {}
    for index, name in enumerate(table.columns):
        if name == "epoch":
            continue
        column = numeric_columns[name] = _table.numeric(table.cells[index])
        rows.add(column.values, column.present, *split_and_metric(name), name)
    framework = FRAMEWORK if written_by_csvlogger(table.columns) else "unknown"
    return _table.parsed_file(
        table, rows, numeric_columns, source.name, RunMeta(framework=framework, format=FORMAT)
    )
