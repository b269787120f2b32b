"""Keras `CSVLogger` files: `epoch` first, then the logs keys (`loss`, `acc`, `val_loss`, ...).

The step is the epoch number as Keras wrote it (0-based). With `append=True` every new `fit()`
continues the same file without a new header and the epoch column starts again (0, or the
`initial_epoch`): a counter that does not increase starts a new segment, and the step stays the
epoch number within it. Keras writes non-finite values as the literal strings `nan`/`inf`; they
are kept as values. The separator is whatever `CSVLogger(separator=...)` was (`,`, `;`, tab).
"""

from __future__ import annotations

import numpy as np

from parsers.formats import _table
from parsers.model import RunMeta
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "keras_csv"
FRAMEWORK = "keras"


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    lines = source.head_text(8 * 1024).splitlines()
    first = _table.first_content_line(lines)
    if first is None:
        return 0.0
    sep = _table.detect_separator(lines[first])
    columns = _table.split_header(lines[first], sep)
    if len(columns) < 2 or columns[0] != "epoch" or "step" in columns:
        return 0.0
    if "loss" in columns or any(c.startswith("val_") for c in columns):
        return 0.8
    return 0.0


def parse(source: SourceFile) -> ParsedFile:
    lines = source.lines()
    first = _table.first_content_line(lines)
    if first is None:
        raise ParseError("the file is empty")
    table = _table.read_table(lines, first, _table.detect_separator(lines[first]))
    if not table.columns or table.columns[0] != "epoch":
        raise ParseError("the first column is not `epoch`: not a Keras CSVLogger file")
    table, epoch = _table.rows_with_number(table, 0, "epoch")
    epochs = epoch.values.astype(np.int64)
    segment = _table.segments_from_counter(epochs, restart_on_equal=True)
    rows = _table.LongRows(epochs, table.lines, epoch=epoch.values, segment=segment)
    numeric_columns = {}
    for index, name in enumerate(table.columns[1:], start=1):
        column = numeric_columns[name] = _table.numeric(table.cells[index])
        rows.add(column.values, column.present, *split_and_metric(name), name)
    return _table.parsed_file(
        table, rows, numeric_columns, source.name, RunMeta(framework=FRAMEWORK, format=FORMAT)
    )
