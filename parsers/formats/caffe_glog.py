"""Caffe glog training logs, any fork (BVLC, NVIDIA, Intel, SSD/SegNet branches, DIGITS).

Unlike Caffe's own `tools/extra/parse_log.py`, nothing is dropped: `loss = nan`/`inf` and the
softmax clamp 87.3365 stay as values, every `Train net output #k` and `Test net output #k` of every
test net is kept, `lr = ` lines, glog timestamps become wall time (across New Year: glog prints no
year), resumed or concatenated runs become segments, and the solver/net echo of the header fills
`RunMeta` with the line that states each fact.

Speed: a 100 MB log holds about a million interesting lines, and per-line Python (or a regex with
alternations) costs about a microsecond each. So the buffer is cut into chunks at line breaks and each
chunk is split by two single-literal patterns (`Iteration N...`, `net output #k: ...`); the text
between matches gives line numbers (newline counts) and line starts (glog timestamps are then read
for all events at once with numpy). Values are converted in bulk by numpy.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import mmap
import multiprocessing
import os
import re
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import compress, count, repeat

import numpy as np
import pandas as pd

from parsers.caffe_config import net_facts, solver_facts
from parsers.model import LogLine, ParseWarning, RunMeta, frame_from_columns
from parsers.names import canonical_metric
from parsers.prototxt import parse_prototxt
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "caffe_glog"
FRAMEWORK = "caffe"

CHUNK_BYTES = 16 * 1024 * 1024
_SHARED = b""  # the buffer forked workers read (set only while a pool runs)
_FIELDS = ("kind", "line", "step", "index", "value", "epoch", "seconds", "name")
_GLOG_PREFIX = re.compile(rb"(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+ +\d+ [\w.\-]+:\d+\] ")
_CAFFE_SOURCES = (b"solver.cpp", b"caffe.cpp", b"net.cpp", b"sgd_solver.cpp", b"layer_factory")
# Every group always takes part, so re.split's pieces have fixed strides; few groups, few objects.
_ITERATION = re.compile(rb"Iteration (\d+)([^\n=]*=? ?)([^\s,]*)[^\n]*")
_OUTPUT = re.compile(rb"net output #(\d+): ([^\n=]*) = ([^\s]*)[^\n]*")
_NVCAFFE_EPOCH = re.compile(rb", ([\d.]+)/[\d.]+ep, loss = $")
_MAX_HEADER_BYTES = 8 * 1024 * 1024  # a net echo is at most a few MB (glog also cuts long messages)
_NEXT_GLOG_LINE = re.compile(rb"\n[IWEF]\d{4} \d\d:\d\d:\d\d")
# Weight files written by initialisation scripts (LSUV and the like) are a start, not pretraining.
_INIT_WEIGHTS = re.compile(r"lsuv|init|\.prototxt\.caffemodel$|random|xavier|msra", re.I)
_GLOG_LEVELS = np.array(list(b"IWEF"))
_LEAP_MONTH_START = np.array([0, 0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335])
_DAY = 86400.0
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
    epoch: np.ndarray
    seconds: np.ndarray  # glog time of the year, NaN when the line has no glog prefix
    name: np.ndarray
    names: list[bytes]
    bad: list[int]  # lines that looked like data but could not be read
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
            for marker in part.markers:
                marker.line += lines_before
                marker.offset += part.start
            lines_before += part.newlines
            remap = np.array([table.setdefault(n, len(table)) for n in part.names] + [-1], np.int64)
            part.name = remap[part.name]  # -1 picks the appended -1
        arrays = {}
        for name in _FIELDS:  # one field at a time, freeing the parts' copy: bounded peak memory
            arrays[name] = np.concatenate([getattr(p, name) for p in parts])
            for part in parts:
                setattr(part, name, None)
            _return_freed_memory()
        return cls(
            **arrays,
            names=list(table),
            bad=[x for p in parts for x in p.bad],
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
    """Scan the chunks, on all cores when the log is large (a 2-core machine halves the time).
    Workers are forked so that they read the parent's buffer (or mapped file) without a copy."""
    global _SHARED
    bounds = _chunks(data)
    workers = min(len(bounds), _workers())
    if workers < 2:
        return [_scan_range(data, bound) for bound in bounds]
    _SHARED = data
    try:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("fork")) as pool:
            return list(pool.map(_scan_shared, bounds))
    finally:
        _SHARED = b""


def _workers() -> int:
    """Worker processes: LOSS_DOCTOR_WORKERS, else one per core where fork exists."""
    setting = os.environ.get("LOSS_DOCTOR_WORKERS", "")
    if setting.isdigit():
        return max(1, int(setting))
    if "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _scan_shared(bounds: tuple[int, int]) -> _Events:
    return _scan_range(_SHARED, bounds)


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
    """Records of one chunk; line numbers count from 1 at the chunk's start (`concat` shifts them)."""
    arr = np.frombuffer(chunk, dtype=np.uint8)
    line_starts = np.concatenate([[0], np.flatnonzero(arr == 10) + 1])
    markers = _chunk_markers(chunk, line_starts)
    if b"\r" in chunk:  # CRLF: same line breaks, so line numbers and markers stay right
        chunk = chunk.replace(b"\r\n", b"\n")
        arr = np.frombuffer(chunk, dtype=np.uint8)
        line_starts = np.concatenate([[0], np.flatnonzero(arr == 10) + 1])
    parts = _ITERATION.split(chunk)
    it_line = _line_numbers(parts[0::4])
    kind, index, it_values, epoch, it_bad = _iterations(parts[2::4], parts[3::4], it_line)
    steps = np.fromiter(map(int, parts[1::4]), np.int64, len(kind))
    seconds = _glog_seconds(arr, line_starts[it_line - 1])

    parts = _OUTPUT.split(chunk)
    out_line = _line_numbers(parts[0::4])
    n_out = len(out_line)
    is_train = np.fromiter(map(bytes.endswith, parts[0::4], repeat(b"Train ")), bool, n_out)
    out_values, failed = _floats(parts[3::4])
    out_kind = np.where(is_train, 3, 4).astype(np.int8)
    out_kind[failed] = -1
    name_codes, names = _codes(parts[2::4])
    # `#k` is fixed per output of a net: read it once per (name, train/test)
    output_key, first = _factorize(name_codes * 2 + is_train)
    numbers = np.array([int(parts[1 + 4 * i]) for i in first], np.int64)
    return _Events(
        kind=np.concatenate([kind, out_kind]),
        line=np.concatenate([it_line, out_line]),
        step=np.concatenate([steps, np.zeros(n_out, np.int64)]),
        index=np.concatenate([index, numbers[output_key] if n_out else np.zeros(0, np.int64)]),
        value=np.concatenate([it_values, out_values]),
        epoch=np.concatenate([epoch, np.full(n_out, np.nan)]),
        seconds=np.concatenate([seconds, np.full(n_out, np.nan)]),
        name=np.concatenate([np.full(len(kind), -1, np.int64), name_codes]),
        names=names,
        bad=it_bad + [int(out_line[i]) for i in failed],
        lost=chunk.count(b"net output #") - n_out,
        newlines=len(line_starts) - 1,
        markers=markers,
    )


def _line_numbers(between: list[bytes]) -> np.ndarray:
    """1-based line of each match, from the newlines in the text between matches."""
    n = len(between) - 1
    return 1 + np.cumsum(np.fromiter(map(bytes.count, between, repeat(b"\n")), np.int64, n + 1))[:n]


def _iterations(before: list[bytes], values: list[bytes], lines: np.ndarray):
    """`Iteration N` lines: the display loss (`..., loss = X`), `lr = X`, or `Testing net (#k)`.
    `before` is the text up to the first `=`, so its ending says which one."""
    n = len(before)
    is_loss = np.fromiter(map(bytes.endswith, before, repeat(b"loss = ")), bool, n)
    is_lr = np.fromiter(map(bytes.endswith, before, repeat(b"lr = ")), bool, n)
    kind = np.where(is_loss, 0, np.where(is_lr, 1, -1)).astype(np.int8)
    index = np.zeros(n, np.int64)
    bad: list[int] = []
    for i in np.flatnonzero(kind < 0):  # test passes and the odd line: few
        text = before[i]
        at = text.find(b"Testing net (#")
        if at >= 0:
            kind[i] = 2
            net = text[at + 14 :].split(b")", 1)[0]
            index[i] = int(net) if net.isdigit() else 0
        elif not text.endswith(b"step = "):
            # an `Iteration N` line that says nothing we know (e.g. cut off mid-line) is reported;
            # `MultiStep Status: Iteration N, step = k` is Caffe announcing an lr step, not data
            bad.append(int(lines[i]))
    value = np.full(n, np.nan)
    has_value = np.flatnonzero(kind <= 1)
    has_value = has_value[kind[has_value] >= 0]
    parsed, failed = _floats(list(compress(values, (kind == 0) | (kind == 1))))
    value[has_value] = parsed
    kind[has_value[failed]] = -1
    bad += [int(lines[has_value[i]]) for i in failed]
    epoch = np.full(n, np.nan)
    if any(b"ep, loss" in b for b in before[:1000]) or any(
        b.endswith(b"ep, loss = ") for b in before[-1000:]
    ):
        # NVCaffe: "Iteration 1000 (21.2 iter/s, 4.7s/100 iter), 1.1/10.7ep, loss = ..."
        for i in np.flatnonzero(kind == 0):
            match = _NVCAFFE_EPOCH.search(before[i])
            if match:
                epoch[i] = float(match.group(1))
    return kind, index, value, epoch, sorted(bad)


def _floats(tokens: list[bytes]) -> tuple[np.ndarray, list[int]]:
    """Bulk bytes -> float64 (nan, -nan, inf kept); tokens that are not numbers become NaN and
    their indices are returned so that their lines can be reported as skipped."""
    try:
        return np.fromiter(map(float, tokens), np.float64, len(tokens)), []
    except ValueError:
        out, failed = np.full(len(tokens), np.nan), []
        for i, token in enumerate(tokens):
            try:
                out[i] = float(token)
            except ValueError:
                failed.append(i)
        return out, failed


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
    if not finite.any():
        return seconds
    known = seconds[finite]
    wraps = np.concatenate([[0], np.cumsum(np.diff(known) < -150 * _DAY)])
    out = seconds.copy()
    out[finite] = known + wraps * 366 * _DAY
    return out


def _frame(events: _Events, restarts: list[int], name: str, warnings: list[ParseWarning]):
    """The metrics table. Large logs hold ten million records: columns are reordered, filtered and
    handed to the frame one at a time, each source array dropped as soon as it is used."""
    order = np.argsort(events.line, kind="stable")
    cols = {}
    for field in _FIELDS:
        cols[field] = getattr(events, field)[order]
        setattr(events, field, None)
    del order
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
    start = seconds[np.isfinite(seconds)][0] if np.isfinite(seconds).any() else np.nan
    columns = {}
    for column, field in (("step", "step"), ("epoch", "epoch"), ("value", "value"), ("wall_time", "seconds")):
        columns[column] = cols.pop(field)[rows]
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
    return frame, len(events.bad) + events.lost


def _codes(values: list[bytes]) -> tuple[np.ndarray, list[bytes]]:
    """Dense integer codes for byte strings, and the strings (a dict does it at C speed via map)."""
    table: dict[bytes, int] = {}
    first_seen = np.fromiter(map(table.setdefault, values, count()), np.int64, len(values))
    codes, first = _factorize(first_seen)
    return codes, [values[i] for i in first]


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
    label_code = np.array([categories.index(x) for x in labels], np.int64)
    return pd.Categorical.from_codes(label_code[codes] if len(codes) else codes, categories)


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
    `Restoring previous solver status` after data, or an iteration counter that fell to less than
    half of the previous one (threads of a multi-GPU run jitter by a few iterations, not by half)."""
    iteration = np.flatnonzero((kind >= 0) & (kind <= 2))
    if not len(iteration):
        return np.zeros(len(kind), np.int64)
    first_data = line[iteration[0]]
    marks = np.array(sorted(p for p in restarts if p > first_data), np.int64)
    it_pos, it_step = line[iteration], step[iteration]
    drop = np.flatnonzero(it_step[1:] < it_step[:-1] // 2) + 1
    # a drop right after a restart marker is the same restart
    marked = np.searchsorted(marks, it_pos[drop]) > np.searchsorted(marks, it_pos[drop - 1])
    boundaries = np.unique(np.concatenate([marks, it_pos[drop[~marked]]]))
    return np.searchsorted(boundaries, line, side="right").astype(np.int64)


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


def _chunk_markers(chunk: bytes, line_starts: np.ndarray) -> list[_Marker]:
    """Restart and fatal lines of one chunk (start-up lines are looked for later, only where a run
    starts: each needle costs a full scan of the chunk)."""
    found = [(at, key) for key, needle in _RESTART_MARKERS.items() for at in _find_all(chunk, needle)]
    found += [(at, "fatal") for at in _fatal_lines(chunk)]
    return [
        _marker_at(chunk, at, key, int(np.searchsorted(line_starts, at, side="right")))
        for at, key in sorted(found)
    ]


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
    """Start-up lines (weights loaded, GPUs, `Solving`, net echoes) within a window after the start
    of the file and after each restart."""
    windows = [(0, 1)] + [(m.offset, m.line) for m in found if m.key in _RESTART_MARKERS]
    markers: dict[int, _Marker] = {}
    for window_start, first_line in windows:
        window = data[window_start : window_start + _STARTUP_WINDOW]
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
