"""Caffe glog training logs, any fork (BVLC, NVIDIA, Intel, SSD/SegNet branches, DIGITS).

Unlike Caffe's own `tools/extra/parse_log.py`, nothing is dropped: `loss = nan`/`inf` and the
softmax clamp 87.3365 stay as values, every `Train net output #k` and `Test net output #k` of every
test net is kept, `lr = ` lines, glog timestamps become wall time (across New Year: glog prints no
year), resumed or concatenated runs become segments, and the solver/net echo of the header fills
`RunMeta` with the line that states each fact.

Speed: a 100 MB log holds about a million records, and any per-record Python (a regex match, a
`float()` call) costs about a microsecond each. So the buffer is cut into 4 MiB chunks at line breaks,
scanned by one forked process per core, and each chunk is read with numpy over all its records at
once: the needles `Iteration ` and `net output #` are found by one pass over the bytes, numbers and
names are read from fixed-width windows after each hit, values are converted by numpy's
bytes-to-float cast, and line numbers and glog timestamps come from the offsets of the line breaks.
Only odd lines (test passes, unreadable values) get Python of their own. (Threads instead of
processes lose: each numpy call gives up the GIL and must win it back, so two threads convoy.)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import multiprocessing
import os
import re
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from multiprocessing.connection import Connection

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from parsers.background import has_waiting_tasks, run_waiting_tasks
from parsers.caffe_config import net_facts, solver_facts
from parsers.model import LogLine, ParseWarning, RunMeta, frame_from_columns
from parsers.names import canonical_metric
from parsers.prototxt import parse_prototxt
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "caffe_glog"
FRAMEWORK = "caffe"

CHUNK_BYTES = 4 * 1024 * 1024  # small enough to stay in the CPU caches while its records are read
_BATCH_BYTES = 128 * 1024 * 1024  # log handed to a worker at once (its records come back together)
_FIELDS = ("kind", "line", "step", "index", "value", "epoch", "seconds", "name")
_GLOG_PREFIX = re.compile(rb"(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.\-]+:\d+\] ")
_CAFFE_SOURCES = (b"solver.cpp", b"caffe.cpp", b"net.cpp", b"sgd_solver.cpp", b"layer_factory")
_NVCAFFE_EPOCH = re.compile(rb", ([\d.]+)/[\d.]+ep, loss = $")
_MAX_HEADER_BYTES = 8 * 1024 * 1024  # a net echo is at most a few MB (glog also cuts long messages)
_NEXT_GLOG_LINE = re.compile(rb"\n[IWEF]\d{4} \d\d:\d\d:\d\d")
# Weight files written by initialisation scripts (LSUV and the like) are a start, not pretraining.
_INIT_WEIGHTS = re.compile(r"lsuv|init|\.prototxt\.caffemodel$|random|xavier|msra", re.I)
_GLOG_LEVELS = np.array(list(b"IWEF"))
_LEAP_MONTH_START = np.array([0, 0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])
_DAY = 86400.0
_YEAR_WRAP = 150 * _DAY  # a clock jumping back by more than this crossed New Year
_MAX_WARNINGS = 20


def sniff(source: SourceFile) -> float:
    head = source.head_bytes()
    prefixed = len(_GLOG_PREFIX.findall(head, 0, 256 * 1024))
    if not prefixed:
        return 0.0
    if any(name in head for name in _CAFFE_SOURCES) or b"net output #" in head or b"Iteration " in head:
        return 0.95
    return 0.2


def parse(source: SourceFile) -> ParsedFile:
    data = source.data
    events = _Events.concat(_scan(data))
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    warnings: list[ParseWarning] = []
    events.markers += _startup_markers(data, events.markers)
    markers = _markers(sorted(events.markers, key=lambda m: m.offset), source.name)
    restarts = sorted(m.line for key in _RESTART_MARKERS for m in markers.get(key, []))
    _header_facts(data, events.markers, source.name, meta)
    _log_facts(data, markers, meta)
    if events.negative and not np.isin(events.kind, (0, 1, 2)).any():
        raise ParseError(
            f"every `Iteration` number is negative (the first at line {events.negative[0]}); Caffe counts "
            "iterations from 0, so the log was edited or corrupted"
        )
    if not len(events.step):
        fatal = markers.get("fatal")
        if fatal:
            raise ParseError(
                f"Caffe stopped with a fatal error before the first iteration (line {fatal[0].line}): "
                f"{fatal[0].text.strip()}"
            )
        raise ParseError("a Caffe log, but without any `Iteration N` or `net output` line")
    frame, skipped = _frame(events, restarts, source.name, warnings)
    del events
    for fatal in markers.get("fatal", [])[:3]:
        warnings.append(ParseWarning(source.name, fatal.line, f"Caffe stopped: {fatal.text.strip()}"))
    return ParsedFile(frame, meta, warnings, skipped)


@dataclass
class _Events:
    """Raw records of one or more chunks (kind: 0 display loss, 1 lr, 2 test pass, 3 train output,
    4 test output, -1 unreadable). `index` is the output number `#k`, or the test net of a test
    pass; `name` indexes `names` (output names; -1 for iteration records)."""

    kind: np.ndarray
    line: np.ndarray
    step: np.ndarray
    index: np.ndarray
    value: np.ndarray
    epoch: np.ndarray | None  # None: no record has one (only NVCaffe logs epochs)
    seconds: np.ndarray  # glog time of the year, NaN when the line has no glog prefix
    name: np.ndarray
    names: list[bytes]
    bad: list[int]  # lines that looked like data but could not be read
    negative: list[int]  # `Iteration -N` lines (Caffe counts from 0: an edited or corrupt log)
    lost: int  # `net output` lines that did not have the `name = value` shape
    newlines: int
    markers: list[_Marker]
    start: int = 0  # byte offset of the chunk in the file

    @classmethod
    def concat(cls, parts: list[_Events]) -> _Events:
        """One record set; output names are renumbered into one table."""
        table: dict[bytes, int] = {}
        lines_before = 0
        for part in parts:
            part.line += lines_before
            part.bad = [line + lines_before for line in part.bad]
            part.negative = [line + lines_before for line in part.negative]
            for marker in part.markers:
                marker.line += lines_before
                marker.offset += part.start
            lines_before += part.newlines
            remap = np.array([table.setdefault(n, len(table)) for n in part.names] + [-1], np.int32)
            part.name = remap[part.name]  # -1 picks the appended -1
        if any(part.epoch is not None for part in parts):
            for part in parts:
                if part.epoch is None:
                    part.epoch = np.full(len(part.kind), np.nan)
        arrays = {}
        for name in _FIELDS:  # one field at a time, freeing the parts' copy: bounded peak memory
            columns = [getattr(p, name) for p in parts]
            arrays[name] = None if columns[0] is None else np.concatenate(columns)
            for part in parts:
                setattr(part, name, None)
            _return_freed_memory()
        return cls(
            **arrays,
            names=list(table),
            bad=[x for p in parts for x in p.bad],
            negative=[x for p in parts for x in p.negative],
            lost=sum(p.lost for p in parts),
            newlines=sum(p.newlines for p in parts),
            markers=[m for p in parts for m in p.markers],
        )


def _return_freed_memory() -> None:
    """Hand freed heap memory back to the OS. The chunks' records are many arrays of about 1 MB,
    which glibc keeps in its heap after they are freed; without this a 1 GB log's records would
    count twice towards peak memory while they are concatenated."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


def _load_libc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
        return libc
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None


_LIBC = _load_libc()


def _scan(data: bytes | mmap.mmap) -> list[_Events]:
    """Scan the chunks, on all cores when the log is large. Workers are forked with the buffer (or
    mapped file) as an argument, so that they read it without a copy, and each parse has its own
    workers and its own buffer: no module state, so parses in several threads cannot mix their
    logs. When the caller left work to do while parsing, one core is left to it: this process does
    that work while the workers scan."""
    bounds = _chunks(data)
    leave_one = has_waiting_tasks()
    workers = min(len(bounds), _workers() - leave_one)
    if len(bounds) < 2 or workers < (1 if leave_one else 2):
        return [_scan_range(data, bound) for bound in bounds]
    batches = _batches(bounds, workers)
    context = multiprocessing.get_context("fork")
    jobs: list[tuple[multiprocessing.process.BaseProcess, Connection]] = []
    try:
        for worker in range(workers):
            receive, send = context.Pipe(duplex=False)
            args = (data, batches[worker::workers], send)
            process = context.Process(target=_scan_batches, args=args, daemon=True)
            process.start()
            send.close()
            jobs.append((process, receive))
        run_waiting_tasks()
        # batch k was handed to worker k % workers, which sends its batches in order
        return [events for k in range(len(batches)) for events in _receive(*jobs[k % workers])]
    finally:
        for process, receive in jobs:
            receive.close()
            if process.is_alive():
                process.kill()
            process.join()


def _scan_batches(data: bytes | mmap.mmap, batches: list[list[tuple[int, int]]], send: Connection) -> None:
    """A worker: the records of each of its batches, sent as soon as the batch is read."""
    try:
        for batch in batches:
            send.send((None, [_scan_range(data, bound) for bound in batch]))
    except Exception as err:  # handed to the parent, which raises it
        send.send((err, []))
    finally:
        send.close()


def _receive(process: multiprocessing.process.BaseProcess, receive: Connection) -> list[_Events]:
    """The next batch of a worker; its exception raised here; a worker that died is a ParseError."""
    try:
        error, events = receive.recv()
    except EOFError:
        process.join()
        raise ParseError(
            f"a process reading the log ended without a result (exit code {process.exitcode}); "
            "the machine may be out of memory"
        ) from None
    if error is not None:
        raise error
    return events


def _workers() -> int:
    """Worker processes: LOSS_DOCTOR_WORKERS, else one per core where fork exists."""
    setting = os.environ.get("LOSS_DOCTOR_WORKERS", "")
    if setting.isdigit():
        return max(1, int(setting))
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _batches(bounds: list[tuple[int, int]], workers: int) -> list[list[tuple[int, int]]]:
    """Consecutive chunks in the same number of batches for every worker, each about _BATCH_BYTES
    of log or less. Worker w reads batches w, w + workers, ... and sends the records of each batch
    when it is read, so that a worker holds one batch's records at a time."""
    total = bounds[-1][1] - bounds[0][0]
    count = min(len(bounds), workers * max(1, -(-total // (_BATCH_BYTES * workers))))
    edges = [len(bounds) * i // count for i in range(count + 1)]
    return [bounds[start:end] for start, end in pairwise(edges)]


def _scan_range(data: bytes | mmap.mmap, bounds: tuple[int, int]) -> _Events:
    """One chunk; a mapped file's pages are released afterwards, so memory stays at a chunk."""
    start, end = bounds
    events = _scan_chunk(data[start:end])
    events.start = start
    _release(data, start, end)
    return events


def _release(data: bytes | mmap.mmap, start: int, end: int) -> None:
    """Drop a mapped file's pages from this process's memory once read (the OS still caches them)."""
    if isinstance(data, mmap.mmap) and end > start:
        aligned = start - start % mmap.PAGESIZE
        data.madvise(mmap.MADV_DONTNEED, aligned, end - aligned)


def _chunks(data: bytes) -> list[tuple[int, int]]:
    """Chunk boundaries just after a line break, so that no line is cut in two."""
    bounds, start = [], 0
    while start < len(data):
        end = data.find(b"\n", min(start + CHUNK_BYTES, len(data))) + 1 or len(data)
        bounds.append((start, end))
        start = end
    return bounds or [(0, 0)]


def _scan_chunk(chunk: bytes) -> _Events:
    """Records of one chunk in line order; line numbers count from 1 at the chunk's start (`concat`
    shifts them). Sorting here, in the worker, leaves the parent only concatenation."""
    text = _Text.of(chunk)
    markers = _chunk_markers(text)
    kind, it_line, steps, index, it_values, epoch, it_bad, negative = _iterations(text)
    seconds = _glog_seconds(text.array, text.line_starts[it_line - 1])
    out_kind, out_line, numbers, out_values, name_codes, names, out_bad, lost = _outputs(text)
    n_out = len(out_kind)
    line = np.concatenate([it_line, out_line])
    order = np.argsort(line, kind="stable")

    def merged(iterations: np.ndarray, outputs: np.ndarray | float, dtype: type) -> np.ndarray:
        """A field of both record kinds in line order (`outputs` a fill value: they have none)."""
        if np.isscalar(outputs):
            outputs = np.full(n_out, outputs, dtype)
        return np.concatenate([iterations, outputs], dtype=dtype)[order]

    return _Events(
        kind=merged(kind, out_kind, np.int8),
        line=line[order],
        step=merged(steps, 0, np.int64),
        index=merged(index, numbers, np.int32),
        value=merged(it_values, out_values, np.float64),
        epoch=merged(epoch, np.nan, np.float64) if np.isfinite(epoch).any() else None,
        seconds=merged(seconds, np.nan, np.float64),
        name=merged(np.full(len(kind), -1), name_codes, np.int32),
        names=names,
        bad=sorted(it_bad + out_bad),
        negative=negative,
        lost=lost,
        newlines=len(text.newlines),
        markers=markers,
    )


_PAD = 512  # bytes after the chunk, so that fixed-width windows never run off its end
_PAD_BYTES = b"\n" * _PAD  # a line break: every token and name stops there, as at the chunk's end
_DIGITS = 18  # an `Iteration` or `#k` number longer than this does not fit int64 safely: unreadable
_TOKEN = 15  # number tokens up to this long are read from a narrow window (Caffe prints 6 digits)
_NAME = 256  # an output name longer than this (junk) sends the chunk's names the slow way
_WHITESPACE = b" \t\n\r\x0b\x0c"


def _byte_set(members: bytes) -> np.ndarray:
    table = np.zeros(256, bool)
    table[list(members)] = True
    return table


_ENDS_VALUE = _byte_set(_WHITESPACE + b",")  # `Iteration N, loss = X, ...`: regex `[^\s,]*`
_ENDS_OUTPUT = _byte_set(_WHITESPACE)  # `... output #k: name = X (* w = y loss)`: `[^\s]*`


@dataclass
class _Text:
    """A chunk as bytes and as numpy views, with where its lines break and its `=` signs are.
    Every lookup below is a numpy operation over all records at once: a 100 MB log has about a
    million records, and any per-record Python costs about a microsecond each. CRLF needs nothing
    of its own: `\r` ends a number token like any white space, and offsets stay the file's."""

    data: bytes
    padded: np.ndarray  # the chunk followed by _PAD line breaks
    words: np.ndarray  # the 8 bytes from every offset as one little-endian uint64
    newlines: np.ndarray
    equals: np.ndarray

    @classmethod
    def of(cls, chunk: bytes) -> _Text:
        buffer = chunk + _PAD_BYTES
        padded = np.frombuffer(buffer, np.uint8)
        words = np.ndarray((len(buffer) - 7,), "<u8", buffer, strides=(1,))
        array = padded[: len(chunk)]
        return cls(chunk, padded, words, np.flatnonzero(array == 10), np.flatnonzero(array == 61))

    @property
    def array(self) -> np.ndarray:
        return self.padded[: len(self.data)]

    @property
    def line_starts(self) -> np.ndarray:
        return np.concatenate([[0], self.newlines + 1])

    @cached_property
    def letter_n(self) -> np.ndarray:
        """Offsets of every `n`: both needles have one, and one pass finds them for both."""
        return np.flatnonzero(self.array == ord("n"))

    def find(self, needle: bytes) -> np.ndarray:
        """Offsets of every occurrence of `needle` (which holds an `n`): the candidates are cut
        down eight bytes at a time, so a long needle costs little more than a short one."""
        hits = self.letter_n - needle.index(b"n")
        hits = hits[hits >= 0]
        for start in range(0, len(needle), 8):
            hits = hits[self._piece_at(hits + start, needle[start : start + 8])]
        return hits

    def has(self, at: np.ndarray, literal: bytes) -> np.ndarray:
        """Whether `literal` starts at each offset (offsets before the chunk never match)."""
        found = at >= 0
        at = np.maximum(at, 0)
        for start in range(0, len(literal), 8):
            found &= self._piece_at(at + start, literal[start : start + 8])
        return found

    def _piece_at(self, at: np.ndarray, piece: bytes) -> np.ndarray:
        """Whether the up to eight bytes of `piece` start at each offset, compared as one uint64."""
        word = self.words[at]
        if len(piece) < 8:
            word &= np.uint64((1 << 8 * len(piece)) - 1)
        return word == np.uint64(int.from_bytes(piece, "little"))

    def window(self, at: np.ndarray, width: int) -> np.ndarray:
        """The `width` bytes from each offset, one row per offset (a copy)."""
        return sliding_window_view(self.padded, width)[at]

    def line_index(self, at: np.ndarray) -> np.ndarray:
        """0-based line of each offset."""
        return np.searchsorted(self.newlines, at)

    def line_end(self, line: np.ndarray) -> np.ndarray:
        """Offset of the line break ending each line (the chunk's length for an unended last line)."""
        ends = np.append(self.newlines, len(self.data))
        return ends[line]

    def next_equals(self, at: np.ndarray) -> np.ndarray:
        """Offset of the first `=` at or after each offset (past the chunk's end when none)."""
        equals = np.append(self.equals, len(self.data) + 1)
        return equals[np.searchsorted(self.equals, at)]

    def digits(self, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The decimal number starting at each offset, and its digit count (0: no number there;
        more than _DIGITS digits also count as none)."""
        window = self.window(at, _DIGITS + 1) - np.uint8(48)  # wraps non-digits to > 9
        is_digit = window <= 9
        is_digit[:, _DIGITS] = False
        length = np.argmin(is_digit, axis=1)
        value = np.zeros(len(at), np.int64)
        for column in range(int(length.max(initial=0))):
            running = column < length
            value[running] = value[running] * 10 + window[running, column]
        length[(length == _DIGITS) & (window[:, _DIGITS] <= 9)] = 0
        return value, length

    def floats(self, at: np.ndarray, ends: np.ndarray, width: int = _TOKEN) -> tuple[np.ndarray, list[int]]:
        """The number token starting at each offset, up to the first byte in `ends` (a subset of
        the bytes up to the space, plus maybe the comma), as float64 (nan, -nan, inf kept), and
        the rows whose token is not a number. Tokens are read from a window of `width` bytes;
        longer ones are read again from a window four times as wide, then by Python."""
        window = self.window(at, width + 1)
        window[:, width] = 0
        stops = window <= 32
        if ends[44]:
            stops |= window == 44
        length = np.argmax(stops, axis=1)
        # a first stop that is not a true end (a control byte inside the token) is read by Python
        odd = ~ends[window[np.arange(len(at)), length]] & (length < width)
        longer = np.flatnonzero(length == width)
        window = np.where(np.arange(width + 1) < length[:, None], window, 0).astype(np.uint8)
        values = np.full(len(at), np.nan)
        failed: list[int] = []
        fast = np.flatnonzero(~odd & (length < width))
        tokens = (window if len(fast) == len(at) else window[fast]).view(f"S{width + 1}").ravel()
        try:
            values[fast] = tokens.astype(np.float64)
        except ValueError:  # one bad token: find it, keep the rest
            for row, token in zip(fast.tolist(), tokens.tolist(), strict=True):
                try:
                    values[row] = float(token)
                except ValueError:
                    failed.append(row)
        if len(longer) and width < _TOKEN * 4:
            values[longer], more_failed = self.floats(at[longer], ends, width * 4)
            failed += longer[np.asarray(more_failed, np.int64)].tolist()
        elif len(longer):
            odd[longer] = True
        for row in np.flatnonzero(odd).tolist():
            start = end = int(at[row])
            while end < len(self.data) and not ends[self.data[end]]:
                end += 1
            try:
                values[row] = float(self.data[start:end])
            except ValueError:
                failed.append(row)
        return values, sorted(failed)


def _first_per_line(line: np.ndarray) -> np.ndarray:
    """Which hits (given by their sorted line indices) are the first of their line: a pattern
    matches once per line, as its regex consumed the rest of the line."""
    first = np.ones(len(line), bool)
    first[1:] = line[1:] != line[:-1]
    return first


def _iterations(text: _Text):
    """`Iteration N` lines: the display loss (`..., loss = X`), `lr = X`, or `Testing net (#k)`.
    What follows the number, up to the first `=` of the line, says which one; the value is the
    token after `= `."""
    hits = text.find(b"Iteration ")
    steps, length = text.digits(hits + 10)
    valid = length > 0
    minus = hits[~valid][text.has(hits[~valid] + 10, b"-")]
    minus = minus[text.digits(minus + 11)[1] > 0]
    negative = sorted(set((text.line_index(minus) + 1).tolist()))
    line = text.line_index(hits[valid])
    steps, after = steps[valid], (hits + 10 + length)[valid]
    first = _first_per_line(line)
    steps, after, line = steps[first], after[first], line[first]
    line_end = text.line_end(line)
    equals = text.next_equals(after)
    has_equals = equals < line_end
    value_at = np.where(has_equals, equals + 1, line_end)
    value_at += has_equals & (text.padded[value_at] == 32)
    is_loss = text.has(value_at - 7, b"loss = ") & (value_at - 7 >= after)
    is_lr = text.has(value_at - 5, b"lr = ") & (value_at - 5 >= after)
    kind = np.where(is_loss, 0, np.where(is_lr, 1, -1)).astype(np.int8)
    index = np.zeros(len(kind), np.int64)
    lines = line + 1
    bad: list[int] = []
    for i in np.flatnonzero(kind < 0):  # test passes and the odd line: few
        before = text.data[after[i] : value_at[i]]
        at = before.find(b"Testing net (#")
        if at >= 0:
            kind[i] = 2
            net = before[at + 14 :].split(b")", 1)[0]
            index[i] = int(net) if net.isdigit() and len(net) < 10 else 0  # 20 corrupt digits: as no number
        elif not before.endswith(b"step = "):
            # an `Iteration N` line that says nothing we know (e.g. cut off mid-line) is reported;
            # `MultiStep Status: Iteration N, step = k` is Caffe announcing an lr step, not data
            bad.append(int(lines[i]))
    value = np.full(len(kind), np.nan)
    has_value = np.flatnonzero((kind == 0) | (kind == 1))
    parsed, failed = text.floats(value_at[has_value], _ENDS_VALUE)
    value[has_value] = parsed
    kind[has_value[failed]] = -1
    bad += [int(lines[has_value[i]]) for i in failed]
    epoch = np.full(len(kind), np.nan)
    # NVCaffe: "Iteration 1000 (21.2 iter/s, 4.7s/100 iter), 1.1/10.7ep, loss = ..."
    for i in np.flatnonzero((kind == 0) & text.has(value_at - 11, b"ep, loss = ") & (value_at - 11 >= after)):
        match = _NVCAFFE_EPOCH.search(text.data, after[i], value_at[i])
        if match:
            epoch[i] = float(match.group(1))
    return kind, lines, steps, index, value, epoch, bad, negative


def _outputs(text: _Text):
    """`Train net output #k: name = X` and `Test net output #k: name = X (* w = y loss)` lines."""
    found = text.find(b"net output #")
    numbers, length = text.digits(found + 12)
    name_at = found + 12 + length + 2
    line = text.line_index(found)
    equals = text.next_equals(name_at)
    valid = (length > 0) & text.has(name_at - 2, b": ") & text.has(equals - 1, b" = ")
    valid &= (equals - 1 >= name_at) & (equals < text.line_end(line))
    keep = np.flatnonzero(valid)
    keep = keep[_first_per_line(line[keep])]
    hits, line, numbers, name_at, equals = found[keep], line[keep], numbers[keep], name_at[keep], equals[keep]
    is_train = text.has(hits - 6, b"Train ")
    values, failed = text.floats(equals + 2, _ENDS_OUTPUT)
    kind = np.where(is_train, 3, 4).astype(np.int8)
    kind[failed] = -1
    name_codes, names = _name_codes(text, name_at, equals - 1)
    bad = [int(line[i]) + 1 for i in failed]
    return kind, line + 1, numbers, values, name_codes, names, bad, len(found) - len(hits)


def _name_codes(text: _Text, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, list[bytes]]:
    """Dense codes (in order of first appearance) for the output names between `starts` and `ends`,
    and the names. The names' bytes are hashed as 64-bit words, and every row is then compared
    byte for byte with its code's first row, so that a hash collision cannot merge two names."""
    lengths = ends - starts
    width = 8 * -(-int(lengths.max(initial=0)) // 8)
    if width <= _NAME:
        window = text.window(starts, max(width, 8)).copy()
        window[np.arange(window.shape[1]) >= lengths[:, None]] = 0
        words = window.view(np.uint64)
        key = lengths.astype(np.uint64)
        for column in range(words.shape[1]):
            key = key * np.uint64(0x9E3779B97F4A7C15) ^ words[:, column]
        codes, first = _factorize(key.view(np.int64))
        if (window == window[first][codes]).all() and (lengths == lengths[first][codes]).all():
            return codes, [text.data[starts[i] : ends[i]] for i in first]
    table: dict[bytes, int] = {}
    names = [text.data[start:end] for start, end in zip(starts.tolist(), ends.tolist(), strict=True)]
    codes = np.fromiter((table.setdefault(name, len(table)) for name in names), np.int64, len(names))
    return codes, list(table)


def _glog_seconds(arr: np.ndarray, line_start: np.ndarray) -> np.ndarray:
    """Seconds since Jan 1 (of a leap year) from the `I1231 23:59:59.123456` at each line start;
    NaN where a line has no glog prefix. Read column by column, so memory stays at a few arrays."""
    if not len(line_start) or not len(arr):
        return np.full(len(line_start), np.nan)
    last = len(arr) - 1

    def byte(offset: int) -> np.ndarray:
        return arr[np.minimum(line_start + offset, last)].astype(np.int32)

    ok = np.isin(byte(0), _GLOG_LEVELS) & (byte(5) == 32) & (byte(8) == 58) & (byte(11) == 58)
    ok &= byte(14) == 46

    def number(*offsets: int) -> np.ndarray:
        nonlocal ok
        total = np.zeros(len(line_start), np.int32)
        for offset in offsets:
            digit = byte(offset) - 48
            ok &= (digit >= 0) & (digit <= 9)
            total = total * 10 + digit
        return total

    month = np.clip(number(1, 2), 1, 12)
    seconds = (_LEAP_MONTH_START[month] + number(3, 4) - 1) * _DAY
    seconds += number(6, 7) * 3600.0 + number(9, 10) * 60.0 + number(12, 13)
    seconds += number(15, 16, 17, 18, 19, 20) * 1e-6
    return np.where(ok, seconds, np.nan)


def _unwrap_years(seconds: np.ndarray) -> np.ndarray:
    """glog has no year: a clock that jumps back by months (Dec 31 -> Jan 1) gained a year."""
    finite = np.isfinite(seconds)
    if not finite.any() or np.nanmax(seconds) - np.nanmin(seconds) < _YEAR_WRAP:  # no jump possible
        return seconds
    known = seconds[finite]
    wraps = np.concatenate([[0], np.cumsum(np.diff(known) < -_YEAR_WRAP)])
    out = seconds.copy()
    out[finite] = known + wraps * 366 * _DAY
    return out


def _frame(events: _Events, restarts: list[int], name: str, warnings: list[ParseWarning]):
    """The metrics table. Large logs hold ten million records: columns are reordered, filtered and
    handed to the frame one at a time, each source array dropped as soon as it is used."""
    cols = {}
    for field in _FIELDS:  # the chunks were in line order, and so are their records
        cols[field] = getattr(events, field)
        setattr(events, field, None)
    kind, step = cols["kind"], cols["step"]
    cols["seconds"] = _unwrap_years(cols["seconds"])
    cols["segment"] = _segments(kind, cols["line"], step, restarts)

    # outputs take the step and time of the display line (train) or test pass (test) before them;
    # a test output remembers its test net (Caffe numbers outputs per net)
    net = np.zeros(len(kind), np.int64)
    for output_kind, owner_kind in ((3, 0), (4, 2)):
        owners = np.flatnonzero(kind == owner_kind)
        outs = np.flatnonzero(kind == output_kind)
        at = np.searchsorted(owners, outs) - 1
        kind[outs[at < 0]] = -1
        outs, owner = outs[at >= 0], owners[at[at >= 0]]
        for field in ("step", "epoch", "seconds"):
            if cols[field] is not None:
                cols[field][outs] = cols[field][owner]
        net[outs] = cols["index"][owner]
    may_repeat = _may_repeat(kind, step, cols["segment"])
    rows = np.flatnonzero((kind == 0) | (kind == 1) | (kind == 3) | (kind == 4))
    # one integer key per (kind, output name, output number, test net), built in place
    key_parts = [kind, cols.pop("name"), cols.pop("index"), net]
    key = np.zeros(len(kind), np.int64)
    for part in key_parts:
        key *= int(part.max(initial=0)) + 2
        key += part
        key += 1  # output names of iteration records are -1
    key_codes, first_rows = _dense_codes(key[rows])
    del key
    naming = [
        _naming(int(kind_), events.names[code] if code >= 0 else b"", int(number), int(net_))
        for kind_, code, number, net_ in (tuple(part[rows[i]] for part in key_parts) for i in first_rows)
    ]
    del key_parts, kind, net
    _return_freed_memory()
    seconds = cols["seconds"]
    finite = np.isfinite(seconds)
    start = seconds[np.argmax(finite)] if finite.any() else np.nan
    del finite
    columns = {}
    for column, field in (("step", "step"), ("epoch", "epoch"), ("value", "value"), ("wall_time", "seconds")):
        values = cols.pop(field)
        columns[column] = np.full(len(rows), np.nan) if values is None else values[rows]
    columns["wall_time"] -= start
    columns["line"] = cols.pop("line")[rows]
    columns["segment"] = cols.pop("segment")[rows]
    for column, position in (("split", 0), ("metric", 1), ("name", 2)):
        columns[column] = _categorical(key_codes, [n[position] for n in naming])
    columns["source"] = pd.Categorical.from_codes(np.zeros(len(rows), np.int8), [name])
    frame = frame_from_columns(columns)
    del columns
    duplicate = _duplicates(frame) if may_repeat else np.zeros(len(frame), bool)
    if duplicate.any():
        frame = frame[~duplicate].reset_index(drop=True)
        warnings.append(
            ParseWarning(name, 0, f"{int(duplicate.sum())} repeated records (multi-GPU threads) kept once")
        )
    for bad_line in sorted(events.bad)[:_MAX_WARNINGS]:
        warnings.append(
            ParseWarning(name, bad_line, "looks like training data but could not be read; skipped")
        )
    if len(events.bad) > _MAX_WARNINGS:
        warnings.append(ParseWarning(name, 0, f"{len(events.bad)} lines with unreadable numbers in all"))
    if events.lost:
        warnings.append(ParseWarning(name, 0, f"{events.lost} `net output` lines without `name = value`"))
    for negative in events.negative[:_MAX_WARNINGS]:
        warnings.append(
            ParseWarning(name, negative, "a negative iteration number (Caffe counts from 0); skipped")
        )
    return frame, len(events.bad) + events.lost + len(events.negative)


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Codes 0..k-1 in order of first appearance, and the row where each first appears."""
    codes, _ = pd.factorize(key)
    first = np.full(codes.max(initial=-1) + 1, len(codes), np.int64)
    np.minimum.at(first, codes, np.arange(len(codes)))
    return codes.astype(np.int64), first


def _may_repeat(kind: np.ndarray, step: np.ndarray, segment: np.ndarray) -> bool:
    """Repeats are only possible when some display line does not advance the step (cheap test)."""
    shown = np.flatnonzero(kind == 0)
    same_segment = segment[shown][1:] == segment[shown][:-1]
    return bool((np.diff(step[shown]) <= 0)[same_segment].any())


def _dense_codes(key: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Codes 0..k-1 for a large key array with few distinct values, and the first row of each,
    without a hash table the size of the array."""
    if not len(key) or int(key.max()) > 100_000_000:
        codes, first = _factorize(key)
        return codes, [int(i) for i in first]
    present = np.zeros(int(key.max()) + 1, bool)
    present[key] = True
    values = np.flatnonzero(present)
    dense = np.cumsum(present, dtype=np.int32) - 1
    codes = dense[key]
    return codes, [int(np.argmax(key == value)) for value in values]


def _duplicates(frame: pd.DataFrame) -> np.ndarray:
    """Rows repeating an earlier (segment, name, step): NVCaffe's solver threads print some lines
    twice."""
    key = frame["segment"].to_numpy() * (len(frame["name"].cat.categories) + 1)
    key = key + frame["name"].cat.codes.to_numpy().astype(np.int64)
    return pd.DataFrame({"k": key, "s": frame["step"].to_numpy()}).duplicated().to_numpy()


def _categorical(codes: np.ndarray, labels: list[str]) -> pd.Categorical:
    """Per-row labels from per-key labels, without building a million Python strings."""
    categories = sorted(set(labels))
    label_code = np.array([categories.index(x) for x in labels], np.min_scalar_type(-len(categories)))
    # the codes index `categories` by construction: pandas need not check a million of them
    return pd.Categorical.from_codes(label_code[codes] if len(codes) else codes, categories, validate=False)


def _naming(kind: int, output: bytes, number: int, net: int) -> tuple[str, str, str]:
    """(split, canonical metric, name as logged) of one kind of record."""
    if kind == 0:
        return "train", "loss", "Iteration loss"
    if kind == 1:
        return "train", "lr", "lr"
    index = str(number)
    text = output.decode("utf-8", "replace").strip()
    metric = canonical_metric(text)
    if kind == 3:
        return "train", "loss_raw" if metric == "loss" else metric, f"Train net output #{index}: {text}"
    suffix = f" (test net #{net})" if net else ""
    return "test", metric, f"Test net output #{index}: {text}{suffix}"


def _segments(kind: np.ndarray, line: np.ndarray, step: np.ndarray, restarts: list[int]) -> np.ndarray:
    """A new segment where the run restarted: a second solver set-up, `Resuming from` or
    `Restoring previous solver status` after data, an iteration counter that fell to less than
    half of the previous one, or a display loss whose iteration fell by a display interval or more
    (see `_resumed`). Threads of a multi-GPU run jitter by less (NVCaffe prints `Iteration 39, lr`
    after `Iteration 40, loss`)."""
    iteration = np.flatnonzero((kind >= 0) & (kind <= 2))
    if not len(iteration):
        return np.zeros(len(kind), np.int64)
    first_data = line[iteration[0]]
    marks = np.array(sorted(p for p in restarts if p > first_data), np.int64)
    it_pos, it_step = line[iteration], step[iteration]
    drop = np.flatnonzero(it_step[1:] < it_step[:-1] // 2) + 1
    drop = np.union1d(drop, _resumed(kind[iteration], it_step, drop))
    # a drop right after a restart marker is the same restart
    marked = np.searchsorted(marks, it_pos[drop]) > np.searchsorted(marks, it_pos[drop - 1])
    boundaries = np.unique(np.concatenate([marks, it_pos[drop[~marked]]]))
    return np.searchsorted(boundaries, line, side="right").astype(np.int64)


def _resumed(kind: np.ndarray, step: np.ndarray, halved: np.ndarray) -> np.ndarray:
    """Where a run resumed from a snapshot with its start-up lines cut away (so no restart marker):
    its display loss goes back by a display interval or more (the usual rise between display
    lines) and repeats iterations, which are the second run's values, not repeats. The restart is
    the first iteration record (a test pass, say) at or below the new display's iteration; drops
    that also halve the counter are found already (`halved`)."""
    shown = np.flatnonzero(kind == 0)
    change = np.diff(step[shown])
    rises = change[change > 0]
    display = int(np.median(rises)) if len(rises) else 1
    starts = []
    for j in np.flatnonzero(change <= -display).tolist():
        between = np.arange(shown[j] + 1, shown[j + 1] + 1)
        if np.isin(between, halved).any():
            continue
        starts.append(int(between[np.argmax(step[between] <= step[shown[j + 1]])]))
    return np.array(starts, np.int64)


# Lines that start or restart a run.
_RESTART_MARKERS = {
    "solver": b"Initializing solver from parameters",
    "resume": b"Resuming from ",
    "restore": b"Restoring previous solver status",
}
# Lines printed while a run starts, and the net echoes.
_STARTUP_MARKERS = {
    "net": b"Initializing net from parameters",
    "finetune": b"Finetuning from ",
    "copying": b"Copying source layer ",
    "solving": b"] Solving",
    "gpus": b"Using GPUs ",
    "weights_flag": b"-weights",
}
_MAX_MARKERS = 2000  # per kind and chunk: "Copying source layer" repeats once per layer
_STARTUP_WINDOW = 16 * 1024 * 1024
_TAIL_BYTES = 64 * 1024


@dataclass
class _Marker:
    """A rare line worth knowing (found with bytes.find, which is fast), with its place."""

    key: str
    line: int
    offset: int  # byte offset of the needle (in the chunk, then in the file after `concat`)
    text: str


def _chunk_markers(text: _Text) -> list[_Marker]:
    """Restart and fatal lines of one chunk (start-up lines are looked for later, only where a run
    starts)."""
    found = [(at, "fatal") for at in _fatal_lines(text.data)]
    for key, needle in _RESTART_MARKERS.items():
        found += [(int(at), key) for at in text.find(needle)[:_MAX_MARKERS]]
    found.sort()
    lines = text.line_index(np.array([at for at, _ in found], np.int64)) + 1
    return [_marker_at(text.data, at, key, int(line)) for (at, key), line in zip(found, lines, strict=True)]


def _fatal_lines(chunk: bytes) -> list[int]:
    """Starts of glog FATAL lines (`F0803 11:12:28.077312 ...`): the line before each `*** Check
    failure stack trace` banner, and any in a small chunk or in the last 64 KiB of a large one."""
    starts = set()
    for banner in _find_all(chunk, b"*** Check failure stack trace"):
        banner_line = chunk.rfind(b"\n", 0, banner) + 1
        starts.add(chunk.rfind(b"\n", 0, max(banner_line - 1, 0)) + 1)
    tail = 0 if len(chunk) <= _TAIL_BYTES * 16 else len(chunk) - _TAIL_BYTES
    starts.update(tail + at + 1 for at in _find_all(chunk[tail:], b"\nF"))
    if chunk[:1] == b"F":
        starts.add(0)
    return sorted(at for at in starts if chunk[at : at + 1] == b"F" and chunk[at + 1 : at + 5].isdigit())


def _marker_at(chunk: bytes, at: int, key: str, line: int) -> _Marker:
    start = chunk.rfind(b"\n", 0, at) + 1
    end = chunk.find(b"\n", at)
    text = chunk[start : end if end >= 0 else len(chunk)].decode("utf-8", "replace").rstrip("\r")
    return _Marker(key, line, at, text)


def _startup_markers(data: bytes | mmap.mmap, found: list[_Marker]) -> list[_Marker]:
    """Start-up lines (weights loaded, GPUs, `Solving`, net echoes) after the start of the file and
    after each restart, up to the run's first `Iteration` line (Caffe prints them all before it)."""
    windows = [(0, 1)] + [(m.offset, m.line) for m in found if m.key in _RESTART_MARKERS]
    markers: dict[int, _Marker] = {}
    for window_start, first_line in windows:
        window_end = data.find(b"Iteration ", window_start, window_start + _STARTUP_WINDOW)
        window = data[window_start : window_end if window_end >= 0 else window_start + _STARTUP_WINDOW]
        for key, needle in _STARTUP_MARKERS.items():
            for at in _find_all(window, needle):
                if window_start + at not in markers:
                    line = first_line + window.count(b"\n", 0, at)
                    marker = _marker_at(window, at, key, line)
                    marker.offset += window_start
                    markers[window_start + at] = marker
        _release(data, window_start, window_start + len(window))
    return sorted(markers.values(), key=lambda m: m.offset)


def _markers(found: list[_Marker], name: str) -> dict[str, list[LogLine]]:
    markers: dict[str, list[LogLine]] = {}
    for marker in found:
        markers.setdefault(marker.key, []).append(LogLine(name, marker.line, marker.text))
    return markers


def _find_all(data: bytes, needle: bytes) -> list[int]:
    """Offsets of `needle` in data (at most _MAX_MARKERS of them)."""
    found: list[int] = []
    at = data.find(needle)
    while at >= 0 and len(found) < _MAX_MARKERS:
        found.append(at)
        at = data.find(needle, at + len(needle))
    return found


def _header_facts(data: bytes | mmap.mmap, found: list[_Marker], name: str, meta: RunMeta) -> None:
    """The solver and net prototxt echoes that follow `Initializing ... from parameters:`."""
    blocks = [m for m in found if m.key in ("solver", "net")]
    for marker in [m for m in blocks if m.key == "solver"][:8] + [m for m in blocks if m.key == "net"][:8]:
        block_start = data.find(b"\n", marker.offset) + 1
        if not block_start:
            continue
        window = data[block_start - 1 : block_start - 1 + _MAX_HEADER_BYTES]
        end_match = _NEXT_GLOG_LINE.search(window)
        text = window[1 : end_match.start() + 1 if end_match else len(window)]
        try:
            message = parse_prototxt(text.decode("utf-8", "replace"), marker.line + 1)
        except ParseError:  # the log ends right after the header line
            continue
        if marker.key == "solver":
            solver_facts(message, meta, name)
        else:
            net_facts(message, meta, name)


def _log_facts(data: bytes | mmap.mmap, markers: dict[str, list[LogLine]], meta: RunMeta) -> None:
    """Facts stated by log lines rather than prototxt: weights loaded, resume, GPUs, net name."""
    if "solving" in markers:
        solving = markers["solving"][0]
        net_name = solving.text.split("] Solving", 1)[1].strip()
        if net_name:
            meta.set("net_name", net_name, solving)
    if "gpus" in markers:
        meta.hyperparams["gpus"] = markers["gpus"][0].text.split("Using GPUs ", 1)[1].strip()
    for key in ("resume", "restore"):
        if key in markers:
            meta.resumed = True
            meta.where.setdefault("resumed", markers[key][0])
    weights = _weights_source(markers)
    if weights is not None:
        path, where = weights
        if _INIT_WEIGHTS.search(path):
            meta.hyperparams["initial_weights"] = path
            meta.set("pretrained", False, where)
        else:
            meta.set("pretrained", True, where)
            meta.set("pretrained_from", path, where)
    elif "copying" in markers and not _is_nvcaffe(data):
        # BVLC logs "Copying source layer" only when copying trained weights in (-weights);
        # NVCaffe also logs it when the test net shares the train net's weights.
        meta.set("pretrained", True, markers["copying"][0])
    elif "solving" in markers and not meta.resumed:
        meta.set("pretrained", False, markers["solving"][0])


def _is_nvcaffe(data: bytes | mmap.mmap) -> bool:
    """NVCaffe tags its solver lines `[0.0] Iteration`; looked for only when the answer matters (a
    `Copying source layer` line with no weights file named), in the start-up window of the file."""
    found = data.find(b"[0.0] Iteration", 0, _STARTUP_WINDOW) >= 0
    _release(data, 0, min(len(data), _STARTUP_WINDOW))
    return found


def _weights_source(markers: dict[str, list[LogLine]]) -> tuple[str, LogLine] | None:
    if "finetune" in markers:
        line = markers["finetune"][0]
        return line.text.split("Finetuning from ", 1)[1].strip(), line
    for line in markers.get("weights_flag", []):
        match = re.search(r"-weights[= ]+(\S+)", line.text)
        if match:
            return match.group(1), line
    return None
