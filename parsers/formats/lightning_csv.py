"""PyTorch Lightning CSVLogger `metrics.csv`: one sparse table, `epoch` and `step` columns.

Each row holds only what was logged at that moment (step rows carry `train_loss_step`, epoch rows
`train_loss_epoch`, `val_loss`, ...), so every NON-EMPTY cell becomes one metrics row and empty
cells are simply "not logged". `self.log(..., on_step=True, on_epoch=True)` writes two columns:
the `_step` one is THE curve (metric `loss`), the `_epoch` one becomes `loss_epoch`; when only
the `_epoch` column exists it is the curve. LearningRateMonitor columns (`lr-Adam`,
`lr-SGD/pg2`, `lr-SGD-momentum`) give the lr and name the optimizer.
"""

from __future__ import annotations

import re

from parsers.formats import _table
from parsers.model import LogLine, RunMeta
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "lightning_csv"
FRAMEWORK = "pytorch"

_LEVEL_SUFFIX = re.compile(r"^(?P<base>.+)_(?P<level>step|epoch)$")
_LR_MONITOR = re.compile(r"^lr-(?P<optimizer>[A-Za-z]\w*)(?:/pg(?P<group>\d+))?(?P<momentum>-momentum)?$")


def sniff(source: SourceFile) -> float:
    lines = _table.head_lines(source)
    if not lines or "," not in lines[0]:
        return 0.0
    columns = _table.split_header(lines[0], ",")
    if "step" not in columns or "epoch" not in columns:
        return 0.0
    suffixed = any(_LEVEL_SUFFIX.match(c) or _LR_MONITOR.match(c) for c in columns)
    sparse = any(",," in line or line.endswith(",") for line in lines[1:20])
    return 0.85 if suffixed or sparse else 0.6


def split_metric_for(column: str, columns: set[str]) -> tuple[str, str]:
    """(split, metric) of a Lightning column, given all column names of the file."""
    monitor = _LR_MONITOR.match(column)
    if monitor:
        if monitor["momentum"]:
            return "train", "momentum"
        group = monitor["group"]
        return "train", "lr" if group in (None, "0", "1") else f"lr_pg{group}"
    level = _LEVEL_SUFFIX.match(column)
    if level is None:
        return split_and_metric(column)
    split, metric = split_and_metric(level["base"])
    if level["level"] == "epoch" and f"{level['base']}_step" in columns:
        return split, f"{metric}_epoch"
    return split, metric


def parse(source: SourceFile) -> ParsedFile:
    lines, first = _table.text_lines(source)
    table = _table.read_table(lines, first, ",")
    table, _, steps = _table.rows_by_counter(table, "step", "Lightning metrics.csv")
    position = {name: i for i, name in enumerate(table.columns)}
    epoch = _table.numeric(table.cells[position["epoch"]]).values if "epoch" in position else None
    rows = _table.LongRows(steps, table.lines, epoch=epoch, segment=_table.segments_from_counter(steps))
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    header = LogLine(source.name, table.header_line, table.header_text)
    names = set(table.columns)
    numeric_columns = {}
    for name, index in position.items():
        if name in ("step", "epoch"):
            continue
        column = numeric_columns[name] = _table.numeric(table.cells[index])
        rows.add(column.values, column.present, *split_metric_for(name, names), name)
        monitor = _LR_MONITOR.match(name)
        if monitor:
            meta.set("optimizer", monitor["optimizer"].lower(), header)
    return _table.parsed_file(table, rows, numeric_columns, source.name, meta)
