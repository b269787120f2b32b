"""Shared pieces of the large-model log plug-ins (Megatron-LM, DeepSpeed, nanoGPT, torchtitan).

Pre-training logs run to gigabytes of lines that repeat one layout millions of times, so records are
read in bulk, not one regex call at a time: the lines holding a record's literal are matched by one
`findall` (`record_lines`), numbers by NumPy's C reader (`floats`), timestamps as NumPy dates
(`wall_times`), and the frame is built from codes (`RecordRows`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import contains, itemgetter

import numpy as np
import pandas as pd

from parsers.formats._table import segments_from_counter
from parsers.hparams import hyperparams_from_text
from parsers.model import MAX_COUNTER, ParseWarning, RunMeta, frame_from_columns
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

HEAD_CHARS = 4 * 1024 * 1024  # where start-up echoes of arguments and config are looked for
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# one match per line: the first `YYYY-mm-dd HH:MM:SS` of the line and the first six digits of its fraction
# of a second, or empty groups
_STAMP_LINE = re.compile(
    r"^(?:[^\n]*?(\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d)(?:[.,](\d{1,6})\d*)?)?[^\n]*$", re.MULTILINE
)


def without_ansi(text: str) -> str:
    """The text without terminal colour codes (torchtitan colours every field unless told not to)."""
    return ANSI.sub("", text) if "\x1b" in text else text


def floats(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of printed numbers; thousands commas dropped, anything else not a number
    (`N/A`, an empty field) absent rather than an error. All at once by NumPy's C number reader (`nan`,
    `inf` included) when every text is one number, else one by one."""
    texts = list(texts)
    joined = " ".join(texts)
    if "," in joined:
        texts = [text.replace(",", "") for text in texts]
        joined = " ".join(texts)
    try:
        values = np.fromstring(joined, dtype=np.float64, sep=" ")
        if len(values) == len(texts):
            return values, np.ones(len(values), dtype=bool)
    except ValueError:
        pass
    values = np.full(len(texts), np.nan)
    present = np.zeros(len(texts), dtype=bool)
    for i, text in enumerate(texts):
        try:
            values[i] = float(text)
            present[i] = True
        except ValueError:
            continue
    return values, present


def wall_times(prefixes: Sequence[str]) -> np.ndarray | None:
    """Seconds since the first record, from the timestamp in each record's logging prefix
    (`[2024-06-13 10:11:12.123456]`, `[rank0]:[titan] 2025-11-25 19:45:01,441 - root - INFO - `);
    None when the first record has no timestamp. All records at once: one regex pass, NumPy parses the
    dates and times (`""`: no stamp, NaT) and the fractions of a second are added as microseconds."""
    if not prefixes or not prefixes[0].strip():
        return None
    rows = _STAMP_LINE.findall("\n".join(prefixes))
    if len(rows) != len(prefixes) or not rows[0][0]:
        return None
    fractions = list(map(itemgetter(1), rows))
    joined = " 0".join(fractions)
    if not joined.isascii():  # digits of another script: not a date NumPy reads
        return None
    digits = np.fromiter(map(len, fractions), dtype=np.int64, count=len(rows))
    microseconds = np.fromstring("0" + joined, dtype=np.float64, sep=" ").astype(np.int64)
    try:
        stamps = np.asarray(list(map(itemgetter(0), rows)), dtype="datetime64[us]")
    except ValueError:  # a 99th month in a noise line: no wall time rather than a wrong one
        return None
    stamps += (microseconds * 10 ** (6 - digits)).astype("timedelta64[us]")
    elapsed = (stamps - stamps[0]).astype(np.float64) / 1e6
    elapsed[np.isnat(stamps)] = np.nan
    return elapsed


def start(source: SourceFile, fmt: str, framework: str, text: str | None = None) -> tuple[str, RunMeta]:
    """(the log's text, its run facts) with the settings echoed at start-up read: `hyperparams_from_text`
    over the first HEAD_CHARS, since these trainers echo their arguments and config at start-up
    (Megatron's `arguments` block, nanoGPT's `Overriding:` lines, torchtitan's and DeepSpeed's config
    dumps), and a multi-GB log of records holds none further on. `text`: the log as the format reads it
    (default: the source's text)."""
    text = source.log_text if text is None else text
    meta = RunMeta(framework=framework, format=fmt)
    head = text if len(text) <= HEAD_CHARS else text[: text.rfind("\n", 0, HEAD_CHARS) + 1]
    hyperparams_from_text(head, source.name, meta)
    return text, meta


class RecordRows:
    """The tidy metrics frame from per-record arrays (step, line, wall time) and per-metric value columns
    with their `present` masks. Rows come out in file order (record by record, metrics in the order
    added) and the label columns are categoricals built from codes: no per-row strings."""

    def __init__(self, steps: np.ndarray, lines: np.ndarray, wall_time: np.ndarray | None = None) -> None:
        steps = np.asarray(steps, dtype=np.float64)  # as read: a corrupt 30-digit step is not an int64
        self.in_range = np.abs(steps) <= MAX_COUNTER
        self.steps = np.where(self.in_range, steps, 0).astype(np.int64)
        self.lines = np.asarray(lines, dtype=np.int64)
        self.wall_time = np.full(len(self.steps), np.nan) if wall_time is None else wall_time
        self._parts: list[tuple[np.ndarray, np.ndarray, tuple[str, str, str]]] = []

    def add(self, values: np.ndarray, present: np.ndarray, split: str, metric: str, name: str) -> None:
        rows = np.flatnonzero(present & self.in_range)
        if len(rows):
            self._parts.append((rows, np.asarray(values, dtype=np.float64)[rows], (split, metric, name)))

    def parsed(self, source_name: str, meta: RunMeta, missing: str) -> ParsedFile:
        """The plug-in's result; ParseError saying what was `missing` when no value was read."""
        if not self._parts:
            raise ParseError(missing)
        record, column, values = self._record_major()
        steps = self.steps[record]
        columns = {
            "step": steps,
            "epoch": np.full(len(record), np.nan),
            "value": values,
            "wall_time": self.wall_time[record],
            "line": self.lines[record],
            "segment": segments_from_counter(self.steps)[record],
            "source": pd.Categorical.from_codes(
                np.zeros(len(record), dtype=np.int8), categories=[source_name]
            ),
        }
        for position, key in enumerate(("split", "metric", "name")):
            labels = [part[2][position] for part in self._parts]
            categories = sorted(set(labels))
            codes = np.asarray([categories.index(label) for label in labels], dtype=column.dtype)
            columns[key] = pd.Categorical.from_codes(codes[column], categories=categories)
        skipped = len(self.in_range) - int(np.count_nonzero(self.in_range))
        warnings = [ParseWarning(source_name, 0, f"{skipped} record(s) with a step out of range skipped")]
        return ParsedFile(frame_from_columns(columns), meta, warnings if skipped else [], skipped)

    def _record_major(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(record, column, value) of every value, record by record and in a record in the order the
        columns were added: each column's values go to their place at once (the place of a record's
        first value, plus how many earlier columns the record has), so no sort."""
        per_record = np.zeros(len(self.steps), dtype=np.int64)
        for rows, _, _ in self._parts:
            per_record[rows] += 1
        place = np.cumsum(per_record) - per_record  # where each record's first value goes
        total = sum(len(rows) for rows, _, _ in self._parts)
        record = np.empty(total, dtype=np.int64)
        column = np.empty(total, dtype=np.int8 if len(self._parts) < 128 else np.int64)  # codes: one byte
        values = np.empty(total, dtype=np.float64)
        for i, (rows, part_values, _) in enumerate(self._parts):
            at = place[rows]
            record[at], column[at], values[at] = rows, i, part_values
            place[rows] += 1
        return record, column, values


@dataclass(frozen=True)
class LineRecord:
    """A kind of record line: a literal every such line holds, and a regex for the whole line whose
    groups are the fields to read (compiled at import, with a last-resort alternative that takes any
    other line, so that one `findall` gives one result per line)."""

    literal: str
    regex: re.Pattern[str]

    @classmethod
    def of(cls, literal: str, pattern: str) -> LineRecord:
        return cls(literal, re.compile(f"^(?:{pattern})$|^(.*)$", re.MULTILINE))


def record_lines(text: str, kinds: Sequence[LineRecord]) -> list[tuple[np.ndarray, list[list[str]]]]:
    """Per kind, (1-based line numbers, one list per group with its text in every record) of the lines
    that hold the kind's literal and match its regex. Lines are picked with a substring test and read
    with one `findall` over them all; columns are taken out of its rows by `itemgetter`: per record, no
    Python-level call."""
    lines = text.split("\n")
    found = []
    for kind in kinds:
        holding = np.fromiter(map(contains, lines, repeat(kind.literal)), dtype=bool, count=len(lines))
        chosen = np.flatnonzero(holding).tolist()
        rows = kind.regex.findall("\n".join([lines[i] for i in chosen]))
        if len(rows) != len(chosen):  # cannot happen (one result per line); never misplace a value
            rows = [kind.regex.match(lines[i]).groups() for i in chosen]  # type: ignore[union-attr]
        numbers = np.asarray(chosen, dtype=np.int64) + 1
        if any(map(itemgetter(-1), rows)):  # some lines hold the literal but are not records (checkpoints)
            records = [i for i, row in enumerate(rows) if not row[-1]]
            rows, numbers = [rows[i] for i in records], numbers[records]
        fields = range(kind.regex.groups - 1)  # the last group is the other lines' text
        found.append((numbers, [list(map(itemgetter(field), rows)) for field in fields]))
    return found


def in_file_order(lines: np.ndarray) -> np.ndarray | None:
    """The permutation that puts records of several kinds (concatenated) in file order; None: already."""
    if len(lines) < 2 or bool(np.all(lines[1:] > lines[:-1])):
        return None
    return np.argsort(lines, kind="stable")


def ordered_wall_times(prefixes: Sequence[str], order: np.ndarray | None) -> np.ndarray | None:
    """`wall_times` of records concatenated by kind, in file order (seconds since the first record)."""
    if order is None:
        return wall_times(prefixes)
    first = int(order[0])
    times = wall_times([prefixes[first], *prefixes])
    return None if times is None else times[1:][order]
