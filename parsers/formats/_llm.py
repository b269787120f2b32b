"""Shared pieces of the large-model log plug-ins (Megatron-LM, DeepSpeed, nanoGPT, torchtitan).

Pre-training logs run to gigabytes of lines that repeat one layout millions of times, so records are
read in bulk, not one line at a time: each layout of record line is interpreted once and the numbers
of all its lines are read from the same offsets by NumPy (`read_records`), timestamps as integer
microseconds, and the frame is built from codes (`RecordRows`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pandas as pd

from parsers.formats._table import segments_from_counter
from parsers.formats._textlog import LineLayouts, Unsupported, byte_offset, floats_at, ints_at
from parsers.hparams import hyperparams_from_text
from parsers.model import MAX_COUNTER, ParseWarning, RunMeta, frame_from_columns
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

HEAD_CHARS = 4 * 1024 * 1024  # where start-up echoes of arguments and config are looked for
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def without_ansi(text: str) -> str:
    """The text without terminal colour codes (torchtitan colours every field unless told not to)."""
    return ANSI.sub("", text) if "\x1b" in text else text


def floats(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of printed numbers as `float()` reads them (blanks around a number allowed);
    thousands commas dropped, anything else not a number (`N/A`, an empty field) absent rather than an
    error. All at once by NumPy's C number reader (`nan`, `inf` included) when every text is one
    blank-free number, else one by one."""
    texts = list(texts)
    joined = " ".join(texts)
    if "," in joined:
        texts = [text.replace(",", "") for text in texts]
        joined = " ".join(texts)
    if len(joined.split()) == len(texts):  # one token per text: NumPy cannot shift a value to another
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


def start(source: SourceFile, fmt: str, framework: str) -> tuple[str, RunMeta]:
    """(the log's text, its run facts) with the settings echoed at start-up read: `hyperparams_from_text`
    over the first HEAD_CHARS (without colour codes), since these trainers echo their arguments and
    config at start-up (Megatron's `arguments` block, nanoGPT's `Overriding:` lines, torchtitan's and
    DeepSpeed's config dumps), and a multi-GB log of records holds none further on."""
    text = source.log_text
    meta = RunMeta(framework=framework, format=fmt)
    head = text if len(text) <= HEAD_CHARS else text[: text.rfind("\n", 0, HEAD_CHARS) + 1]
    hyperparams_from_text(without_ansi(head), source.name, meta)
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


# --- reading the record lines -------------------------------------------------------------------------
# A kind of record line is read by an interpreter: one line in, its `Reading` out (where the logging
# prefix ends, the span of each number). `read_records` calls it once per line layout (`LineLayouts`:
# lines that differ only in their ASCII digits) and reads every line's numbers from the same offsets
# with NumPy; files that reading cannot handle exactly (more than _MAX_LAYOUTS layouts, a number or a
# timestamp NumPy would not read as `float()` and NumPy's dates do) are read line by line with the same
# interpreter. Interpreters must not look at digits, except inside the `named` spans they report (a key
# such as `mtp_1 loss`): the lines of a layout are split by the digits in those spans first.

NO_STAMP = np.iinfo(np.int64).min  # a record whose prefix holds no timestamp
BAD_STAMP = NO_STAMP + 1  # a timestamp that is no date: the records read with it get no wall times
_MAX_LAYOUTS = 10_000  # more layouts than this: Python per layout costs as much as per line
_STAMP = re.compile(r"(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:[.,](\d{1,6})\d*)?")
_STRICT_NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


class Reading(NamedTuple):
    """How one record line reads: characters [0, prefix_end) are its logging prefix (where a timestamp
    is looked for), `numbers` the character span of each number by field name, `constants` values the
    same for every line that reads alike (a split code, a flag), `named` the spans whose digits change
    the reading (keys)."""

    prefix_end: int
    numbers: dict[str, tuple[int, int]]
    constants: dict[str, float]
    named: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class LineKind:
    """A kind of record line: a literal every such line holds (no digits) and its interpreter."""

    literal: str
    interpret: Callable[[str], Reading | None]

    @classmethod
    def of(cls, literal: str, pattern: str, flags: tuple[str, ...] = ()) -> LineKind:
        """A kind read by a regex over the whole line: group `prefix` ends the logging prefix, the other
        named groups are numbers (absent where they did not match), those in `flags` 1.0/0.0 constants
        (whether they matched). The regex must treat all digits alike (`\\d`, classes)."""
        if any(c.isdigit() for c in literal):
            raise ValueError("a kind's literal holds no digits: lines are grouped with digits as 0")
        regex = re.compile(pattern)
        names = [name for name in regex.groupindex if name != "prefix" and name not in flags]

        def interpret(line: str) -> Reading | None:
            found = regex.fullmatch(line)
            if found is None:
                return None
            numbers = {name: found.span(name) for name in names if found[name] is not None}
            return Reading(found.end("prefix"), numbers, {f: float(found[f] is not None) for f in flags})

        return cls(literal, interpret)


@dataclass
class Fields:
    """The records of one kind of line: 1-based line numbers in file order, (values, present) of each
    field, and each record's timestamp in microseconds since 1970 (NO_STAMP: none; BAD_STAMP: no date)."""

    lines: np.ndarray
    numbers: dict[str, tuple[np.ndarray, np.ndarray]]
    stamps: np.ndarray

    def where(self, keep: np.ndarray) -> Fields:
        """The records where `keep` is true."""
        numbers = {name: (values[keep], present[keep]) for name, (values, present) in self.numbers.items()}
        return Fields(self.lines[keep], numbers, self.stamps[keep])

    def number(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(values, present) of a field; absent everywhere when no record has it."""
        found = self.numbers.get(name)
        if found is None:
            return np.full(len(self.lines), np.nan), np.zeros(len(self.lines), dtype=bool)
        return found


def read_records(text: str, kinds: Sequence[LineKind]) -> list[Fields]:
    """The records of each kind of line in `text` (see the comment above)."""
    try:
        return _by_layout(text, kinds)
    except Unsupported:
        return [_by_line(text, kind) for kind in kinds]


def wall_times(stamps: np.ndarray) -> np.ndarray | None:
    """Seconds since the first record of records' stamps in file order; None when the first record
    has no stamp or some stamp is no date."""
    if not len(stamps) or stamps[0] == NO_STAMP or bool(np.any(stamps == BAD_STAMP)):
        return None
    elapsed = (stamps - stamps[0]).astype(np.float64) / 1e6
    elapsed[stamps == NO_STAMP] = np.nan
    return elapsed


def concatenated(parts: Sequence[Fields]) -> tuple[Fields, np.ndarray | None]:
    """Several kinds' records as one, in file order, and the permutation used (None: already)."""
    lines = np.concatenate([part.lines for part in parts])
    order = (
        None if len(lines) < 2 or bool(np.all(lines[1:] > lines[:-1])) else np.argsort(lines, kind="stable")
    )
    names = list(dict.fromkeys(name for part in parts for name in part.numbers))
    numbers = {}
    for name in names:
        columns = [part.number(name) for part in parts]
        values = np.concatenate([values for values, _ in columns])
        present = np.concatenate([present for _, present in columns])
        numbers[name] = (values, present) if order is None else (values[order], present[order])
    stamps = np.concatenate([part.stamps for part in parts])
    if order is not None:
        lines, stamps = lines[order], stamps[order]
    return Fields(lines, numbers, stamps), order


def _by_layout(text: str, kinds: Sequence[LineKind]) -> list[Fields]:
    layouts = LineLayouts(text)
    if len(layouts.keys) > _MAX_LAYOUTS:
        raise Unsupported("too many layouts")
    found = []
    for kind in kinds:
        literal = kind.literal.encode("utf-8")
        parts: list[tuple[np.ndarray, Reading, dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]] = []
        for number, key in enumerate(layouts.keys):
            if literal not in key:
                continue
            for members, line in _variants(layouts, layouts.members(number), kind.interpret):
                reading = kind.interpret(line)
                if reading is None:
                    continue
                starts = layouts.byte_start[members]
                numbers = {
                    name: _numbers_at(layouts, starts, line, *span) for name, span in reading.numbers.items()
                }
                for name, value in reading.constants.items():
                    numbers[name] = (np.full(len(members), value), np.ones(len(members), dtype=bool))
                parts.append(
                    (members, reading, numbers, _stamps_at(layouts, starts, line, reading.prefix_end))
                )
        found.append(_assembled(parts))
    return found


def _variants(
    layouts: LineLayouts, members: np.ndarray, interpret: Callable[[str], Reading | None]
) -> list[tuple[np.ndarray, str]]:
    """The lines of a layout split by the digits of their named spans, each part with one of its lines."""
    line = layouts.line(int(members[0]))
    reading = interpret(line)
    if reading is None or not reading.named:
        return [(members, line)]
    offsets = [i for first, end in reading.named for i in range(first, end) if "0" <= line[i] <= "9"]
    if not offsets:
        return [(members, line)]
    columns = np.asarray([byte_offset(line, i) for i in offsets])
    digits = layouts.bytes[layouts.byte_start[members][:, None] + columns]
    kinds, which = np.unique(digits, axis=0, return_inverse=True)
    which = which.ravel()
    variants = []
    for kind in range(len(kinds)):
        some = members[which == kind]
        variants.append((some, layouts.line(int(some[0]))))
    return variants


def _numbers_at(
    layouts: LineLayouts, starts: np.ndarray, line: str, start: int, end: int
) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of the number at characters [start, end) of every line of a layout: `floats`
    of each line's text there, read from the bytes; Unsupported for what only `float()` reads alike."""
    token = line[start:end]
    if "," in token:  # `floats` drops thousands commas: rare in the fields read, left to the line reader
        raise Unsupported("a number with commas")
    try:
        value = float(token)
    except ValueError:
        return np.full(len(starts), np.nan), np.zeros(len(starts), dtype=bool)
    if not any(c.isdigit() for c in token):  # nan, inf: the same on every line
        return np.full(len(starts), value), np.ones(len(starts), dtype=bool)
    if not _STRICT_NUMBER.fullmatch(token):  # `1_000`, blanks around it, digits of another script
        raise Unsupported("a number float() reads but the bytes reader may not")
    return floats_at(layouts, starts, line, start, end), np.ones(len(starts), dtype=bool)


def _stamps_at(layouts: LineLayouts, starts: np.ndarray, line: str, prefix_end: int) -> np.ndarray:
    """Microseconds since 1970 of the first `YYYY-mm-dd HH:MM:SS[.ffffff]` in the prefix of every line
    of a layout (the first six digits of the fraction count); Unsupported when one is no date."""
    found = _STAMP.search(line, 0, prefix_end)
    if found is None:
        return np.full(len(starts), NO_STAMP, dtype=np.int64)
    year, month, day, hour, minute, second = (
        ints_at(layouts, starts, line, *found.span(g)) for g in range(1, 7)
    )
    months = (year - 1970) * 12 + month - 1
    valid = (month >= 1) & (month <= 12) & (year >= 1) & (hour < 24) & (minute < 60) & (second < 60)
    first_day = (np.datetime64("1970-01", "M") + np.where(valid, months, 0).astype("timedelta64[M]")).astype(
        "datetime64[D]"
    )
    month_days = ((first_day.astype("datetime64[M]") + 1).astype("datetime64[D]") - first_day).astype(
        np.int64
    )
    if not bool(np.all(valid & (day >= 1) & (day <= month_days))):
        raise Unsupported("a timestamp that is no date")
    days = first_day.astype(np.int64) + day - 1
    micros = (((days * 24 + hour) * 60 + minute) * 60 + second) * 1_000_000
    if found[7] is not None:
        fraction = ints_at(layouts, starts, line, *found.span(7))
        micros += fraction * 10 ** (6 - len(found[7]))
    return micros


def _assembled(
    parts: list[tuple[np.ndarray, Reading, dict[str, tuple[np.ndarray, np.ndarray]], np.ndarray]],
) -> Fields:
    """One kind's records from its layouts' parts, in file order; fields in the order they first
    appear in the file (in a line, in the order its reading gives them)."""
    if not parts:
        return Fields(np.zeros(0, dtype=np.int64), {}, np.zeros(0, dtype=np.int64))
    members = np.concatenate([part[0] for part in parts])
    order = np.argsort(members, kind="stable")
    first_seen: dict[str, tuple[int, int]] = {}
    for part_members, reading, _, _ in parts:
        line = int(part_members[0])
        for position, name in enumerate([*reading.numbers, *reading.constants]):
            first_seen[name] = min(first_seen.get(name, (line, position)), (line, position))
    count = len(members)
    bounds = np.cumsum([0] + [len(part[0]) for part in parts])
    numbers = {}
    for name in sorted(first_seen, key=first_seen.__getitem__):
        values, present = np.full(count, np.nan), np.zeros(count, dtype=bool)
        for (_, _, read, _), begin, end in zip(parts, bounds[:-1], bounds[1:], strict=True):
            if name in read:
                values[begin:end], present[begin:end] = read[name]
        numbers[name] = (values[order], present[order])
    stamps = np.concatenate([part[3] for part in parts])[order]
    return Fields(members[order] + 1, numbers, stamps)


def _by_line(text: str, kind: LineKind) -> Fields:
    """`_by_layout` for one kind, line by line: every line holding the literal is interpreted."""
    lines: list[int] = []
    prefixes: list[str] = []
    texts: dict[str, tuple[list[int], list[str]]] = {}
    constants: dict[str, tuple[list[int], list[float]]] = {}
    order: dict[str, None] = {}  # every field in the order it first appears
    for index, line in enumerate(text.split("\n")):
        if kind.literal not in line or (reading := kind.interpret(line)) is None:
            continue
        record = len(lines)
        lines.append(index + 1)
        prefixes.append(line[: reading.prefix_end])
        for name, (first, end) in reading.numbers.items():
            column = texts.setdefault(name, ([], []))
            column[0].append(record)
            column[1].append(line[first:end])
        for name, value in reading.constants.items():
            column_of = constants.setdefault(name, ([], []))
            column_of[0].append(record)
            column_of[1].append(value)
        order.update(dict.fromkeys([*reading.numbers, *reading.constants]))
    count = len(lines)
    numbers = {}
    for name in order:
        values, present = np.full(count, np.nan), np.zeros(count, dtype=bool)
        if name in texts:
            where, read = texts[name]
            values[where], present[where] = floats(read)
        else:
            where, constant = constants[name]
            values[where], present[where] = constant, True
        numbers[name] = (values, present)
    return Fields(np.asarray(lines, dtype=np.int64), numbers, _stamp_micros(prefixes))


def _stamp_micros(prefixes: list[str]) -> np.ndarray:
    """`_stamps_at` of prefixes one by one, NumPy parsing the dates (all at once, or one by one to find
    the ones that are no date)."""
    found = [_STAMP.search(prefix) for prefix in prefixes]
    micros = np.full(len(prefixes), NO_STAMP, dtype=np.int64)
    stamped = [i for i, match in enumerate(found) if match is not None]
    dates = [found[i].expand(r"\1-\2-\3T\4:\5:\6") for i in stamped]  # type: ignore[union-attr]
    fractions = [found[i][7] or "" for i in stamped]  # type: ignore[index]
    try:
        whole = np.asarray(dates, dtype="datetime64[us]").astype(np.int64)
    except ValueError:  # a 99th month in a noise line: that record gets no wall time rather than a wrong one
        whole = np.asarray([_date_micros(date) for date in dates], dtype=np.int64)
    for i, fraction in enumerate(fractions):
        if not fraction:
            continue
        if fraction.isascii() and whole[i] != BAD_STAMP:  # digits of another script: not a date NumPy reads
            whole[i] += int(fraction) * 10 ** (6 - len(fraction))
        else:
            whole[i] = BAD_STAMP
    micros[stamped] = whole
    return micros


def _date_micros(date: str) -> int:
    try:
        return int(np.datetime64(date, "us").astype(np.int64))
    except ValueError:
        return int(BAD_STAMP)
