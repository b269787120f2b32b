"""Weights & Biases panel CSV export ("Download CSV" of a line plot): `Step`, then per run and metric
`<run> - <metric>` with its `__MIN` / `__MAX` band columns (grouped runs: `Group: <name> - <metric>`).

One file usually holds several runs; `parsers.runs.split_runs` cuts it into one CSV per run before
this reader sees it. Read directly (`parsers.load`), a file with several runs gives its first run and a
warning naming the others. Empty cells are steps where that run logged nothing; the band columns
are W&B's sampling envelope, not values the run logged, so only the plain column is kept.
"""

from __future__ import annotations

import re

from parsers.formats import _table, tfevents
from parsers.model import ParseWarning, RunMeta
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "wandb_csv"
FRAMEWORK = "unknown"

STEP_COLUMN = "Step"
BAND_SUFFIXES = ("__MIN", "__MAX")
_RUN_METRIC = re.compile(r"^(?P<run>.+?) - (?P<metric>.+)$")


def run_columns(columns: list[str]) -> dict[str, dict[str, int]]:
    """Run name -> {metric -> column index} of the plain (not band) columns, in the header's order."""
    runs: dict[str, dict[str, int]] = {}
    for index, name in enumerate(columns):
        match = _RUN_METRIC.match(name)
        if index == 0 or match is None or name.endswith(BAND_SUFFIXES):
            continue
        runs.setdefault(match["run"], {})[match["metric"]] = index
    return runs


def sniff(source: SourceFile) -> float:
    columns = _table.header_columns(source)
    if len(columns) < 2 or columns[0] != STEP_COLUMN:
        return 0.0
    return 0.85 if run_columns(columns) else 0.0


def parse(source: SourceFile) -> ParsedFile:
    lines, first = _table.text_lines(source)
    table = _table.read_table(lines, first, _table.detect_separator(lines[first]))
    runs = run_columns(table.columns)
    if table.columns[:1] != [STEP_COLUMN] or not runs:
        raise ParseError("no `Step` column followed by `<run> - <metric>` columns: not a W&B panel export")
    table, _, steps = _table.rows_by_counter(table, STEP_COLUMN, "W&B panel export")
    run, metrics = next(iter(runs.items()))
    rows = _table.LongRows(steps, table.lines, segment=_table.segments_from_counter(steps))
    numeric_columns = {}
    for metric, index in metrics.items():
        column = numeric_columns[table.columns[index]] = _table.numeric(table.cells[index])
        rows.add(column.values, column.present, *tfevents.tag_split_metric(metric, set(metrics)), metric)
    parsed = _table.parsed_file(table, rows, numeric_columns, source.name, RunMeta(format=FORMAT))
    if len(runs) > 1:
        others = ", ".join(list(runs)[1:6]) + (" …" if len(runs) > 6 else "")
        note = (
            f"{len(runs)} runs in this export; read here: {run!r}. Upload it alone to see each run ({others})"
        )
        parsed.warnings.insert(0, ParseWarning(source.name, first + 1, note))
    return parsed
