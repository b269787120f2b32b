"""The events table beside the metrics: what happened to a run besides its curves.

Large-model runs report the fp16 loss scaler, skipped steps, checkpoints, restarts and fatal errors in
lines that are not metrics, and these lines turn up inside logs of any format (a DeepSpeed OVERFLOW
between HF Trainer dicts, a fairseq overflow note in a hydra log, glog's `F...` line ending a Caffe
log). So events are read once for every file of a run, after its format plug-in, in two ways:

- from the text, by literal-gated patterns (a pattern runs only when its literal occurs; the minimum
  scale is looked for only after an overflow and glog lines only in a glog log, so a log without
  events costs three substring searches);
- from the metrics the plug-ins already read: a new segment (the step counter went back, or the
  parser saw a resume), a change of the logged `loss_scale`, and a record whose `skipped_iters` or
  `nan_iters` counter is above zero.

Kinds: `loss_scale` (the scale changed), `overflow` (the scaler skipped a step; `value` is the new
scale when the line gives it), `skipped` (steps skipped; `value` = how many), `fatal`, `restart`,
`rollback` (resumed below the step already reached), `checkpoint_save`, `checkpoint_load`.

A line that names its step (`_iter_5000.caffemodel`, `at iteration 1000`, `checkpoint-500`) is placed
there; any other line at the step of the next metric record of its file, on a later line (the loops
print a step's record after its optimizer step, where the scaler and the checkpointer speak), or of
the last one when no record follows. `detail` is the log's own text (stripped, capped): data to show
as text, never HTML.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from parsers.model import MAX_COUNTER

EVENT_COLUMNS: dict[str, str] = {
    "step": "int64",
    "kind": "category",
    "value": "float64",  # the new loss scale, the count of skipped steps; NaN when none
    "detail": "object",  # the log line (stripped, capped) or `before → after` for derived events
    "line": "int64",  # 1-based line in `source`
    "source": "category",
}
EVENT_KINDS = (
    "loss_scale",
    "overflow",
    "skipped",
    "fatal",
    "restart",
    "rollback",
    "checkpoint_save",
    "checkpoint_load",
)
DETAIL_CHARS = 300  # a line longer than this is cut (a progress bar glued to the message)
_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+|nan|inf)"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class _Pattern:
    kind: str
    regex: re.Pattern[str]
    value_group: int = 0  # the group holding the event's value; 0: none
    # True: the regex has no literal prefix (an alternation), so it is searched only in the lines that
    # hold the gate (found with str.find) instead of scanning the whole text position by position
    in_gate_lines: bool = False


_DEEPSPEED_OVERFLOW = _Pattern(  # loss_scaler.update_scale / ZeRO 1-3 (`[deepscale]` in old versions)
    "overflow",
    re.compile(
        rf"OVERFLOW! Rank \d+ Skipping step\.(?: Attempted loss scale: {_NUMBER}"
        rf"(?:, reducing to ({_NUMBER})|, but hysteresis is \d+\. Reducing hysteresis to \d+))?"
    ),
    1,
)
_OTHER_OVERFLOWS = (
    # Apex amp (two spaces after the first full stop) and fairseq's DynamicLossScaler note
    _Pattern(
        "overflow",
        re.compile(
            rf"Gradient overflow\.\s+Skipping step, loss scaler \d+ reducing loss scale to ({_NUMBER})"
        ),
        1,
    ),
    _Pattern(
        "overflow",
        re.compile(rf"gradient overflow detected, ignoring gradient, setting loss scale to: ({_NUMBER})"),
        1,
    ),
)
_AT_MINIMUM = (  # DeepSpeed and fairseq stop the run: only after overflows, so looked for only then
    _Pattern("fatal", re.compile(r"Current loss scale already at minimum[^\n]*")),
    _Pattern("fatal", re.compile(rf"Minimum loss scale reached \(({_NUMBER})\)[^\n]*"), 1),
)
# DeepSpeed engine progress `step=N, skipped=M`: the cumulative count, an event where it grows
_DEEPSPEED_SKIPPED = _Pattern("skipped", re.compile(r"step=(\d+), skipped=(\d+)"), 2)
_CHECKPOINTS = (  # detectron2/fvcore, fairseq, mmcv/mmengine, HF Trainer, Megatron, nanoGPT, torchtitan
    _Pattern(
        "checkpoint_save",
        re.compile(
            r"(?<!Finished )(?:Saving checkpoint (?:to|at) |Saving model checkpoint|saving checkpoint "
            r"(?:at iteration|to )|Saving the checkpoint)[^\n]*"
        ),
        in_gate_lines=True,
    ),
    _Pattern(
        "checkpoint_load",
        re.compile(
            r"(?:Loading checkpoint from |[Ll]oad checkpoint from |Loaded checkpoint "
            r"|loading checkpoint from |loading distributed checkpoint from "
            r"|Loading the checkpoint from |Continuing training from checkpoint)[^\n]*"
        ),
        in_gate_lines=True,
    ),
)
# nanoGPT's `init_from='resume'` (train.py prints the out_dir it loads `ckpt.pt` from)
_NANOGPT_RESUME = _Pattern("checkpoint_load", re.compile(r"Resuming training from [^\n]*"))
_GLOG = (  # only in glog logs (Caffe, MXNet's C++ core): `F0803 11:12:28.077312  3568 db_lmdb.hpp:15] ...`
    ("\nF", _Pattern("fatal", re.compile(r"\nF\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [^\]\n]+\] [^\n]*"))),
    # Caffe solver (the solverstate line names the same step: not counted twice)
    (
        "Snapshotting to",
        _Pattern("checkpoint_save", re.compile(r"Snapshotting to (?:binary proto|HDF5) file [^\n]*")),
    ),
    (
        "Restoring previous",
        _Pattern("checkpoint_load", re.compile(r"Restoring previous solver status from [^\n]*")),
    ),
)
_GLOG_HEAD = re.compile(r"(?m)^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+ [\w.\-]+:\d+\] ")
_HEAD = 1024 * 1024
# a step the line itself names (checked in this order)
_STEP_IN_LINE = re.compile(
    r"_iter_(\d+)\.|at iteration\s+(\d+)|checkpoint-(\d+)|global_step(\d+)|model_(\d+)\.pth|at step (\d+)"
    r"|@ (\d+) updates|, iter (\d+)"
)


def empty_events() -> pd.DataFrame:
    return events_frame([])


def events_frame(rows: list[tuple[int, str, float, str, int, str]]) -> pd.DataFrame:
    """The events table from (step, kind, value, detail, line, source) tuples, with the contract's dtypes."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in EVENT_COLUMNS]
    data = {}
    for (name, dtype), values in zip(EVENT_COLUMNS.items(), columns, strict=True):
        if name == "kind":
            data[name] = pd.Categorical(list(values), categories=list(EVENT_KINDS))
        elif name == "detail":  # Python strings, as logged (pandas would infer its own string dtype)
            data[name] = pd.Series(list(values), dtype=object)
        elif dtype == "category":
            data[name] = pd.Categorical(list(values))
        else:
            data[name] = np.asarray(list(values), dtype=dtype)
    return pd.DataFrame(data)


def text_events(text: str) -> list[tuple[str, float, str, int, int | None]]:
    """(kind, value, detail, line, step the line names or None) of the event lines in `text`, in order.
    Each gate is one substring search of the text; most gates are searched only when their events can
    be there (see the pattern groups above), so a log without events costs three searches."""
    head = text[:_HEAD]
    found: list[tuple[int, str, float, str, int | None]] = []  # (offset, kind, value, detail, step)
    overflows = "OVERFLOW!" in text
    if overflows:
        found += _matches(text, _DEEPSPEED_OVERFLOW)
    if "radient overflow" in text:
        overflows = True
        for pattern in _OTHER_OVERFLOWS:
            found += _matches(text, pattern)
    if overflows and "inimum" in text:
        for pattern in _AT_MINIMUM:
            found += _matches(text, pattern)
    if "skipped=" in head or (overflows and "skipped=" in text):
        found += _deepspeed_skips(text, _DEEPSPEED_SKIPPED.regex)
    if "heckpoint" in text:
        found += _in_lines(text, "heckpoint", _CHECKPOINTS)
    if "Resuming training from " in text:
        found += _matches(text, _NANOGPT_RESUME)
    if _GLOG_HEAD.search(head):
        for gate, pattern in _GLOG:
            if gate in text:
                found += _matches(text, pattern)
        if text.startswith("F") and (first := _GLOG[0][1].regex.match("\n" + text)):
            found.append((0, "fatal", math.nan, first[0].strip(), None))
    found.sort(key=lambda event: event[0])
    found = [event for i, event in enumerate(found) if i == 0 or event[0] != found[i - 1][0]]
    lines = _line_numbers(text, [event[0] for event in found])
    return [
        (kind, value, detail, line, step)
        for (_, kind, value, detail, step), line in zip(found, lines, strict=True)
    ]


def _matches(text: str, pattern: _Pattern) -> list[tuple[int, str, float, str, int | None]]:
    events = []
    for match in pattern.regex.finditer(text):
        value = _number(match[pattern.value_group]) if pattern.value_group else math.nan
        start = match.start() + (1 if match[0].startswith("\n") else 0)
        line_text = _line_of(text, start)
        events.append((start, pattern.kind, value, line_text, _named_step(line_text)))
    return events


def _in_lines(
    text: str, gate: str, patterns: tuple[_Pattern, ...]
) -> list[tuple[int, str, float, str, int | None]]:
    """Events of `patterns` searched in each line that holds `gate` (the offset is the line's start)."""
    events = []
    at = text.find(gate)
    while at >= 0:
        start = text.rfind("\n", 0, at) + 1
        end = text.find("\n", at)
        end = len(text) if end < 0 else end
        line = text[start:end]
        for pattern in patterns:
            if (match := pattern.regex.search(line)) is not None:
                value = _number(match[pattern.value_group]) if pattern.value_group else math.nan
                detail = _line_of(text, start)
                events.append((start, pattern.kind, value, detail, _named_step(detail)))
                break
        at = text.find(gate, end)
    return events


def _deepspeed_skips(text: str, regex: re.Pattern[str]) -> list[tuple[int, str, float, str, int | None]]:
    """A `skipped` event where DeepSpeed's cumulative `skipped=` count grows, at that line's `step=`."""
    events = []
    before = 0
    for match in regex.finditer(text):
        skipped = int(match[2])
        if skipped > before:
            line = _line_of(text, match.start())
            events.append((match.start(), "skipped", float(skipped - before), line, int(match[1])))
        before = skipped
    return events


def metric_events(metrics: pd.DataFrame, source: str) -> list[tuple[int, str, float, str, int, str]]:
    """Events the metrics of one file already show: new segments, loss-scale changes, skipped records."""
    rows: list[tuple[int, str, float, str, int, str]] = []
    if not len(metrics):
        return rows
    segment = metrics["segment"].to_numpy()
    step = metrics["step"].to_numpy()
    line = metrics["line"].to_numpy()
    starts = np.flatnonzero(segment[1:] != segment[:-1]) + 1
    block_max = np.maximum.reduceat(step, np.concatenate([[0], starts])) if len(starts) else step[:0]
    first_step = int(step[: starts[0]].min()) if len(starts) else 0  # where the run began
    for block, at in enumerate(starts):  # rows come in file order: a segment is one run of rows
        before, after = int(block_max[block]), int(step[at])
        kind = "rollback" if first_step < after < before else "restart"
        rows.append((after, kind, math.nan, f"step {before} → {after}", int(line[at]), source))
    metric_column = metrics["metric"]
    categories = list(metric_column.cat.categories)
    codes = metric_column.cat.codes.to_numpy()
    for metric in ("loss_scale", "skipped_iters", "nan_iters"):
        if metric not in categories:
            continue
        chosen = np.flatnonzero(codes == categories.index(metric))
        if not len(chosen):
            continue
        values = metrics["value"].to_numpy()[chosen]
        label = str(metrics["name"].iloc[chosen[0]])
        if metric == "loss_scale":
            finite = np.isfinite(values)
            chosen, values = chosen[finite], values[finite]
            changed = np.flatnonzero(values[1:] != values[:-1]) + 1
            for i in changed:
                detail = f"{label}: {values[i - 1]:.10g} → {values[i]:.10g}"
                rows.append(
                    (
                        int(step[chosen[i]]),
                        "loss_scale",
                        float(values[i]),
                        detail,
                        int(line[chosen[i]]),
                        source,
                    )
                )
        else:
            for i in np.flatnonzero(values > 0):
                detail = f"{label}: {values[i]:.10g}"
                rows.append(
                    (int(step[chosen[i]]), "skipped", float(values[i]), detail, int(line[chosen[i]]), source)
                )
    return rows


def place(
    events: Iterable[tuple[str, float, str, int, int | None]], metrics: pd.DataFrame, source: str
) -> list[tuple[int, str, float, str, int, str]]:
    """Give every text event a step: its own, else the next metric record's (the last one at the end)."""
    record_lines = metrics["line"].to_numpy()
    record_steps = metrics["step"].to_numpy()
    order = np.argsort(record_lines, kind="stable")
    record_lines, record_steps = record_lines[order], record_steps[order]
    rows = []
    for kind, value, detail, line, named in events:
        if named is not None and named <= MAX_COUNTER:
            step = named
        elif len(record_lines):
            # a record on the event's own line is not "next": print_style reads an OVERFLOW line's own
            # numbers (`Attempted loss scale: 65536`) as a record at the step before it
            at = min(int(np.searchsorted(record_lines, line, side="right")), len(record_lines) - 1)
            step = int(record_steps[at])
        else:
            step = 0
        rows.append((step, kind, value, detail, line, source))
    return rows


def file_events(
    text: str | None, metrics: pd.DataFrame, source: str
) -> list[tuple[int, str, float, str, int, str]]:
    """Every event of one file (text None: a binary file, whose events come from its metrics only)."""
    rows = place(text_events(text), metrics, source) if text else []
    rows += metric_events(metrics, source)
    rows.sort(key=lambda row: row[4])
    return rows


def _line_of(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    line = text[start : end if end >= 0 else len(text)]
    if "\x1b" in line:
        line = _ANSI.sub("", line)
    line = line.strip()
    return line if len(line) <= DETAIL_CHARS else line[: DETAIL_CHARS - 1] + "…"


def _named_step(line: str) -> int | None:
    found = _STEP_IN_LINE.search(line)
    if found is None:
        return None
    return int(next(group for group in found.groups() if group is not None))


def _number(text: str) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def _line_numbers(text: str, offsets: list[int]) -> list[int]:
    """1-based line numbers of sorted offsets, counting newlines between consecutive ones."""
    lines, line, counted = [], 1, 0
    for offset in offsets:
        line += text.count("\n", counted, offset)
        counted = offset
        lines.append(line)
    return lines


def to_records(events: pd.DataFrame, limit: int) -> list[dict[str, object]]:
    """The first `limit` events as JSON-ready dicts (a value that is NaN is null)."""
    return [
        {
            "step": int(step),
            "kind": str(kind),
            "value": None if math.isnan(value) else float(value),
            "detail": str(detail),
            "line": int(line),
            "source": str(source),
        }
        for step, kind, value, detail, line, source in events.head(limit).itertuples(index=False, name=None)
    ]
