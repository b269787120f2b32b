"""Hand-rolled training logs: `print()` / `logging` lines of key-value pairs (the generic fallback).

    Epoch [1/10], Step [100/600], Loss: 2.3012
    epoch 3 iter 200 loss=0.71 lr=1e-3
    Epoch 0 | Step 10/6501 | Loss: 8.24 | PPL: 4455 | LR: 5.97e-05
    2023-05-15 22:50:17,398 INFO:Epoch 1: Train Loss=0.0717, Val Loss=0.0766
    Epoch: [0]  [ 100/1563]  eta: 0:02:10  lr: 0.1  loss: 2.1 (2.3)  acc1: 20.0 (15.2)    (torchvision)
    Train: 1 [ 100/1251 (8%)]  Loss: 6.789 (6.901)  Time: 0.339s  LR: 1.000e-03           (timm)
    INFO - 09/02/20 14:18:08 - 0:00:30 - Epoch: [0][50]\tTime 1.9 (1.9)\tLoss 4.2079 (4.2377)  (SwAV)
    Epoch 3: 100%|████| 600/600 [00:10<00:00, loss=0.123, acc=0.9]                        (tqdm)

There is no grammar to follow, so a line is read in three passes: counters (`Epoch 3`, `[1/10]`,
`Step 10/6501`, `Epoch: [0][50]`, a tqdm `600/600 [`) are taken out, running averages in
parentheses are dropped (`Loss 4.28 (4.24)` is 4.28) and so are parenthesised remarks (an accuracy
counted as `9826/10000 (98%)`, PyTorch's MNIST example, is its percentage), then one
regex reads every `key[:= ]value` pair; a small alias table names the metric. The split comes from
a word in the key (`Val Loss`, `test_acc`), else from the last split word before it on the line
(`Test: ... Acc@1 71.2`, `val loss: 1.2, acc: 45.8`) or from a block header line
(`Evaluation Results:` followed by `   Loss: 0.53`); the learning rate is always train. A line
counts only with a counter or a loss/accuracy-like key; final summaries without a counter
(`Final Results: Loss=...`), warnings and tracebacks are noise.

Step: epoch * N + k when a `[k/N]` counter gives N (epochs numbered from 0 or 1 as the log does),
the iteration itself when it never goes back between epochs, epoch * N + k with N estimated from the
batches printed when every training line prints a batch counter that starts again each epoch
(`[3, 2000] loss:` of the PyTorch tutorial: `_epoch_spans`), the epoch when each epoch has one line,
else a running count of training lines. Evaluation lines sit at the step of the last training line
(at their own epoch when stepping by epoch, at their own iteration when stepping by a global
iteration they also print and it has not gone back: `epoch 3 step 600 val_loss 2.1`; an evaluation
loop's own `[k/N]` batch counter is not a training step); several counter-less evaluations between
two training lines are spread evenly up to the next one. A counter that goes back starts a new
segment. With both a per-batch loss (`Batch loss`) and an averaged one (`Average Train Loss`) and
no plain `loss`, the average is `loss` and the batch values `loss_raw`. A CSV-like text
(`epoch,loss,ppl,accuracy` then rows of numbers) is read as columns.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, MutableSequence, Sequence
from dataclasses import dataclass, field, replace
from itertools import pairwise

import numpy as np
import pandas as pd

from parsers.formats._textlog import (
    DIGITS_AS_ZERO,
    NUMBER,
    TIMING_KEYS,
    At,
    LineCounter,
    LineLayouts,
    Problems,
    Rows,
    Unsupported,
    WallClock,
    floats_at,
    normal_pages,
    since_first,
    small_codes,
    stamps_at,
    strip_log_prefix,
    to_float,
)
from parsers.hparams import hyperparams_from_text
from parsers.model import MAX_COUNTER, RunMeta, as_counter
from parsers.names import canonical_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "print_style"
FRAMEWORK = "pytorch"

# --- lines worth reading -------------------------------------------------------------------------
# Found with str.find on plain words (a line-anchored regex alternation scans at ~5 MB/s).
_KEYWORDS = [
    variant
    for word in (
        "loss",
        "acc",
        "ppl",
        "perplex",
        "bleu",
        "top1",
        "top5",
        "top-1",
        "top-5",
        "prec@",
        "map",
        "miou",
    )
    for variant in {word, word.capitalize(), word.upper(), word.replace("map", "mAP")}
]
_BLOCK_WORDS = [
    variant for word in ("eval", "valid", "test") for variant in (word, word.capitalize(), word.upper())
]
_NOISE = re.compile(r"Traceback|^\s*File \"|\w(?:Warning|Error)\b:|warnings\.warn")
_SUMMARY = re.compile(r"\b(?:final|best|summary|overall|saved|saving)", re.IGNORECASE)

# --- counters ------------------------------------------------------------------------------------
_OF = r"\s*+(?P<{0}>\d++)(?:\s*+/\s*+(?P<{1}>\d++))?\s*+"
# tqdm: `270/600 [00:05<00:06, ...`
_TQDM_COUNTER = re.compile(r"(?<!\d)(?P<it>\d++)/(?P<n>\d++)\s*+\[[\d:]++<")
# A bar at count 0 has run no step: its postfix values are the previous epoch's (Lightning redraws the
# bar at 0 under the old epoch's name, then under the new one). Blanked, line breaks kept.
_TQDM_HEAD_CHARS = 2 * 1024**2
# Anchored at the start of a redraw (a line or a `\r`): unanchored, every position of a long line without
# a match re-read the rest of the line (20 KB lines took seconds).
_IDLE_BAR = re.compile(r"(?m)(?:^|(?<=\r))[^\r\n]*?(?<!\d)0/\d++\s*+\[[\d:]++<[^\r\n]*+")
_COUNTERS = [
    # timm: `Train: 1 [ 100/1251 (8%)]`, `Test: [  48/48]`
    re.compile(
        r"\b(?:Train|Test|Eval|Val)\s*+:\s*+(?:(?P<ep>\d++)\s*+)?\[\s*+(?P<it>\d++)\s*+/\s*+(?P<n>\d++)\s*+"
        r"(?:\(\s*+\d++%\))?\s*+\]"
    ),
    # the PyTorch tutorial's `[1,    10] loss: 2.306`
    re.compile(r"^\s*+\[\s*+(?P<ep>\d++)\s*+,\s*+(?P<it>\d++)\s*+\]"),
    # torchvision `Epoch: [0]  [ 100/1563]`, SwAV `Epoch: [0][50]`
    re.compile(
        r"(?i)\bepoch\s*+:?\s*+\[\s*+(?P<ep>\d++)\s*+\]\s*+\[\s*+(?P<it>\d++)(?:\s*+/\s*+(?P<n>\d++))?\s*+\]"
    ),
    re.compile(r"(?i)\bepoch\b\s*+[:=#]?\s*+[\[(]?" + _OF.format("ep", "ept") + r"[\])]?"),
    re.compile(
        r"(?i)\b(?:step|iter(?:ation)?|it|batch(?:_idx)?)\b\s*+[:=#]?\s*+[\[(]?"
        + _OF.format("it", "n")
        + r"[\])]?"
    ),
    _TQDM_COUNTER,
]
_AVERAGE = re.compile(
    rf"(?<![\d.])({NUMBER})\s*+\(\s*+{NUMBER}\s*+\)"
)  # `4.2811 (4.2377)`: value, running mean
_REMARK = re.compile(r"\([^()\n]*\)")
# PyTorch's MNIST example: `Accuracy: 9826/10000 (98%)` is the percentage in parentheses
_COUNTED_SHARE = re.compile(
    r"(?i)\b(acc\w*+)\s*+([:=])\s*+\d++\s*+/\s*+\d++\s*+\(\s*+(\d++(?:\.\d++)?)\s*+%\s*+\)"
)
_TQDM_BAR = re.compile(r"(?<!\d)\d++%\|[^|\n]*+\|")

# --- key-value pairs -----------------------------------------------------------------------------
# A key starts at the first ASCII letter of a run of key characters (`2nd_loss` -> `nd_loss`). The
# run's other characters are skipped possessively and a key never starts inside a run: a pair that
# fails from a run's start fails from every later letter too, and trying them all was quadratic.
_WORD = r"[A-Za-z][\w@/\-.]*+"
_PAIR = re.compile(
    rf"(?<![\w@/\-.])(?:[^\WA-Za-z]|[@/\-.])*+(?P<key>{_WORD}(?: {_WORD}){{0,3}})(?:\s*+[:=]\s*+|\s++)"
    rf"(?P<value>{NUMBER})(?=$|[\s,;|)\]%])"
)
_SPLIT_WORD = re.compile(r"(?i)\b(train(?:ing)?|val(?:id(?:ation)?)?|eval(?:uation)?|test(?:ing)?|dev)\b")
# the same inside a key, where `_` joins words: `val_loss`, `Train Loss`, `eval/acc`
_KEY_SPLIT = re.compile(
    r"(?i)(?<![A-Za-z])(train(?:ing)?|val(?:id(?:ation)?)?|eval(?:uation)?|test(?:ing)?|dev)(?![A-Za-z])"
)
_SPLITS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val"}
_SPLITS |= {"eval": "val", "evaluation": "val", "dev": "val", "test": "test", "testing": "test"}
_ALIASES = {
    "acc": "accuracy",
    "accuracy": "accuracy",
    "acc1": "accuracy",
    "acc@1": "accuracy",
    "top1": "accuracy",
    "top-1": "accuracy",
    "prec@1": "accuracy",
    "prec1": "accuracy",
    "acc5": "top5",
    "acc@5": "top5",
    "top5": "top5",
    "top-5": "top5",
    "prec@5": "top5",
    "ppl": "perplexity",
    "perplexity": "perplexity",
    "lr": "lr",
    "learning_rate": "lr",
    "grad": "grad_norm",
    "gnorm": "grad_norm",
    "grad_norm": "grad_norm",
    "loss": "loss",
    "total_loss": "loss",
    "objective": "loss",
}
_AVG_LOSS = {"avg_loss", "average_loss", "mean_loss", "epoch_loss", "running_loss"}
_BATCH_LOSS = {"batch_loss", "step_loss", "iter_loss", "iteration_loss", "minibatch_loss"}
_NOT_METRICS = TIMING_KEYS | {"epoch", "step", "iter", "iteration", "batch", "it", "samples", "tokens"}
_NOT_METRICS |= {"v_num"}  # Lightning's progress bar shows the logger's version
# metric-name parts that make a line a training record even without a counter
_HEADLINE = re.compile(
    r"^(?:\w*loss|acc(?:uracy)?\d?|ppl|perplexity|bleu\w*|top\d|map|miou|f1|auc|accuracy|prec)$"
)

# Numbers that stand alone (not the 1 of `BLEU-1`, `acc@5`, `resnet50`; not the nan of `nano`).
_TOKEN = re.compile(
    r"(?<![\w.@\-])([-+]?(?:\d++\.?\d*+|\.\d++)(?:[eE][-+]?\d++)?(?![\d.])|[-+]?(?i:nan|inf(?:inity)?)(?![\w.]))"
)
_STAND_IN = 1_000_000_000
_MAX_SHAPES = 10_000

_LEADING_BREAKS = re.compile(r"\n*")
_CSV_HEADER = re.compile(r"^\s*+[A-Za-z_][\w ]*+(?:\s*+,\s*+[A-Za-z_][\w ]*+)+\s*+$")
_CSV_ROW = re.compile(rf"^\s*+{NUMBER}(?:\s*+,\s*+{NUMBER})+\s*+$")
# a whole word that ends in `loss` or holds `acc`, then a number
_SNIFF_PAIR = re.compile(rf"(?i)\b(?=\w*?(?:loss\b|acc))\w++(?:\s*+[:=]\s*+|\s++){NUMBER}")


@dataclass(slots=True)
class _Line:
    """One record read from a line, before steps are assigned."""

    number: int
    wall_time: float
    epoch: int | None
    it: int | None
    per_epoch: int | None  # N of `[k/N]`
    evaluation: bool
    values: list[tuple[str, str, str, float]] = field(default_factory=list)  # split, metric, name, value


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text(256 * 1024)
    pairs = len(_SNIFF_PAIR.findall(head))
    if pairs >= 3:
        return 0.4
    lines = head.lstrip().split("\n", 2)
    if (
        len(lines) > 2
        and _CSV_HEADER.match(lines[0])
        and "loss" in lines[0].lower()
        and _CSV_ROW.match(lines[1])
    ):
        return 0.3
    return 0.2 if pairs else 0.0


def parse(source: SourceFile) -> ParsedFile:
    with normal_pages():
        return _parse(source)


def _parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    tqdm = _has_tqdm_bars(text)
    if tqdm:
        text = _IDLE_BAR.sub("", text)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    try:
        layouts = LineLayouts(text)
    except Unsupported:
        layouts = None
    hyperparams_from_text(text, source.name, meta, layouts)
    problems = Problems(source.name)
    rows = Rows()
    records = _csv_records(text)
    if not records:
        try:
            if layouts is None:
                raise Unsupported("no layouts")
            _read_layouts(layouts, rows)
        except Unsupported:
            records = _line_records(text)
    for record, at in _place(records):
        for split, metric, name, value in record.values:
            rows.add(at, split, metric, name, value)
    _name_losses(rows)
    nothing = "no `key: value` training lines with a loss or accuracy"
    parsed = rows.parsed(source.name, meta, problems, nothing)
    if parsed.metrics is not None and tqdm:
        parsed.metrics = _tqdm_points(parsed.metrics)
    return parsed


def _has_tqdm_bars(text: str) -> bool:
    """tqdm bars show from the first epoch on, so the head is looked at: a find of the rate (`it/s`,
    `s/it`) first, where the counter regex would try every digit (a search of the whole text cost 5-16 %
    of the parse of `bench/text_bench.py --mb 20`'s logs)."""
    head = text[:_TQDM_HEAD_CHARS]
    return ("it/s" in head or "s/it" in head) and _TQDM_COUNTER.search(head) is not None


def _tqdm_points(frame: pd.DataFrame) -> pd.DataFrame:
    """The points of a tqdm bar's postfix. The bar is redrawn at the same count, first with the count
    advanced and the values of the step before (`2/50 [..., loss=1.240]`), then with the new values
    (`2/50 [..., loss=1.090]`): the last values at a step are the step's, the others would zigzag the
    curve. An evaluation value stays in the postfix until the next evaluation (Lightning's `val_loss`):
    it is a point where it changes, not at every later step."""
    keys = ["split", "metric", "name", "segment", "step"]
    frame = frame[~frame.duplicated(keys, keep="last").to_numpy()]
    series = frame.groupby(keys[:-1], observed=True, sort=False)["value"]
    carried = (frame["split"] != "train").to_numpy() & (frame["value"] == series.shift()).to_numpy()
    return frame[~carried].reset_index(drop=True)


def _line_records(text: str) -> list[_Line]:
    """Records of the candidate lines. Lines of one log repeat a few shapes, so each shape (the line
    with its numbers taken out) is interpreted once and the plan reused: the numbers of a line are
    then all that is read per line."""
    records: list[_Line] = []
    lines = LineCounter(text)
    clock = WallClock()
    plans: dict[tuple, _Plan] = {}
    block: tuple[int, str, str] | None = None  # (line, split, word) of an `Evaluation Results:` header
    for start in _candidate_starts(text):
        end = text.find("\n", start)
        line = text[start : end if end >= 0 else len(text)]
        number = lines.line(start)
        message = strip_log_prefix(line)
        tokens = _TOKEN.findall(message)
        context = block[1:] if block and block[0] == number - 1 else None
        shape = (_TOKEN.sub("\0", message), context)
        plan = plans.get(shape)
        if plan is None:
            plan = _NOTHING if _NOISE.search(line) else _plan(_TOKEN.split(message), context)
            if len(plans) < _MAX_SHAPES:
                plans[shape] = plan
        if plan.opens is not None:
            block = (number, *plan.opens) if plan.opens else None
            continue
        if not plan.values:
            continue
        if plan.in_block:
            block = (number, *context)
        records.append(plan.record(tokens, number, clock.since_start(line)))
    return records


def _candidate_starts(text: str) -> list[int]:
    """Start offsets of the lines that name a metric, or that end with `:` after a split word (the
    header of an evaluation block)."""
    starts = set()
    for word in _KEYWORDS:
        at = text.find(word)
        while at >= 0:
            starts.add(text.rfind("\n", 0, at) + 1)
            at = text.find(word, at + 1)
    for word in _BLOCK_WORDS:
        at = text.find(word)
        while at >= 0:
            end = text.find("\n", at)
            if text[at : end if end >= 0 else len(text)].rstrip().endswith(":"):
                starts.add(text.rfind("\n", 0, at) + 1)
            at = text.find(word, at + 1)
    return sorted(starts)


@dataclass(frozen=True)
class _Plan:
    """How to read one shape of line: which number is which counter and which metric."""

    counters: dict[str, int]  # counter name -> index of its number in the line
    values: tuple[tuple[str, str, str, int], ...]  # split, metric, name, index of the number
    evaluation: bool
    in_block: bool  # read with the split of an evaluation block header
    opens: tuple[str, str] | tuple[()] | None = None  # a line without values: block (split, word) or ()

    def record(self, tokens: list[str], number: int, wall_time: float) -> _Line:
        counter = self.counters.get
        epoch, it, per_epoch = (_int(tokens, counter(key)) for key in ("ep", "it", "n"))
        values = [(split, metric, name, to_float(tokens[i])) for split, metric, name, i in self.values]
        return _Line(number, wall_time, epoch, it, per_epoch, self.evaluation, values)


def _int(tokens: list[str], index: int | None) -> int | None:
    """The counter at `index`; None when absent, NaN, infinite or beyond MAX_COUNTER (a run of digits)."""
    return None if index is None else as_counter(float(tokens[index]))


def _plan(pieces: list[str], context: tuple[str, str] | None) -> _Plan:
    """Interpret one line shape: the line is rebuilt with stand-in numbers whose value is their
    index (so every number read can be traced back to its place), then read in full."""
    stand_ins = [str(_STAND_IN + i) for i in range(len(pieces) // 2)]
    message = "".join(p for pair in zip(pieces[0::2], [*stand_ins, ""], strict=True) for p in pair)
    counters, message = _counters(message)
    message = _REMARK.sub(" ", _AVERAGE.sub(r"\1", _COUNTED_SHARE.sub(r"\1\2 \3 %", message)))
    pairs = list(_PAIR.finditer(message))
    if not pairs:
        word = _SPLIT_WORD.search(message)
        opens = (_SPLITS[word[1].lower()], word[1]) if word and not counters else ()
        return _Plan({}, (), False, False, opens)
    if not counters and _SUMMARY.search(message):
        return _Plan({}, (), False, False)
    context = context if not counters else None
    indices = {
        key: value - _STAND_IN for key, value in counters.items() if 0 <= value - _STAND_IN < len(stand_ins)
    }
    values, evaluation = _values(message, pairs, context, len(stand_ins))
    if not (counters or context or any(_headline(metric) for _, metric, _, _ in values)):
        values = []
    return _Plan(indices, tuple(values), evaluation, context is not None)


_NOTHING = _Plan({}, (), False, False)  # warnings and tracebacks


def _headline(metric: str) -> bool:
    return any(_HEADLINE.match(part) for part in re.split(r"[_@\-]", metric))


def _counters(message: str) -> tuple[dict[str, int], str]:
    """The counters of a line (`ep`, `ept`, `it`, `n`) and the line without them."""
    counters: dict[str, int] = {}
    for pattern in _COUNTERS:
        found = pattern.search(message)
        if not found:
            continue
        for key, value in found.groupdict().items():
            if value is not None and key not in counters:
                counters[key] = int(value)
        keep = re.match(r"\s*\w+\s*:", found[0]) if pattern is _COUNTERS[0] else None  # timm's `Test:`
        message = message[: found.start()] + (keep[0] if keep else "") + " | " + message[found.end() :]
    return counters, _TQDM_BAR.sub(" | ", message)


def _values(message: str, pairs: list, context: tuple[str, str] | None, count: int) -> tuple[list, bool]:
    """(split, metric, name, index of the number) of each pair, and whether the line is an
    evaluation (its first value is not train)."""
    split, word = context or ("train", "")
    values = []
    previous_end = 0
    first_split = None
    for pair in pairs:
        gap_words = _SPLIT_WORD.findall(message, previous_end, pair.start("key"))
        if gap_words:  # the last split word before the key: `Test: ... Acc@1 71.2`
            split, word = _SPLITS[gap_words[-1].lower()], gap_words[-1]
        key = pair["key"].strip()
        if _SUMMARY.search(message, previous_end, pair.start("key")) or _SUMMARY.search(key):
            break  # `New best model saved with BLEU-2: 65.76`: a summary, not a point of the curve
        previous_end = pair.end()
        own = _KEY_SPLIT.search(key)
        if own:
            split, word = _SPLITS[own[1].lower()], ""  # sticky: `val loss: 1.2, acc: 45.8`
        metric = _metric(_KEY_SPLIT.sub(" ", key).strip(" _-/.") if own else key)
        stand_in = as_counter(to_float(pair["value"]))  # None: an `inf` / `nan` that is no stand-in
        index = -1 if stand_in is None else stand_in - _STAND_IN
        if metric is None or not 0 <= index < count:
            continue
        row_split = "train" if metric == "lr" else split
        name = f"{word} {key}" if word and not own and metric != "lr" else key
        first_split = first_split or row_split
        values.append((row_split, metric, name, index))
    return values, first_split in ("val", "test")


def _metric(key: str) -> str | None:
    """Canonical metric of a key without its split word; None for counters and timings."""
    normal = re.sub(r"[\s\-./]+", "_", key.strip().lower()).strip("_")
    if not normal or normal in _NOT_METRICS or key.strip().lower() in _NOT_METRICS:
        return None
    return _ALIASES.get(normal) or _ALIASES.get(key.strip().lower()) or canonical_metric(normal)


def _csv_records(text: str) -> list[_Line]:
    """`epoch,loss,ppl,accuracy` then rows of numbers (hand-written CSV): one record per row."""
    start = _LEADING_BREAKS.match(text).end()  # the first line that is not empty (no copy of the text)
    end = text.find("\n", start)
    header = text[start : end if end >= 0 else len(text)]
    if not _CSV_HEADER.match(header) or "loss" not in header.lower():
        return []
    skipped = text.find(header)
    first_line = text.count("\n", 0, skipped) + 1
    names = [name.strip() for name in header.split(",")]
    counter = next((i for i, name in enumerate(names) if name.lower() in ("epoch", "step", "iter")), None)
    metrics = [_metric(name) if i != counter else None for i, name in enumerate(names)]  # once, not per row
    records = []
    for offset, row in enumerate(text[skipped:].split("\n")[1:], start=1):
        if not _CSV_ROW.match(row):
            continue
        cells = [cell.strip() for cell in row.split(",")]
        if len(cells) != len(names):
            continue
        count = None if counter is None else as_counter(float(cells[counter]))  # nan, inf, 1e400: None
        epoch, it = (
            (count, None) if counter is not None and names[counter].lower() == "epoch" else (None, count)
        )
        values = [
            ("train", metric, name, to_float(cell))
            for name, metric, cell in zip(names, metrics, cells, strict=True)
            if metric is not None
        ]
        records.append(_Line(first_line + offset, float("nan"), epoch, it, None, False, values))
    return records


def _place(records: list[_Line]) -> list[tuple[_Line, At]]:
    """Steps and segments for the records (see the module docstring)."""
    train = [r for r in records if not r.evaluation]
    if not train:  # only evaluation lines (a validation log): they carry the counters
        train = records
        for record in records:
            record.evaluation = False
    base = 0 if any(r.epoch == 0 for r in records) else 1
    spans: list[int] = []
    new_runs: list[bool] = []  # batch counters: which training lines start a new run of the file
    if any(r.per_epoch for r in train):
        mode = "global"
    elif any(r.it is not None for r in train):
        mode = "running" if _resets_each_epoch(train) else "iteration"
        if mode == "running" and all(r.it is not None and r.epoch is not None for r in train):
            mode = "batch_of_epoch"
            back, run_spans = _epoch_spans(
                np.array([r.epoch for r in train], dtype=np.int64),
                np.array([r.it for r in train], dtype=np.int64),
            )
            new_runs, spans = back.tolist(), run_spans.tolist()
    elif train and all(r.epoch is not None for r in train) and _one_line_per_epoch(train):
        mode = "epoch"
    else:
        mode = "running"
    placed = []
    segment, step, count, trained = 0, 0, 0, 0
    last_key: tuple | None = None
    borrowed: list[bool] = []
    training: list[bool] = []
    for record in records:
        # evaluations and per-epoch summaries (`Epoch 0 completed | Avg Loss: ...`) sit at the last
        # training step
        training.append(not (record.evaluation or (mode in ("global", "iteration") and record.it is None)))
        borrowed.append(record.evaluation and record.epoch is None and record.it is None)
        if not training[-1]:
            if mode == "epoch" and record.epoch is not None:
                step = record.epoch
        else:
            if new_runs:
                went_back = new_runs[trained]
            else:
                key = _progress(record, mode, base)
                went_back = (
                    last_key is not None
                    and key is not None
                    and (key < last_key or (mode == "epoch" and key == last_key))
                )
                last_key = key if key is not None else last_key
            if went_back:
                segment, count = segment + 1, 0
            count += 1
            step = _step(record, mode, base, count, spans[trained] if spans else 0)
            trained += 1
        epoch = float(record.epoch) if record.epoch is not None else None
        at = _evaluation_step(record, mode, step)
        placed.append((record, At(at, record.number, segment, epoch, record.wall_time)))
    steps = [at.step for _, at in placed]
    _spread_evaluations(
        steps,
        [at.segment for _, at in placed],
        training,
        np.array(borrowed, dtype=bool),
        lambda k: frozenset((split, metric, name) for split, metric, name, _ in records[k].values),
    )
    return [(record, replace(at, step=s)) for (record, at), s in zip(placed, steps, strict=True)]


def _spread_evaluations(
    steps: MutableSequence[int],
    segments: Sequence[int],
    training: Sequence[bool],
    borrowed: np.ndarray,
    metrics: Callable[[int], frozenset],
) -> None:
    """Evaluation lines with no counter of their own (`borrowed`) sit at the last training step; when
    several evaluations lie between two training lines of a segment (per-epoch evaluations under a
    training line every few epochs), spread them evenly up to the next one, in place. A value met again
    (same split, metric and name) starts the next evaluation, so one evaluation printed over several lines
    stays at one step, and so do two sets evaluated together (`Validation BLEU-1`, `Dev BLEU-1`)."""
    if not borrowed.any():
        return
    edges = np.diff(np.concatenate(([0], borrowed.astype(np.int8), [0])))
    firsts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    several = (ends - firsts >= 2) & (ends < len(borrowed))
    for i, j in zip(firsts[several].tolist(), ends[several].tolist(), strict=True):
        a, b = int(steps[i]), int(steps[j])
        if not training[j] or segments[j] != segments[i] or b <= a:
            continue
        starts, seen = [i], metrics(i)
        for k in range(i + 1, j):
            if metrics(k) & seen:
                starts.append(k)
                seen = frozenset()
            seen |= metrics(k)
        for number, (first, end) in enumerate(zip(starts, [*starts[1:], j], strict=True)):
            for k in range(first, end):
                steps[k] = a + (b - a) * number // len(starts)


def _evaluation_step(record: _Line, mode: str, step: int) -> int:
    """Where a record sits, given the last training step: an evaluation line that prints the global
    iteration the training lines step by, and has not gone back, sits at it; anything else at `step`."""
    own = record.it
    if mode == "iteration" and record.evaluation and own is not None and not record.per_epoch and own >= step:
        return own
    return step


def _progress(record: _Line, mode: str, base: int) -> tuple | None:
    """What must not go back within one run (batch counters go back by `_epoch_spans`' rule)."""
    if mode == "global":
        return (_step(record, mode, base, 0, 0),)
    if mode == "iteration":
        return (record.it,)
    return (record.epoch,) if record.epoch is not None else None


def _step(record: _Line, mode: str, base: int, count: int, span: int) -> int:
    if mode == "global" and record.per_epoch:
        return max(0, (record.epoch or base) - base) * record.per_epoch + (record.it or 0)
    if mode == "batch_of_epoch":
        return max(0, (record.epoch or base) - base) * span + (record.it or 0)
    if mode in ("global", "iteration") and record.it is not None:
        return record.it
    if mode == "epoch" and record.epoch is not None:
        return record.epoch
    return count


def _resets_each_epoch(train: list[_Line]) -> bool:
    """Whether the iteration counter starts again when the epoch changes (a per-epoch counter; with one
    line per epoch, `[e, 4] loss:` repeats the same count)."""
    previous = None
    for record in train:
        if record.it is None or record.epoch is None:
            continue
        if previous and record.epoch > previous.epoch and record.it <= previous.it:
            return True
        previous = record
    return False


def _epoch_spans(epochs: np.ndarray, batches: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For training lines that print only the batch within the epoch (`[3, 2000] loss:`): whether each
    line starts a new run of the file (its (epoch, batch) goes back), and the steps an epoch spans in
    its run. Prints come every P batches, so the span is the one that keeps them P apart across epoch
    boundaries too (the median over the boundaries): prints every 5 steps of 16-batch epochs read
    `[1, 15]`, `[2, 4]`, a span of 5 + 15 - 4 = 16. With one print per epoch (no P), the largest batch
    (`[2, 5]`, `[4, 5]` of 5-batch epochs: steps 10, 20); never less than the batches printed."""
    back = np.zeros(len(epochs), dtype=bool)
    back[1:] = (epochs[1:] < epochs[:-1]) | ((epochs[1:] == epochs[:-1]) & (batches[1:] < batches[:-1]))
    spans = np.empty(len(epochs), dtype=np.int64)
    bounds = [*np.flatnonzero(back).tolist(), len(epochs)]
    for first, end in zip([0, *bounds[:-1]], bounds, strict=True):
        run_batches, run_epochs = batches[first:end], epochs[first:end]
        top, printed = int(run_batches.max()), int(run_batches.max() - run_batches.min())
        moved, step = np.diff(run_epochs), np.diff(run_batches)
        gaps = step[(moved == 0) & (step > 0)]
        if not len(gaps):
            span = top
        else:
            gap, crossing = float(np.median(gaps)), moved > 0
            # from one print to the next across d epochs: d * span + (next - previous) = gap
            fits = (gap - step[crossing]) / moved[crossing]
            span = int(np.round(np.median(fits))) if len(fits) else printed + int(np.round(gap))
        spans[first:end] = max(span, printed + 1, 1)
    return back, spans


def _one_line_per_epoch(train: list[_Line]) -> bool:
    """Whether training lines are per epoch: an epoch number repeats only where a run was appended
    (`Epoch 0` twice in a row), not on every line as with per-batch lines."""
    seen = [r.epoch for r in train]
    repeats = sum(a == b for a, b in pairwise(seen))
    return repeats <= max(1, len(seen) // 20)


def _name_losses(rows: Rows) -> None:
    """In each split without a plain `loss`: with per-batch and averaged losses the average is
    `loss` and the per-batch values `loss_raw` (train); a single kind is `loss`; else the first
    loss-like metric is `loss`."""
    by_split: dict[str, list[str]] = {}
    for split, metric, _ in rows.labels():
        if metric not in by_split.setdefault(split, []):
            by_split[split].append(metric)
    renames = {}
    for split, metrics in by_split.items():
        if "loss" in metrics:
            continue
        averaged = next((m for m in metrics if m in _AVG_LOSS), None)
        per_batch = next((m for m in metrics if m in _BATCH_LOSS), None)
        if averaged and per_batch:
            renames |= {(split, averaged): "loss", (split, per_batch): "loss_raw"}
        elif first := averaged or per_batch or next((m for m in metrics if "loss" in m), None):
            renames[(split, first)] = "loss"
    rows.rename_metrics(renames)


# --- the same reading, one line per layout ---------------------------------------------------------
# `_line_records` and `_place` cost about 20 µs of Python per line. `_read_layouts` gives the same
# rows (the snapshot check `bench/text_snapshot.py` compares them on every sample, corpus, real and
# fuzz-mutated log): it interprets the first line of each layout (see `LineLayouts`) with the same
# code, reads the numbers of the other lines from the same offsets with numpy, and places the records
# with array arithmetic. Files it does not handle exactly (yearless stamps, a timestamp fraction past
# 15 digits, a shape whose noise test differs between its lines, more than _MAX_SHAPES shapes, a step
# past 2**62) go through `_line_records`.
_DIGIT_KEYWORDS = [word.encode().translate(DIGITS_AS_ZERO) for word in _KEYWORDS]
_DIGIT_KEYWORDS = [word for word in _DIGIT_KEYWORDS if b"0" in word]
_PLAIN_KEYWORDS = [word.encode() for word in _KEYWORDS if not any(c.isdigit() for c in word)]
_STEP_LIMIT = 2.0**62  # a step computed as epoch * N + k must stay well inside int64


@dataclass
class _Layout:
    """A line layout as its first line reads: where its message starts and its numbers are."""

    line: str
    message_start: int  # characters of the logging prefix
    tokens: list[tuple[int, int]]  # character spans of the numbers, in the line
    free_digits: list[int]  # offsets of the message's ASCII digits outside numbers (`acc@5`, `BLEU-1`)
    noise: bool


def _layout(line: str) -> _Layout:
    message = strip_log_prefix(line)
    start = len(line) - len(message)
    tokens = [(start + found.start(), start + found.end()) for found in _TOKEN.finditer(message)]
    in_token = {offset for first, end in tokens for offset in range(first, end)}
    free = [i for i in range(start, len(line)) if "0" <= line[i] <= "9" and i not in in_token]
    return _Layout(line, start, tokens, free, _NOISE.search(line) is not None)


def _is_candidate(key: bytes, line: str) -> bool | None:
    """Whether the lines of a layout are candidates (`_candidate_starts`); None: it depends on digits."""
    if any(word in key for word in _PLAIN_KEYWORDS):
        return True
    for word in _BLOCK_WORDS:
        at = line.find(word)
        while at >= 0:
            if line[at:].rstrip().endswith(":"):
                return True
            at = line.find(word, at + 1)
    return None if any(word in key for word in _DIGIT_KEYWORDS) else False


def _read_layouts(layouts: LineLayouts, rows: Rows) -> None:
    """Fill `rows` as `_line_records` + `_place` would; Unsupported when it cannot do so exactly."""
    shapes = _Shapes(len(layouts))
    described: dict[int, _Layout] = {}
    for number, key in enumerate(layouts.keys):
        members = layouts.members(number)
        line = layouts.line(int(members[0]))
        candidate = _is_candidate(key, line)
        if candidate is None:
            members = np.array(
                [i for i in members.tolist() if any(w in layouts.line(i) for w in _KEYWORDS)], dtype=np.int64
            )
        elif not candidate:
            continue
        if not len(members):
            continue
        layout = described[number] = _layout(line)
        for some, message in _variants(layouts, layout, members):
            shapes.add(some, message, layout.noise)
    record_line, record_plan, plans = shapes.records()
    if not len(record_line):
        return
    count = len(record_line)
    counters = {key: np.full(count, math.nan) for key in ("ep", "it", "n")}
    seconds = np.full(count, math.nan)
    width = max(len(plans[pid].values) for pid in set(record_plan.tolist()))
    values = np.full((count, width), math.nan)
    record_layout = layouts.layout[record_line]
    # one pass per (layout, plan): the numbers sit at the same offsets in all its lines
    pair = record_layout * len(plans) + record_plan
    pair_order = np.argsort(small_codes(pair, len(plans) * len(layouts.keys)), kind="stable")
    for chunk in np.split(pair_order, np.flatnonzero(np.diff(pair[pair_order])) + 1):
        layout = described[int(record_layout[chunk[0]])]
        plan = plans[int(record_plan[chunk[0]])]
        starts = layouts.byte_start[record_line[chunk]]
        for key, index in plan.counters.items():
            if key not in counters:  # `ept`, the N of `Epoch 3/10`, is not used
                continue
            read = floats_at(layouts, starts, layout.line, *layout.tokens[index])
            fine = np.isfinite(read) & (np.abs(read) <= MAX_COUNTER)
            counters[key][chunk] = np.where(fine, np.trunc(read), math.nan)
        for slot, (_, _, _, index) in enumerate(plan.values):
            values[chunk, slot] = floats_at(layouts, starts, layout.line, *layout.tokens[index])
        stamps, has_year = stamps_at(layouts, starts, layout.line)
        if not has_year:
            raise Unsupported("yearless stamps")
        seconds[chunk] = stamps
    evaluation = np.array([plan.evaluation for plan in plans])[record_plan]
    epoch, it, per_epoch = counters["ep"], counters["it"], counters["n"]
    named = [frozenset((split, metric, name) for split, metric, name, _ in plan.values) for plan in plans]
    step, segment = _place_columns(epoch, it, per_epoch, evaluation, lambda i: named[record_plan[i]])
    at = {
        "step": step,
        "line": record_line + 1,
        "segment": segment,
        "epoch": epoch,
        "wall_time": since_first(seconds),
    }
    labels: dict[tuple[str, str, str], int] = {}
    slot_label = np.full((len(plans), width), -1, dtype=np.int64)
    for pid in sorted(set(record_plan.tolist())):
        for slot, (split, metric, name, _) in enumerate(plans[pid].values):
            slot_label[pid, slot] = labels.setdefault((split, metric, name), len(labels))
    label = slot_label[record_plan]
    present = label >= 0
    record = np.broadcast_to(np.arange(count)[:, None], label.shape)[present]
    rows.add_columns(at, record, list(labels), label[present], values[present])


class _Shapes:
    """The candidate lines by shape (the message with its numbers taken out), and their plans."""

    def __init__(self, line_count: int) -> None:
        self._line_count = line_count
        self._ids: dict[str, int] = {}
        self._lines: list[list[np.ndarray]] = []
        self._messages: list[str] = []
        self._noise: list[bool] = []
        self._plan_ids: dict[tuple[int, tuple[str, str] | None], int] = {}
        self.plans: list[_Plan] = []

    def add(self, lines: np.ndarray, message: str, noise: bool) -> None:
        shape = self._ids.setdefault(_TOKEN.sub("\0", message), len(self._ids))
        if shape == len(self._lines):
            if shape >= _MAX_SHAPES:
                raise Unsupported("too many shapes")
            self._lines.append([])
            self._messages.append(message)
            self._noise.append(noise)
        elif self._noise[shape] != noise:  # the plan would depend on which line comes first
            raise Unsupported("noise differs within a shape")
        self._lines[shape].append(lines)

    def _plan_id(self, shape: int, context: tuple[str, str] | None) -> int:
        key = (shape, context)
        found = self._plan_ids.get(key)
        if found is None:
            if len(self._plan_ids) >= _MAX_SHAPES:
                raise Unsupported("too many shapes")
            found = self._plan_ids[key] = len(self.plans)
            noise = self._noise[shape]
            self.plans.append(_NOTHING if noise else _plan(_TOKEN.split(self._messages[shape]), context))
        return found

    def records(self) -> tuple[np.ndarray, np.ndarray, list[_Plan]]:
        """(line, plan) of every record in file order, and the plans, as `_line_records` reads them:
        a line right after an evaluation header (or after a line read under one) takes its split."""
        if not self._lines:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), self.plans
        shape_of_line = np.full(self._line_count, -1, dtype=np.int64)
        for shape, parts in enumerate(self._lines):
            for some in parts:
                shape_of_line[some] = shape
        line = np.flatnonzero(shape_of_line >= 0)
        shape = shape_of_line[line]
        plain = np.array([self._plan_id(i, None) for i in range(len(self._lines))])
        plan = plain[shape]
        opens = np.array([bool(self.plans[p].opens) for p in plain])[shape]
        for at in np.flatnonzero(opens).tolist():
            context = self.plans[int(plan[at])].opens
            while at + 1 < len(line) and line[at + 1] == line[at] + 1:
                at += 1
                plan[at] = self._plan_id(int(shape[at]), context)
                read = self.plans[int(plan[at])]
                if read.opens is not None or not read.values or not read.in_block:
                    break
        kept = np.array([p.opens is None and bool(p.values) for p in self.plans])[plan]
        return line[kept], plan[kept], self.plans


def _variants(layouts: LineLayouts, layout: _Layout, members: np.ndarray) -> list[tuple[np.ndarray, str]]:
    """The lines of a layout split by the digits that are part of their message's words (`acc@1` and
    `acc@5` share a layout), each part with its message."""
    message = layout.line[layout.message_start :]
    if not layout.free_digits:
        return [(members, message)]
    offsets = [len(layout.line[:i].encode("utf-8")) for i in layout.free_digits]
    digits = layouts.bytes[layouts.byte_start[members][:, None] + np.asarray(offsets)]
    kinds, which = np.unique(digits, axis=0, return_inverse=True)
    variants = []
    for kind, row in enumerate(kinds):
        chars = list(layout.line)
        for offset, digit in zip(layout.free_digits, row.tolist(), strict=True):
            chars[offset] = chr(digit)
        variants.append((members[which.ravel() == kind], "".join(chars)[layout.message_start :]))
    return variants


def _place_columns(
    epoch: np.ndarray,
    it: np.ndarray,
    per_epoch: np.ndarray,
    evaluation: np.ndarray,
    metrics: Callable[[int], frozenset],
) -> tuple[np.ndarray, np.ndarray]:
    """`_place` over arrays (NaN where a counter is None): the step and segment of every record;
    `metrics(i)` names the (split, metric, name) values of record i."""
    count = len(epoch)
    train = ~evaluation
    if not train.any():
        evaluation = np.zeros(count, dtype=bool)
        train = ~evaluation
    has_epoch, has_it = ~np.isnan(epoch), ~np.isnan(it)
    per_epoch_set = ~np.isnan(per_epoch) & (per_epoch != 0)
    base = 0 if (epoch == 0).any() else 1
    if (train & per_epoch_set).any():
        mode = "global"
    elif (train & has_it).any():
        both = train & has_it & has_epoch
        e, i = epoch[both], it[both]
        mode = "running" if ((e[1:] > e[:-1]) & (i[1:] <= i[:-1])).any() else "iteration"
        if mode == "running" and not (train & ~both).any():
            mode = "batch_of_epoch"
    elif has_epoch[train].all() and _one_line_per_epoch_array(epoch[train]):
        mode = "epoch"
    else:
        mode = "running"
    skip = evaluation | ((mode in ("global", "iteration")) & ~has_it)
    active = ~skip
    # in int64, exact like Python's ints: counters are at most 2**53, and a step past _STEP_LIMIT is
    # left to `_line_records`
    epochs = np.where(has_epoch, epoch, 0).astype(np.int64)
    iterations = np.where(has_it, it, 0).astype(np.int64)
    if mode == "global":
        since_base = np.maximum(0, np.where(epochs != 0, epochs, base) - base)
        sizes = np.where(per_epoch_set, per_epoch, 0).astype(np.int64)
        if (np.abs(since_base * sizes.astype(np.float64) + iterations) >= _STEP_LIMIT).any():
            raise Unsupported("step past int64")
        key = np.where(per_epoch_set, since_base * sizes + iterations, iterations)
        keyed = np.flatnonzero(active)
    elif mode == "batch_of_epoch":
        keyed = np.flatnonzero(active)
        run_starts, run_spans = _epoch_spans(epochs[keyed], iterations[keyed])
        spans = np.zeros(count, dtype=np.int64)
        spans[keyed] = run_spans
        since_base = np.maximum(0, np.where(epochs != 0, epochs, base) - base)
        if (np.abs(since_base.astype(np.float64) * spans + iterations) >= _STEP_LIMIT).any():
            raise Unsupported("step past int64")
        key = since_base * spans + iterations
    elif mode == "iteration":
        key, keyed = iterations, np.flatnonzero(active)
    else:
        key, keyed = epochs, np.flatnonzero(active & has_epoch)
    keys = key[keyed]
    if mode == "batch_of_epoch":
        back = run_starts[1:]
    else:
        back = keys[1:] <= keys[:-1] if mode == "epoch" else keys[1:] < keys[:-1]
    starts = np.zeros(count, dtype=np.int64)
    starts[keyed[1:][back]] = 1
    segment = np.cumsum(starts)
    # the running count: active records since the start of their segment, this one included
    active_so_far = np.cumsum(active)
    running = active_so_far - np.maximum.accumulate(np.where(starts == 1, active_so_far - 1, 0))
    if mode in ("global", "iteration", "batch_of_epoch"):
        own = np.where(has_it, key, running)  # global: key is epoch * N + k or the iteration
    elif mode == "epoch":
        own = np.where(has_epoch, epochs, running)
    else:
        own = running
    setter = active | (skip & has_epoch) if mode == "epoch" else active
    last = np.maximum.accumulate(np.where(setter, np.arange(count), -1))
    step = np.where(last >= 0, own[np.maximum(last, 0)], 0)
    if mode == "iteration":  # `_evaluation_step` over arrays
        stated = evaluation & has_it & ~per_epoch_set & (iterations >= step)
        step = np.where(stated, iterations, step)
    _spread_evaluations(step, segment, active, evaluation & ~has_epoch & ~has_it, metrics)
    return step, segment


def _one_line_per_epoch_array(epochs: np.ndarray) -> bool:
    repeats = int((epochs[1:] == epochs[:-1]).sum())
    return repeats <= max(1, len(epochs) // 20)
