"""Shared pieces of the plain-text log plug-ins (stdout of PyTorch-ecosystem trainers, Keras, MXNet).

Text logs write numbers the way Python prints them (`nan`, `-inf`, `1.000e-02`), prefix lines with
one of a handful of logging formats, and carry timestamps in several shapes (some without a year).
The plug-ins find their records with whole-buffer regexes and turn match offsets into line numbers
with `LineCounter`, which counts newlines in C between consecutive offsets instead of splitting the
file into a list of lines. `LineLayouts` and the readers after it serve large logs: lines that differ
only in their digits are interpreted once and their numbers read with numpy (print_style).
"""

from __future__ import annotations

import calendar
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from parsers.model import MAX_COUNTER, METRIC_COLUMNS, ParseWarning, RunMeta
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

# A number as Python/NumPy/PyTorch print it, `nan`/`inf` included (any case, optional sign). Its
# digit runs are possessive (`\d++`): `\d+\.?\d*` could split a long run of digits in as many
# ways as it has digits, and a pattern failing after it (digits glued to a letter) tried them all.
NUMBER = r"[-+]?(?:(?:\d++\.?\d*+|\.\d++)(?:[eE][-+]?\d++)?|(?i:nan|inf(?:inity)?))"

# Keys that describe speed, time or memory, never the training curve.
TIMING_KEYS = frozenset(
    {
        "time",
        "data",
        "data_time",
        "batch_time",
        "iter_time",
        "eta",
        "speed",
        "memory",
        "mem",
        "max_mem",
        "max_memory",
        "elapsed",
        "throughput",
        "img/s",
        "imgs/s",
        "samples/s",
        "samples/sec",
        "it/s",
        "s/it",
        "tokens/s",
        "tok/s",
        "time_cost",
        "runtime",
        "samples_per_second",
        "steps_per_second",
    }
)

_LOG_PREFIX = re.compile(
    r"""^\s*(?:
        \d{4}[-/]\d\d[-/]\d\d[\sT]\d\d:\d\d:\d\d(?:[,.]\d+)?\s*(?:-\s*)?   # 2021-05-07 19:45:33,123 -
            (?:[\w.\[\]:]+\s+-\s+)?                                     # mmdet - / train.py[line:123] -
            (?:(?:INFO|WARNING|WARN|DEBUG|ERROR|CRITICAL)\b\s*[:\-]?\s*)?
      | \[\d\d/\d\d\s\d\d:\d\d:\d\d[^\]\n]{0,60}\]:?\s*                 # detectron2 [11/18 18:14:12 d2.x]:
            (?:[\w.]+\s+(?:INFO|WARNING|DEBUG|ERROR):\s*)?              # [11/18 18:14:12] d2.x INFO:
      | (?:INFO|WARNING|DEBUG|ERROR)\s+-\s+\d\d/\d\d/\d\d\s+\d\d:\d\d:\d\d\s+-\s+[\d:]+\s+-\s+   # SwAV
      | (?:INFO|WARNING|DEBUG|ERROR|CRITICAL):[\w.<>]*:                 # logging.basicConfig default
      | (?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s\w{3}\s+\d+\s\d\d:\d\d:\d\d\s\d{4}\s*   # time.ctime()
    )""",
    re.VERBOSE,
)

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_abbr) if m}
_ISO_TIME = re.compile(r"(\d{4})[-/](\d\d)[-/](\d\d)[\sT](\d\d):(\d\d):(\d\d)(?:[,.](\d+))?")
_CTIME = re.compile(r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)\s(\w{3})\s+(\d+)\s(\d\d):(\d\d):(\d\d)\s(\d{4})")
_SHORT_YEAR = re.compile(r"(\d\d)/(\d\d)/(\d\d)\s+(\d\d):(\d\d):(\d\d)")  # SwAV: mm/dd/yy
_NO_YEAR = re.compile(r"\[(\d\d)/(\d\d)\s(\d\d):(\d\d):(\d\d)")  # detectron2: [mm/dd HH:MM:SS
_YEAR_SECONDS = 365 * 86400.0
MAX_WARNINGS = 20
STEP_OUT_OF_RANGE = "step number out of range; line skipped"


def sniff_head(source: SourceFile, pattern: re.Pattern[str], score: float, size: int = 1024 * 1024) -> float:
    """`score` when `pattern` occurs in the first `size` bytes (banners, nvidia-smi tables and
    progress bars can fill the first hundreds of KB of a stdout capture), else 0."""
    if source.looks_binary():
        return 0.0
    return score if pattern.search(source.head_text(size)) else 0.0


def to_float(text: str) -> float:
    """A printed number as float (`nan`, `-nan`, `inf`, `Infinity` included)."""
    return float(text)


def strip_log_prefix(line: str) -> str:
    """The message of a log line without its logging prefix (timestamp, logger name, level)."""
    found = _LOG_PREFIX.match(line)
    return line[found.end() :] if found else line


def has_log_prefix(line: str) -> bool:
    return _LOG_PREFIX.match(line) is not None


class LineCounter:
    """1-based line numbers of offsets into a text, for offsets visited in increasing order."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1

    def line(self, offset: int) -> int:
        if offset < self._offset:  # rare: a caller went back; count from the start again
            self._offset, self._line = 0, 1
        self._line += self._text.count("\n", self._offset, offset)
        self._offset = offset
        return self._line


def line_at(text: str, offset: int) -> str:
    """The whole line that holds `offset`."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end >= 0 else len(text)]


@cache
def _day_start(year: int, month: int, day: int) -> int:
    return calendar.timegm((year, month, day, 0, 0, 0, 0, 0, 0))


def _seconds(year: int, month: int, day: int, hour: int, minute: int, second: int, frac: str = "") -> float:
    if not (1 <= month <= 12 and 1 <= day <= 31 and hour < 24 and minute < 60 and second < 62):
        raise ValueError("not a time")
    whole = _day_start(year, month, day) + hour * 3600 + minute * 60 + second
    return whole + (float("0." + frac) if frac else 0.0)


def timestamp(line: str) -> tuple[float, bool] | None:
    """(seconds, has_year) of the timestamp near the start of a log line, or None. Recognised:
    `2021-05-07 19:45:33,123`, `2023/02/10 10:23:45`, `Wed Oct 28 02:19:41 2020`, SwAV's
    `09/02/20 14:18:08` and detectron2's yearless `[11/18 18:14:12`."""
    head = line[:80]
    try:
        if found := _ISO_TIME.search(head):
            y, mo, d, h, mi, s, frac = found.groups()
            return _seconds(int(y), int(mo), int(d), int(h), int(mi), int(s), frac or ""), True
        if found := _CTIME.search(head):
            month = _MONTHS.get(found[1].lower())
            if month is None:
                return None
            return _seconds(int(found[6]), month, int(found[2]), *map(int, found.groups()[2:5])), True
        if found := _NO_YEAR.match(head):
            return _seconds(2001, *map(int, found.groups())), False
        if found := _SHORT_YEAR.search(head):
            mo, d, y, h, mi, s = map(int, found.groups())
            return _seconds(2000 + y, mo, d, h, mi, s), True
    except (ValueError, OverflowError):  # 99/99 dates and the like in noise lines
        return None
    return None


class WallClock:
    """Seconds since the first timestamped record; yearless stamps that go back by months are taken
    to have crossed New Year. A log whose first 100 records carry no timestamp is taken to have
    none (trying every format on every line of a large log costs more than the rest of parsing)."""

    _GIVE_UP = 100

    def __init__(self) -> None:
        self._start: float | None = None
        self._last: float | None = None
        self._years = 0.0
        self._misses = 0

    def since_start(self, line: str) -> float:
        if self._start is None and self._misses >= self._GIVE_UP:
            return math.nan
        stamp = timestamp(line)
        if stamp is None:
            self._misses += 1
            return math.nan
        seconds, has_year = stamp
        if not has_year:
            seconds += self._years
            if self._last is not None and seconds < self._last - 180 * 86400.0:
                self._years += _YEAR_SECONDS
                seconds += _YEAR_SECONDS
        self._last = seconds
        if self._start is None:
            self._start = seconds
        return seconds - self._start


@dataclass(frozen=True)
class At:
    """Where the values of one record go in the metrics frame (None: not known)."""

    step: int
    line: int  # 1-based line in the file
    segment: int = 0
    epoch: float | None = None
    wall_time: float | None = None


class Problems:
    """Skipped lines of one file: all counted, at most MAX_WARNINGS reported plus one that counts
    the rest (a broken file should not bury the diagnosis under warnings)."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.count = 0
        self.notes: list[ParseWarning] = []  # file-level remarks (line 0), not skipped lines
        self._first: list[ParseWarning] = []

    def add(self, line: int, message: str) -> None:
        self.count += 1
        if len(self._first) < MAX_WARNINGS:
            self._first.append(ParseWarning(self.source_name, line, message))

    def note(self, message: str) -> None:
        self.notes.append(ParseWarning(self.source_name, 0, message))

    def warnings(self) -> list[ParseWarning]:
        rest = self.count - len(self._first)
        more = [ParseWarning(self.source_name, 0, f"{rest} more line(s) skipped")] if rest > 0 else []
        return [*self.notes, *self._first, *more]


class Restarts:
    """Segment counter: a new segment starts where the step goes back (a run appended to the same
    file, or resumed from an earlier checkpoint); an equal step does not count."""

    def __init__(self) -> None:
        self.segment = 0
        self._last: int | None = None

    def at(self, step: int) -> int:
        if self._last is not None and step < self._last:
            self.segment += 1
        self._last = step
        return self.segment


class Rows:
    """The tidy metrics frame of one text log. Values refer to their record's position (`At`) and to
    their (split, metric, name) label by number: a million values cost a million floats and ints,
    not a million tuples of strings, and the categorical columns are built from codes."""

    def __init__(self) -> None:
        self._positions: list[At] = []
        self._labels: dict[tuple[str, str, str], int] = {}
        self._position_of: list[int] = []
        self._label_of: list[int] = []
        self._values: list[float] = []
        self._out_of_range: list[int] = []  # lines whose step is beyond MAX_COUNTER (corrupt digits)
        self._columns: dict[str, np.ndarray] | None = None  # per value, when added with add_columns

    def __len__(self) -> int:
        return len(self._values)

    def add(self, at: At, split: str, metric: str, name: str, value: float) -> None:
        if abs(at.step) > MAX_COUNTER:
            if not self._out_of_range or self._out_of_range[-1] != at.line:
                self._out_of_range.append(at.line)
            return
        if not self._positions or self._positions[-1] is not at:
            self._positions.append(at)
        self._position_of.append(len(self._positions) - 1)
        self._label_of.append(self._labels.setdefault((split, metric, name), len(self._labels)))
        self._values.append(value)

    def add_columns(
        self,
        at: dict[str, np.ndarray],
        record: np.ndarray,
        labels: list[tuple[str, str, str]],
        label: np.ndarray,
        values: np.ndarray,
    ) -> None:
        """Many records at once, into empty Rows: the table `add` makes from the same values in the
        same order. `at` holds per-record columns (step, line, segment, epoch, wall_time; NaN for an
        unknown epoch or time), `record` and `label` give each value's record and (split, metric,
        name) in `labels`."""
        if len(self._values) or self._columns is not None:
            raise ValueError("add_columns needs empty Rows")
        out_of_range = np.abs(at["step"]) > MAX_COUNTER
        if out_of_range.any():
            dropped = out_of_range[record]
            lines = at["line"][record[dropped]]
            keep_line = np.ones(len(lines), dtype=bool)
            keep_line[1:] = lines[1:] != lines[:-1]
            self._out_of_range = lines[keep_line].tolist()
            record, label, values = record[~dropped], label[~dropped], values[~dropped]
        first = np.full(len(labels), len(label))  # where each label is first used
        for code in range(len(labels)) if len(labels) < 64 else []:
            used = np.flatnonzero(label == code)
            first[code] = used[0] if len(used) else len(label)
        if len(labels) >= 64:
            used, at_first = np.unique(label, return_index=True)
            first[used] = at_first
        in_order = np.argsort(first, kind="stable")[: int((first < len(label)).sum())]
        recode = np.zeros(len(labels), dtype=np.int64)
        recode[in_order] = np.arange(len(in_order))
        self._labels = {labels[code]: i for i, code in enumerate(in_order.tolist())}
        self._label_of = recode[label]
        self._values = values
        if len(record) and (record[1:] >= record[:-1]).all():  # in record order: repeat, not gather
            per_record = np.bincount(record, minlength=len(at["step"]))
            same = int(per_record[0]) if (per_record == per_record[0]).all() else per_record
            self._columns = {name: np.repeat(column, same) for name, column in at.items()}
        else:
            self._columns = {name: column[record] for name, column in at.items()}

    def labels(self) -> list[tuple[str, str, str]]:
        """(split, metric, name) of the values, in order of first appearance."""
        return list(self._labels)

    def rename_metrics(self, new_names: dict[tuple[str, str], str]) -> None:
        """Give (split, metric) other canonical names (labels that become equal are merged)."""
        merged: dict[tuple[str, str, str], int] = {}
        recode = []
        for split, metric, name in self._labels:
            label = (split, new_names.get((split, metric), metric), name)
            recode.append(merged.setdefault(label, len(merged)))
        self._labels = merged
        self._label_of = np.asarray(recode, dtype=np.int64)[np.asarray(self._label_of, dtype=np.int64)]

    def parsed(self, source_name: str, meta: RunMeta, problems: Problems, missing: str) -> ParsedFile:
        """The plug-in's result; ParseError saying what was `missing` when no value was read."""
        for line in self._out_of_range:
            problems.add(line, STEP_OUT_OF_RANGE)
        if not len(self):
            raise ParseError(missing)
        return ParsedFile(self.frame(source_name), meta, problems.warnings(), problems.count)

    def frame(self, source_name: str) -> pd.DataFrame:
        where = np.asarray(self._position_of, dtype=np.int64)
        count = len(self._positions)

        def position(field: str, dtype: type) -> np.ndarray:
            if self._columns is not None:
                return self._columns[field].astype(dtype, copy=False)
            values = (math.nan if (v := getattr(p, field)) is None else v for p in self._positions)
            return np.fromiter(values, dtype=dtype, count=count)[where]

        codes = np.asarray(self._label_of, dtype=np.int64)
        labels = list(self._labels)
        columns = {
            "step": position("step", np.int64),
            "epoch": position("epoch", np.float64),
            "split": _categorical([label[0] for label in labels], codes),
            "metric": _categorical([label[1] for label in labels], codes),
            "name": _categorical([label[2] for label in labels], codes),
            "value": np.asarray(self._values, dtype=np.float64),
            "wall_time": position("wall_time", np.float64),
            "line": position("line", np.int64),
            "segment": position("segment", np.int64),
            "source": _categorical([source_name], np.zeros(len(codes), dtype=np.int64)),
        }
        return pd.DataFrame({key: columns[key] for key in METRIC_COLUMNS})


def _categorical(per_label: list[str], codes: np.ndarray) -> pd.Categorical:
    categories = sorted(set(per_label))
    index = {category: i for i, category in enumerate(categories)}
    label_codes = np.asarray([index[value] for value in per_label], dtype=np.int64)
    return pd.Categorical.from_codes(label_codes[codes], categories=categories)


# --- whole-file readers ---------------------------------------------------------------------------
# Large logs repeat a few line layouts millions of times. Lines that are equal once every ASCII digit
# is read as `0` share a layout: every pattern here treats all digits alike (`\d`, `\w`, classes;
# no pattern names a digit), so a match found on one line of a layout is at the same offsets on all
# of them. The readers below interpret one line per layout with the per-line code and read the
# numbers of the others from those offsets, with numpy, over all lines at once.
DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_ZERO = ord("0")


@contextmanager
def normal_pages() -> Iterator[None]:
    """numpy's large arrays without madvise(MADV_HUGEPAGE) for a while (numpy's own switch, also set by
    NUMPY_MADVISE_HUGEPAGE=0 at import). Where transparent hugepages are `madvise` with synchronous
    defrag, as here, a fresh huge page can wait for the kernel to compact memory: the arrays of a 100 MB
    log cost 1.5 s of system time in the first parse of a process, against 0.1 s with normal pages.
    The switch is process-wide; another thread allocating meanwhile only gets normal pages too."""
    switch = getattr(np._core.multiarray, "_set_madvise_hugepage", None)
    if switch is None:
        yield
        return
    before = switch(False)
    try:
        yield
    finally:
        switch(before)


class Unsupported(Exception):
    """A file the whole-file reader does not handle exactly: the per-line reader reads it instead."""


class LineLayouts:
    """The lines of a text grouped by layout. `data` is the text as UTF-8: lines of one layout hold
    the same characters but ASCII digits, so a character offset in one is the same byte offset in all."""

    def __init__(self, text: str) -> None:
        try:
            self.data = text.encode("utf-8")
        except UnicodeEncodeError as err:  # lone surrogates: not from our decoding, but possible
            raise Unsupported("text not encodable") from err
        keys = self.data.translate(DIGITS_AS_ZERO).split(b"\n")
        ids = dict.fromkeys(keys, 0)
        for number, key in enumerate(ids):
            ids[key] = number
        self.layout = np.fromiter(map(ids.__getitem__, keys), np.int64, len(keys))
        self.keys = list(ids)
        lengths = np.fromiter(map(len, keys), np.int64, len(keys))
        self.byte_start = np.zeros(len(keys) + 1, dtype=np.int64)
        np.cumsum(lengths + 1, out=self.byte_start[1:])
        self.ascii = len(self.data) == len(text)
        self._text = text
        order = np.argsort(small_codes(self.layout, len(ids)), kind="stable")
        bounds = np.zeros(len(ids) + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.layout, minlength=len(ids)), out=bounds[1:])
        self._members = [order[bounds[i] : bounds[i + 1]] for i in range(len(ids))]
        self.bytes = np.frombuffer(self.data, dtype=np.uint8)

    def __len__(self) -> int:
        return len(self.layout)

    def members(self, layout: int) -> np.ndarray:
        """Indices (0-based line numbers) of the lines of a layout, in file order."""
        return self._members[layout]

    def line(self, index: int) -> str:
        if self.ascii:
            return self._text[self.byte_start[index] : self.byte_start[index + 1] - 1]
        start, end = self.byte_start[index], self.byte_start[index + 1] - 1
        return self.data[start:end].decode("utf-8")

    def char_starts(self, lines: list[int]) -> list[int]:
        """Character offsets in the text of the starts of some lines (in increasing order): the byte
        offset less the UTF-8 continuation bytes before it, counted from one line to the next."""
        starts = self.byte_start[lines].tolist()
        if self.ascii:
            return starts
        chars, counted, continuations = [], 0, 0
        for start in starts:
            continuations += int(np.count_nonzero((self.bytes[counted:start] & 0xC0) == 0x80))
            counted = start
            chars.append(start - continuations)
        return chars

    def find_all(self, words: tuple[str, ...], start: int = 0) -> list[int]:
        """Sorted offsets (from `start` on) of every occurrence of words that hold no digit and no line
        break: only the lines of the layouts that hold one are searched."""
        if any(c.isdigit() or c == "\n" for word in words for c in word):
            raise ValueError("find_all reads the layouts: words with digits or line breaks are not found")
        encoded = [word.encode("utf-8") for word in words]
        holding = [self.members(i) for i, key in enumerate(self.keys) if any(word in key for word in encoded)]
        lines = np.sort(np.concatenate(holding)).tolist() if holding else []
        offsets = set()
        for index, line_start in zip(lines, self.char_starts(lines), strict=True):
            line = self.line(index)
            for word in words:
                at = line.find(word)
                while at >= 0:
                    if line_start + at >= start:
                        offsets.add(line_start + at)
                    at = line.find(word, at + 1)
        return sorted(offsets)


def small_codes(codes: np.ndarray, count: int) -> np.ndarray:
    """Codes below `count` as int16 when they fit: numpy sorts those by radix, several times faster."""
    return codes.astype(np.int16) if count < 2**15 else codes


def byte_offset(line: str, char_offset: int) -> int:
    """Byte offset in the UTF-8 line of a character offset."""
    return char_offset if line.isascii() else len(line[:char_offset].encode("utf-8"))


_PLAIN_NUMBER = re.compile(r"[-+]?[0-9]*\.?[0-9]*")
_EXACT_DIGITS = 15  # an integer of up to 15 digits is exact in float64, and so is 10**15


def floats_at(layouts: LineLayouts, starts: np.ndarray, line: str, start: int, end: int) -> np.ndarray:
    """The number printed at characters [start, end) of `line` (one line of a layout) in each line of
    the layout starting at byte offsets `starts`, as float64, rounded exactly as `float()` rounds."""
    token = line[start:end]
    digits = sum(c.isdigit() for c in token)
    if not digits:  # nan / inf: the same on every line of the layout
        return np.full(len(starts), float(token))
    first = byte_offset(line, start)
    if not token.isascii():  # Unicode digits: float() reads them, numpy does not
        width = len(token.encode("utf-8"))
        cells = layouts.bytes[starts[:, None] + np.arange(first, first + width)]
        return np.array([float(bytes(cell).decode("utf-8")) for cell in cells], dtype=np.float64)
    if digits > _EXACT_DIGITS or not _PLAIN_NUMBER.fullmatch(token):  # an exponent, or long
        cells = np.ascontiguousarray(layouts.bytes[starts[:, None] + np.arange(first, first + len(token))])
        with np.errstate(over="ignore"):  # 1e400 is inf, as float() reads it
            return cells.view(f"S{len(token)}").ravel().astype(np.float64)
    # digits * 10**-decimals: both exact, so their quotient is the correctly rounded value, as float()'s
    whole = _digits_at(layouts, starts, first, token).astype(np.float64)
    decimals = len(token) - token.index(".") - 1 if "." in token else 0
    if decimals:
        whole /= 10.0**decimals
    return -whole if token.startswith("-") else whole


def _digits_at(layouts: LineLayouts, starts: np.ndarray, first: int, token: str) -> np.ndarray:
    """The digits of an ASCII token (at byte `first` of each line) read as one integer, signs and
    points skipped. Each digit column is gathered through a view that starts at its offset."""
    offsets = [first + offset for offset, char in enumerate(token) if "0" <= char <= "9"]
    # int32 holds 8 digits with their character codes (57 * 11111111) and halves the memory moved
    number = layouts.bytes[offsets[0] :][starts].astype(np.int32 if len(offsets) <= 8 else np.int64)
    for offset in offsets[1:]:
        number *= 10
        number += layouts.bytes[offset:][starts]
    number -= _ZERO * int("1" * len(offsets))  # the character codes' share: '0' in every digit
    return number.astype(np.int64, copy=False)


def ints_at(layouts: LineLayouts, starts: np.ndarray, line: str, start: int, end: int) -> np.ndarray:
    """The ASCII digits at characters [start, end) of each line as int64 (Unsupported otherwise)."""
    token = line[start:end]
    if not (token.isascii() and token.isdigit()) or end - start > _EXACT_DIGITS:
        raise Unsupported("not plain digits")
    return _digits_at(layouts, starts, byte_offset(line, start), token)


def stamps_at(layouts: LineLayouts, starts: np.ndarray, line: str) -> tuple[np.ndarray, bool]:
    """`timestamp()` of each of `lines` (one layout, `line` one of them): seconds (NaN where it gives
    None) and whether the stamps carry a year. Unsupported for the yearless detectron2 stamps."""
    head = line[:80]
    count = len(starts)

    def field(found: re.Match[str], group: int) -> np.ndarray:
        return ints_at(layouts, starts, line, *found.span(group))

    if found := _ISO_TIME.search(head):
        year, month, day, hour, minute, second = (field(found, g) for g in range(1, 7))
        fraction = np.zeros(count)
        if found[7]:
            digits = found.end(7) - found.start(7)
            fraction = field(found, 7) / 10.0**digits if digits <= 15 else None
            if fraction is None:
                raise Unsupported("long fraction")
        return _seconds_of(year, month, day, hour, minute, second, fraction), True
    if found := _CTIME.search(head):
        month = _MONTHS.get(found[1].lower())
        if month is None:
            return np.full(count, math.nan), True
        year, day, hour, minute, second = (field(found, g) for g in (6, 2, 3, 4, 5))
        return _seconds_of(year, np.full(count, month), day, hour, minute, second, np.zeros(count)), True
    if _NO_YEAR.match(head):
        raise Unsupported("yearless stamps")
    if found := _SHORT_YEAR.search(head):
        month, day, year, hour, minute, second = (field(found, g) for g in range(1, 7))
        return _seconds_of(2000 + year, month, day, hour, minute, second, np.zeros(count)), True
    return np.full(count, math.nan), True


def _seconds_of(
    year: np.ndarray,
    month: np.ndarray,
    day: np.ndarray,
    hour: np.ndarray,
    minute: np.ndarray,
    second: np.ndarray,
    fraction: np.ndarray,
) -> np.ndarray:
    """`_seconds` over arrays: NaN where it raises (an impossible time, a year outside 1..9999)."""
    valid = (month >= 1) & (month <= 12) & (day >= 1) & (day <= 31) & (hour < 24) & (minute < 60)
    valid &= (second < 62) & (year >= 1) & (year <= 9999)
    months = np.where(valid, (year - 1970) * 12 + month - 1, 0).astype("timedelta64[M]")
    first_day = (np.datetime64("1970-01", "M") + months).astype("datetime64[D]").astype(np.int64)
    whole = (first_day + day - 1) * 86400 + hour * 3600 + minute * 60 + second
    return np.where(valid, whole + fraction, math.nan)


def since_first(seconds: np.ndarray) -> np.ndarray:
    """`WallClock.since_start` over the records of a log in order (stamps that all carry a year)."""
    found = np.flatnonzero(~np.isnan(seconds))
    if not len(found) or found[0] >= WallClock._GIVE_UP:
        return np.full(len(seconds), math.nan)
    return seconds - seconds[found[0]]
