"""Baseline for the parser benchmark: Caffe's `tools/extra/parse_log.py` way of working, written anew.

    .venv/bin/python bench/baseline_parse_log.py LOG      # prints the row counts as JSON

Like parse_log.py it reads the log in text mode line by line, runs a handful of compiled regexes on
every line, decodes the glog timestamp of every line that has one into a `datetime` (int fields, the
year from the file's mtime unless the glog header states it, +1 whenever the month goes backwards) and
keeps the results as one dict per train iteration and one per test pass. Its figures are the "same
work done the usual way" reference that bench/parse_bench.py measures our parser against.

Two deliberate differences, so that its row counts equal those of `parsers` on the same log:
  * the float pattern also matches `nan`, `inf` and `-nan` (parse_log.py's `[\\.\\deE+-]+` misses
    them and silently drops those values, exactly the divergence case);
  * the smoothed display loss of `Iteration N ..., loss = X` is kept (key `SmoothedLoss`; parse_log.py
    drops it), an `lr = X` goes into the row of its own iteration (parse_log.py carries the previous
    one) and test outputs of test net #k > 0 get the suffix ` (test net #k)`.
No CSV is written: the benchmark compares parsing, not output.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from pathlib import Path

_FLOAT = r"([-+]?(?:[nN][aA][nN]|[iI][nN][fF]|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))"
_ITERATION = re.compile(r"Iteration (\d+)")
_DISPLAY_LOSS = re.compile(r"Iteration \d+.*, loss = " + _FLOAT)
_LR = re.compile(r"lr = " + _FLOAT)
_TRAIN_OUTPUT = re.compile(r"Train net output #(\d+): (\S+) = " + _FLOAT)
_TEST_OUTPUT = re.compile(r"Test net output #(\d+): (\S+) = " + _FLOAT)
_TEST_NET = re.compile(r"Testing net \(#(\d+)\)")
_LOG_CREATED = re.compile(r"Log file created at: (\d{4})/")
_NAN = float("nan")
# Keys of a row that are not logged outputs.
ROW_FIELDS = ("NumIters", "Seconds", "LearningRate", "SmoothedLoss")


class _Clock:
    """glog prints month and day but no year: it is carried here and bumped at each year change."""

    def __init__(self, year: int) -> None:
        self.year = year
        self.month = 0
        self.start: datetime | None = None

    def seconds(self, line: str) -> float | None:
        """Seconds since the first timestamp of the log, or None when the line has no glog prefix."""
        if len(line) < 21 or line[0] not in "IWEF" or not line[1:5].isdigit():
            return None
        fields = line.split()
        month, day = int(fields[0][1:3]), int(fields[0][3:5])
        clock, _, fraction = fields[1].partition(".")
        try:
            hour, minute, second = (int(x) for x in clock.split(":"))
            if month < self.month:
                self.year += 1
            self.month = month
            stamp = datetime(self.year, month, day, hour, minute, second, int(fraction or 0))
        except ValueError:  # 29 February of a year guessed wrong, or a cut-off line
            return None
        if self.start is None:
            self.start = stamp
        return (stamp - self.start).total_seconds()


def _first_year(path: Path) -> int:
    with path.open(errors="replace") as log:
        for _, line in zip(range(5), log, strict=False):
            match = _LOG_CREATED.search(line)
            if match:
                return int(match.group(1))
    return datetime.fromtimestamp(path.stat().st_mtime).year


def parse(path: str | Path) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Train rows (one dict per display iteration) and test rows (one per test pass)."""
    path = Path(path)
    clock = _Clock(_first_year(path))
    train_rows: list[dict[str, float]] = []
    test_rows: list[dict[str, float]] = []
    iteration, test_net = -1, 0
    train_row: dict[str, float] | None = None
    test_row: dict[str, float] | None = None

    def train_row_at(seconds: float | None) -> dict[str, float]:
        nonlocal train_row
        if train_row is None or train_row["NumIters"] != iteration:
            train_row = {"NumIters": iteration, "Seconds": _NAN if seconds is None else seconds}
            train_rows.append(train_row)
        return train_row

    with path.open(errors="replace") as log:
        for line in log:
            match = _ITERATION.search(line)
            if match:
                iteration = int(match.group(1))
            seconds = clock.seconds(line)
            if iteration < 0:
                continue
            match = _DISPLAY_LOSS.search(line)
            if match:
                train_row_at(seconds)["SmoothedLoss"] = float(match.group(1))
            match = _LR.search(line)
            if match:
                train_row_at(seconds)["LearningRate"] = float(match.group(1))
            match = _TRAIN_OUTPUT.search(line)
            if match:
                train_row_at(seconds)[match.group(2)] = float(match.group(3))
            match = _TEST_NET.search(line)
            if match:
                test_net = int(match.group(1))
                test_row = {"NumIters": iteration, "Seconds": _NAN if seconds is None else seconds}
                test_rows.append(test_row)
            match = _TEST_OUTPUT.search(line)
            if match and test_row is not None:
                name = match.group(2) + (f" (test net #{test_net})" if test_net else "")
                test_row[name] = float(match.group(3))
    return train_rows, test_rows


def counts(train_rows: list[dict[str, float]], test_rows: list[dict[str, float]]) -> dict[str, int]:
    """Values found, in the categories bench/parse_bench.py compares across parsers."""
    return {
        "train_loss": sum("SmoothedLoss" in row for row in train_rows),
        "train_outputs": sum(len(row.keys() - ROW_FIELDS) for row in train_rows),
        "test_outputs": sum(len(row.keys() - ROW_FIELDS) for row in test_rows),
        "lr": sum("LearningRate" in row for row in train_rows),
    }


if __name__ == "__main__":
    print(json.dumps(counts(*parse(sys.argv[1]))))
