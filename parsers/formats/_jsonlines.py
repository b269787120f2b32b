"""Shared pieces of the JSON-based log formats (the leading underscore keeps this module out of
plug-in discovery).

Frameworks dump their scalars with Python's `json.dumps`, which writes bare `NaN`, `Infinity`
and `-Infinity` tokens for non-finite values. That is not standard JSON, but Python's own
`json.loads` reads those tokens back as floats, so a diverged run loads like any other: the
loader decodes line by line and counts the lines that do not decode (a run killed mid-write leaves
half a line) instead of failing on them. The decoded records are then read key by key (one numpy
column per key, with a mask of the records that logged it), so that building the tidy frame costs
a few vectorised operations per key rather than Python work per value.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

import numpy as np
import pandas as pd

from parsers.formats._table import segments_from_counter
from parsers.model import METRIC_COLUMNS, ParseWarning, RunMeta, as_counter, frame_from_columns
from parsers.names import capped_name
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
    if isinstance(value, float):
        return value
    if isinstance(value, int):
        try:
            return float(value)
        except OverflowError:  # an int past the float range reads as +-inf, as the JSON number 1e400 does
            return math.inf if value > 0 else -math.inf
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def as_step(value: Any) -> int | None:
    """A step/iteration counter as int (None when missing, not a finite number or out of range)."""
    number = as_number(value)
    return None if number is None else as_counter(number)


def numeric_column(objects: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """The values of `key` over all records as floats (numbers, and numbers written as strings as
    fairseq does; NaN and inf kept) and where it was logged: absent keys, `null`, text and lists
    are not values."""
    raw = [obj.get(key) for obj in objects]
    try:
        values = _floats(raw)
    except OverflowError:
        # an int beyond the float range reads as +-inf, as the JSON 1e400 does (and a list holding one: none)
        values = _floats([as_number(value) for value in raw])
    present = np.fromiter((value is not None for value in raw), dtype=bool, count=len(raw))
    for index in np.flatnonzero(present & np.isnan(values)):  # a logged NaN, or no number at all
        present[index] = _is_nan(raw[index])
    return values, present


def _floats(raw: list[Any]) -> np.ndarray:
    try:
        values = np.array(raw, dtype=np.float64)  # None -> nan; numeric strings convert
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.shape != (len(raw),):  # text, or lists (which numpy would stack into 2-D)
        numbers = pd.to_numeric(pd.Series(raw, dtype=object), errors="coerce")
        values = numbers.to_numpy(dtype=np.float64, na_value=np.nan)
    return values


def _is_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    return isinstance(value, str) and value.strip().lower() in ("nan", "-nan", "+nan")


def keys_of(objects: list[dict[str, Any]]) -> list[str]:
    """Every key of the records, in the order they first appear."""
    return list(dict.fromkeys(chain.from_iterable(objects)))


def counted_records(
    records: Iterable[JsonLine], key: str, problems: Problems
) -> tuple[list[JsonLine], np.ndarray]:
    """The records whose counter `key` holds a finite number, with those numbers (int64); the
    others are reported to `problems` and left out."""
    kept, counts = [], []
    for record in records:
        count = as_step(record.obj.get(key))
        if count is None:
            problems.add(record.line, f"no {key} number; line skipped")
            continue
        kept.append(record)
        counts.append(count)
    return kept, np.asarray(counts, dtype=np.int64)


class ColumnRows:
    """The tidy metrics frame, built from per-record arrays (step, line, ...) and per-key value
    columns; rows come out in file order (the values of record 1, then record 2, ...)."""

    def __init__(
        self,
        step: np.ndarray,
        line: np.ndarray | list[int],
        epoch: np.ndarray | None = None,
        wall_time: np.ndarray | None = None,
    ) -> None:
        steps = np.asarray(step, dtype=np.int64)
        unknown = np.full(len(steps), np.nan)
        self._records = {
            "step": steps,
            "epoch": unknown if epoch is None else np.asarray(epoch, dtype=np.float64),
            "wall_time": unknown if wall_time is None else np.asarray(wall_time, dtype=np.float64),
            # a new segment starts where the step goes back (a run appended or resumed earlier);
            # equal steps do not count: an eval record shares the step of the train record before it
            "segment": segments_from_counter(steps),
        }
        self._line = np.asarray(line, dtype=np.int64)
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray, str, str, str]] = []

    def add(
        self,
        values: np.ndarray,
        present: np.ndarray,
        split: str,
        metric: str,
        name: str,
        line: np.ndarray | None = None,
    ) -> None:
        """One column; `line` (per record) overrides the record's line, e.g. a key on a line of its own."""
        rows = np.flatnonzero(present)
        if len(rows):
            lines = (self._line if line is None else line)[rows]
            self._parts.append((rows, values[rows], lines, split, metric, name))

    def add_keys(self, objects: list[dict[str, Any]], rule: KeyRule, only: np.ndarray | None = None) -> None:
        """A column for every key that `rule` maps to a (split, metric), restricted to the records
        where `only` is True (records of one kind, e.g. mmdet's val lines)."""
        for key in keys_of(objects):
            target = rule(capped_name(key))  # a huge key would stay in the rules' caches
            if target is None:
                continue
            values, present = numeric_column(objects, key)
            self.add(values, present if only is None else present & only, target[0], target[1], key)

    def __len__(self) -> int:
        return sum(len(part[0]) for part in self._parts)

    def frame(self, source_name: str) -> pd.DataFrame:
        if not self._parts:
            return frame_from_columns({key: [] for key in METRIC_COLUMNS})
        rows = np.concatenate([part[0] for part in self._parts])
        order = np.argsort(rows, kind="stable")

        def labels(position: int) -> np.ndarray:
            pieces = [np.full(len(part[0]), part[position], dtype=object) for part in self._parts]
            return np.concatenate(pieces)[order]

        columns = {key: array[rows[order]] for key, array in self._records.items()}
        columns.update(
            value=np.concatenate([part[1] for part in self._parts])[order],
            line=np.concatenate([part[2] for part in self._parts])[order],
            split=labels(3),
            metric=labels(4),
            name=labels(5),
            source=np.full(len(rows), source_name, dtype=object),
        )
        return frame_from_columns(columns)

    def parsed(self, source_name: str, meta: RunMeta, problems: Problems, missing: str) -> ParsedFile:
        """The plug-in's result; ParseError saying what was `missing` when no value was read."""
        if not len(self):
            raise ParseError(missing)
        return ParsedFile(self.frame(source_name), meta, problems.warnings(), problems.count)
