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
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    events = _Events.concat(_scan(data))
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    warnings: list[ParseWarning] = []
    markers, restarts = _markers(data, source.name)
    _header_facts(data, source.name, meta)
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

    @classmethod
    def concat(cls, parts: list[_Events]) -> _Events:
        """One record set; output names are renumbered into one table."""
        table: dict[bytes, int] = {}
        lines_before = 0
        for part in parts:
            part.line += lines_before
            part.bad = [line + lines_before for line in part.bad]
            lines_before += part.newlines
            remap = np.array([table.setdefault(n, len(table)) for n in part.names] + [-1], np.int64)
            part.name = remap[part.name]  # -1 picks the appended -1
        arrays = {}
        for name in _FIELDS:  # one field at a time, freeing the parts' copy: bounded peak memory
            arrays[name] = np.concatenate([getattr(p, name) for p in parts])
            for part in parts:
                setattr(part, name, None)
        return cls(
            **arrays,
            names=list(table),
            bad=[x for p in parts for x in p.bad],
            lost=sum(p.lost for p in parts),
            newlines=sum(p.newlines for p in parts),
        )


def _scan(data: bytes) -> list[_Events]:
    """Scan the chunks, on all cores when the log is large (a 2-core machine halves the time).
    Workers are forked so that they read the parent's buffer without a copy."""
    global _SHARED
    bounds = _chunks(data)
    workers = min(len(bounds), _workers())
    if workers < 2:
        return [_scan_chunk(data[start:end]) for start, end in bounds]
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
    return _scan_chunk(_SHARED[bounds[0] : bounds[1]])


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
    order = np.argsort(events.line, kind="stable")
    for field in _FIELDS:  # reordered in place, one field at a time
        setattr(events, field, getattr(events, field)[order])
    del order
    kind, line, step = events.kind, events.line, events.step
    index, value, epoch = events.index, events.value, events.epoch
    name_codes, name_values = events.name, events.names
    seconds = _unwrap_years(events.seconds)
    segment = _segments(kind, line, step, restarts)

    # outputs take the step and time of the display line (train) or test pass (test) before them;
    # a test output remembers its test net (Caffe numbers outputs per net)
    net = np.zeros(len(kind), np.int64)
    for output_kind, owner_kind in ((3, 0), (4, 2)):
        owners = np.flatnonzero(kind == owner_kind)
        outs = np.flatnonzero(kind == output_kind)
        at = np.searchsorted(owners, outs) - 1
        kind[outs[at < 0]] = -1
        outs, owner = outs[at >= 0], owners[at[at >= 0]]
        step[outs], epoch[outs], seconds[outs] = step[owner], epoch[owner], seconds[owner]
        net[outs] = index[owner]
    rows = np.flatnonzero((kind == 0) | (kind == 1) | (kind == 3) | (kind == 4))
    key_parts = [kind[rows].astype(np.int64), name_codes[rows] + 1, index[rows], net[rows]]
    key = np.zeros(len(rows), np.int64)
    for part in key_parts:
        key = key * (int(part.max(initial=0)) + 1) + part
    key_codes, first_rows = _factorize(key)
    naming = [
        _naming(int(kind_), name_values[code - 1] if code else b"", int(number), int(net_))
        for kind_, code, number, net_ in (tuple(part[i] for part in key_parts) for i in first_rows)
    ]
    start = seconds[np.isfinite(seconds)][0] if np.isfinite(seconds).any() else np.nan
    frame = frame_from_columns(
        {
            "step": step[rows],
            "epoch": epoch[rows],
            "split": _categorical(key_codes, [n[0] for n in naming]),
            "metric": _categorical(key_codes, [n[1] for n in naming]),
            "name": _categorical(key_codes, [n[2] for n in naming]),
            "value": value[rows],
            "wall_time": seconds[rows] - start,
            "line": line[rows],
            "segment": segment[rows],
            "source": pd.Categorical.from_codes(np.zeros(len(rows), np.int8), [name]),
        }
    )
    duplicate = _duplicates(frame) if _may_repeat(kind, step, segment) else np.zeros(len(frame), bool)
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


# Lines that start or restart a run: searched in the whole file.
_RESTART_MARKERS = {
    "solver": b"Initializing solver from parameters",
    "resume": b"Resuming from ",
    "restore": b"Restoring previous solver status",
}
# Lines printed while a run starts: searched only near the start of the file and of each restart.
_STARTUP_MARKERS = {
    "finetune": b"Finetuning from ",
    "copying": b"Copying source layer ",
    "solving": b"] Solving",
    "gpus": b"Using GPUs ",
    "weights_flag": b"-weights",
}
_STARTUP_WINDOW = 16 * 1024 * 1024
_MAX_MARKERS = 5000


def _markers(data: bytes, name: str) -> tuple[dict[str, list[LogLine]], list[int]]:
    """Rare lines worth knowing, with line numbers, and the lines where a run (re)starts. Found
    with bytes.find, which is fast; start-up lines are only looked for where a run starts."""
    found = [(at, key) for key, needle in _RESTART_MARKERS.items() for at in _find_all(data, needle)]
    windows = [0, *sorted(at for at, _ in found)]
    for key, needle in _STARTUP_MARKERS.items():
        seen: set[int] = set()
        for window in windows:
            seen.update(_find_all(data, needle, window, window + _STARTUP_WINDOW))
        found += [(at, key) for at in sorted(seen)]
    found += [(at + 1, "fatal") for at in _find_all(data, b"\nF") if data[at + 2 : at + 6].isdigit()]
    if data.startswith(b"F") and data[1:5].isdigit():
        found.append((0, "fatal"))
    found.sort()
    markers: dict[str, list[LogLine]] = {}
    restarts: list[int] = []
    line, last = 1, 0
    for at, key in found:
        line += data.count(b"\n", last, at)
        last = at
        start = data.rfind(b"\n", 0, at) + 1
        end = data.find(b"\n", at)
        text = data[start : end if end >= 0 else len(data)].decode("utf-8", "replace")
        markers.setdefault(key, []).append(LogLine(name, line, text))
        if key in _RESTART_MARKERS:
            restarts.append(line)
    return markers, restarts


def _find_all(data: bytes, needle: bytes, start: int = 0, end: int | None = None) -> list[int]:
    """Offsets of `needle` in data[start:end] (at most _MAX_MARKERS of them)."""
    end = len(data) if end is None else min(end, len(data))
    found: list[int] = []
    at = data.find(needle, start, end)
    while at >= 0 and len(found) < _MAX_MARKERS:
        found.append(at)
        at = data.find(needle, at + len(needle), end)
    return found


def _header_facts(data: bytes, name: str, meta: RunMeta) -> None:
    """The solver and net prototxt echoes that follow `Initializing ... from parameters:`."""
    for needle, is_solver in (
        (b"Initializing solver from parameters", True),
        (b"Initializing net from parameters", False),
    ):
        at = data.find(needle)
        seen = 0
        while at >= 0 and seen < 8:
            seen += 1
            block_start = data.find(b"\n", at) + 1
            if not block_start:
                break
            end_match = _NEXT_GLOG_LINE.search(data, block_start - 1)
            block_end = end_match.start() + 1 if end_match else len(data)
            first_line = data.count(b"\n", 0, block_start) + 1
            text = data[block_start:block_end].decode("utf-8", "replace")
            try:
                message = parse_prototxt(text, first_line)
            except ParseError:  # the log ends right after the header line
                break
            if is_solver:
                solver_facts(message, meta, name)
            else:
                net_facts(message, meta, name)
            at = data.find(needle, block_end)


def _log_facts(data: bytes, markers: dict[str, list[LogLine]], meta: RunMeta) -> None:
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
    elif "copying" in markers and b"[0.0] Iteration" not in data[:50_000_000]:
        # BVLC logs "Copying source layer" only when copying trained weights in (-weights);
        # NVCaffe also logs it when the test net shares the train net's weights.
        meta.set("pretrained", True, markers["copying"][0])
    elif "solving" in markers and not meta.resumed:
        meta.set("pretrained", False, markers["solving"][0])


def _weights_source(markers: dict[str, list[LogLine]]) -> tuple[str, LogLine] | None:
    if "finetune" in markers:
        line = markers["finetune"][0]
        return line.text.split("Finetuning from ", 1)[1].strip(), line
    for line in markers.get("weights_flag", []):
        match = re.search(r"-weights[= ]+(\S+)", line.text)
        if match:
            return match.group(1), line
    return None
