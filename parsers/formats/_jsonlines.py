"""Shared pieces of the JSON-based log formats (the leading underscore keeps this module out of
plug-in discovery).

Frameworks dump their scalars with Python's `json.dumps`, which writes bare `NaN`, `Infinity`
and `-Infinity` tokens for non-finite values. That is not standard JSON, but Python's own
`json.loads` reads those tokens back as floats, so a diverged run loads like any other: the
loader decodes line by line (files are a few MB) and counts the lines that do not decode (a run
killed mid-write leaves half a line) instead of failing on them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pandas as pd

from parsers.model import ParseWarning, RunMeta, frame_from_columns
from parsers.registry import ParsedFile
from parsers.source import ParseError

MAX_WARNINGS = 20

# (split, metric) for a key, or None when the key is not a metric (counters, timings, ...).
KeyRule = Callable[[str], "tuple[str, str] | None"]


@dataclass
class JsonLine:
    line: int  # 1-based line number in the file
    text: str
    obj: dict[str, Any]


class Problems:
    """Skipped lines of one file: counted, and reported as at most MAX_WARNINGS warnings plus one
    line that counts the rest (a broken file should not bury the diagnosis under warnings)."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.count = 0
        self._first: list[ParseWarning] = []

    def add(self, line: int, message: str) -> None:
        self.count += 1
        if len(self._first) < MAX_WARNINGS:
            self._first.append(ParseWarning(self.source_name, line, message))

    def warnings(self) -> list[ParseWarning]:
        rest = self.count - len(self._first)
        if rest <= 0:
            return list(self._first)
        return [*self._first, ParseWarning(self.source_name, 0, f"{rest} more line(s) skipped")]


def json_lines(lines: list[str], problems: Problems, first_line: int = 1) -> Iterator[JsonLine]:
    """The JSON objects of a JSON-lines text, in file order. Blank lines are ignored; a line that
    does not decode to an object is reported to `problems` and skipped."""
    for index, text in enumerate(lines, start=first_line):
        stripped = text.strip()
        if not stripped:
            continue
        try:
            obj = json.loads(stripped)
        except ValueError:
            problems.add(index, f"not a JSON object (cut off?): {stripped[:80]!r}")
            continue
        if isinstance(obj, dict):
            yield JsonLine(index, text, obj)
        else:
            problems.add(index, f"JSON value is not an object: {stripped[:80]!r}")


def sniff_objects(head: str, max_lines: int = 20) -> list[dict[str, Any]]:
    """The JSON objects among the first lines of a file (for cheap format sniffing). The last
    line of the head may be cut by the head size and is simply not decoded."""
    objects = []
    for text in head.splitlines()[:max_lines]:
        stripped = text.strip()
        if not stripped.startswith("{"):
            continue
        try:
            obj = json.loads(stripped)
        except ValueError:
            continue
        if isinstance(obj, dict):
            objects.append(obj)
    return objects


def as_number(value: Any) -> float | None:
    """A logged scalar as float: numbers, and numbers written as strings (fairseq writes
    `"loss": "9.276"`); `"nan"`/`"inf"` strings count. Booleans, None, lists and text do not."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_step(value: Any) -> int | None:
    """A step/iteration counter as int (None when missing or not a finite number)."""
    number = as_number(value)
    if number is None or not math.isfinite(number):
        return None
    return int(number)


class Restarts:
    """Segment counter: a new segment starts where the step goes back (a run appended to the same
    file, or a resume from an earlier checkpoint). Equal steps do not count (an eval row shares
    the step of the train row before it)."""

    def __init__(self) -> None:
        self.segment = 0
        self._last: int | None = None

    def at(self, step: int) -> int:
        if self._last is not None and step < self._last:
            self.segment += 1
        self._last = step
        return self.segment


@dataclass(frozen=True)
class At:
    """Where the values of one record go in the metrics frame (None: not known)."""

    step: int
    line: int  # 1-based line in the file
    segment: int = 0
    epoch: float | None = None
    wall_time: float | None = None


class MetricRows:
    """The tidy metrics frame, built one value at a time."""

    _FIELDS = ("step", "epoch", "split", "metric", "name", "value", "wall_time", "line", "segment")

    def __init__(self) -> None:
        self.columns: dict[str, list[Any]] = {key: [] for key in self._FIELDS}

    def __len__(self) -> int:
        return len(self.columns["step"])

    def add(self, at: At, split: str, metric: str, name: str, value: float) -> None:
        epoch = math.nan if at.epoch is None else at.epoch
        wall_time = math.nan if at.wall_time is None else at.wall_time
        row = (at.step, epoch, split, metric, name, value, wall_time, at.line, at.segment)
        for column, item in zip(self.columns.values(), row, strict=True):
            column.append(item)

    def add_record(self, at: At, obj: dict[str, Any], rule: KeyRule) -> None:
        """One row per numeric value whose key `rule` maps to a (split, metric)."""
        for key, raw in obj.items():
            target = rule(key)
            if target is None:
                continue
            value = as_number(raw)
            if value is not None:
                self.add(at, target[0], target[1], key, value)

    def frame(self, source_name: str) -> pd.DataFrame:
        return frame_from_columns({**self.columns, "source": [source_name] * len(self)})

    def parsed(self, source_name: str, meta: RunMeta, problems: Problems, missing: str) -> ParsedFile:
        """The plug-in's result; ParseError saying what was `missing` when no value was read."""
        if not len(self):
            raise ParseError(missing)
        return ParsedFile(self.frame(source_name), meta, problems.warnings(), problems.count)
