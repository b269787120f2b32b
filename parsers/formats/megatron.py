"""Megatron-LM (and Megatron-DeepSpeed, NeMo's Megatron core) `training_log` lines and validation lines.

     iteration     6900/  159576 | consumed samples:       251312 | elapsed time per iteration (ms):
       18495.6 | learning rate: 6.000E-05 | global batch size:    96 | lm loss: 6.365808E+00 | loss scale:
       4096.0 | grad norm: 95313.572 | num zeros: 0.0 | number of skipped iterations:   0 |
       number of nan iterations:   0 |
     validation loss at iteration 7000 | lm loss value: 7.174200E+00 | lm loss PPL: 1.305315E+03 |

(one line each; newer versions put `[YYYY-mm-dd HH:MM:SS.ffffff]` in front and ` on validation set` after
the iteration). A line is split on `|` and every `key: value` is read: the loss keys vary with the model
(`lm loss`, `sop loss`, MoE `load_balancing_loss`, `z_loss`, MTP losses). `lm loss` is the loss, the
first other `*loss*` key when there is none; `learning rate`, `grad norm`, `loss scale` (1.0 all along in a
bf16 run), `number of skipped iterations` / `number of nan iterations` (counts over the logging
window, canonical `skipped_iters` / `nan_iters`), `num zeros` and `params norm` are kept, and so is
`consumed samples` (`consumed_samples`: where the run is in its data order, which LD501 aligns runs on,
also while the batch size ramps up). Other counters and timings (`elapsed time per iteration`,
throughput, energy) are not curves; the `global batch size` of the first line is the run's batch size,
the `M` of its `iteration N/ M` the planned iterations (`max_iter`, `--train-iters`).
Losses are averages over the `--log-interval` window. An iteration that goes back starts a new segment
(a run resumed earlier).
"""

from __future__ import annotations

import re

import numpy as np

from parsers.formats import _llm
from parsers.formats._textlog import normal_pages, sniff_head
from parsers.model import LogLine, RunMeta
from parsers.names import CONSUMED_SAMPLES, canonical_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "megatron"
FRAMEWORK = "megatron"

# what comes before the first `|` of a training line (prefix, step) or a validation line (prefix, step, set)
_HEAD = re.compile(
    r"(.*?)(?:iteration\s+(\d+)\s*/\s*\d+|loss at iteration\s+(\d+)(?: on (validation|test) set)?)\s*$"
)
_SNIFF = re.compile(r"iteration\s+\d+\s*/\s*\d+\s*\|\s*consumed (?:samples|tokens):")
_KEYS = {
    "learning rate": "lr",
    "grad norm": "grad_norm",
    "loss scale": "loss_scale",
    "number of skipped iterations": "skipped_iters",
    "number of nan iterations": "nan_iters",
    "num zeros": "num_zeros",
    "params norm": "params_norm",
    "consumed samples": CONSUMED_SAMPLES,
}
_NOT_CURVES = re.compile(
    r"consumed|elapsed|throughput|tokens per|samples per|energy|power|skipped samples|global batch size|"
    r"batch size|TFLOP|time|memory",
    re.IGNORECASE,
)
_SUFFIXES = (" value", " PPL")
_BATCH_SIZE = "global batch size"
_PLANNED = re.compile(r"iteration\s+\d+\s*/\s*(\d+)\s*\|")
_SPLITS = ("train", "val", "test")
# fields of a record that are not `key: value` pairs (a key holds no `|`)
_STEP, _SPLIT = "|step", "|split"


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


@normal_pages()
def parse(source: SourceFile) -> ParsedFile:
    text, meta = _llm.start(source, FORMAT, FRAMEWORK)
    (records,) = _llm.read_records(text, (_LINE,))
    rows = _llm.RecordRows(records.number(_STEP)[0], records.lines, _llm.wall_times(records.stamps))
    columns = {key: column for key, column in records.numbers.items() if key not in (_STEP, _SPLIT)}
    split = records.number(_SPLIT)[0]
    in_split = {name: split == code for code, name in enumerate(_SPLITS)}
    loss_key = _loss_key(columns)
    for key, (values, present) in columns.items():
        metric = _metric(key, loss_key)
        if metric is None:
            continue
        for name, records_of in in_split.items():
            rows.add(values, present & records_of, name, metric, key)
    _batch_size(text, meta, source.name, columns)
    _planned_iterations(text, meta, source.name)
    return rows.parsed(source.name, meta, "no Megatron `iteration N/ M |` lines with values found")


def _interpret(line: str) -> _llm.Reading | None:
    """A training or validation line: its step, split and every `key: value` after the first `|` that
    is read (what follows the last `|` may be cut off mid-number). Plain string methods: `split("|")`
    and `partition(":")` beat any regex over these wide lines. Keys are named spans: their digits
    (`mtp_1 loss`) change the reading."""
    head, bar, rest = line.partition("|")
    found = _HEAD.match(head) if bar else None
    if found is None:
        return None
    if found[2] is not None:
        numbers, split = {_STEP: found.span(2)}, 0
    else:
        numbers, split = {_STEP: found.span(3)}, _SPLITS.index("test" if found[4] == "test" else "val")
    named = []
    offset = len(head) + 1
    for field in rest.split("|")[:-1]:
        key, colon, value = field.partition(":")
        if colon:
            name = key.strip()
            named.append((offset, offset + len(key)))
            if name in _KEYS or name == _BATCH_SIZE or not _NOT_CURVES.search(name):
                first = offset + len(key) + 1 + len(value) - len(value.lstrip())
                numbers[name] = (first, first + len(value.strip()))
        offset += len(field) + 1
    return _llm.Reading(found.end(1), numbers, {_SPLIT: float(split)}, tuple(named))


_LINE = _llm.LineKind("iteration", _interpret)


def _loss_key(columns: dict[str, tuple[np.ndarray, np.ndarray]]) -> str | None:
    """The key that is `loss`: `lm loss` (validation: `lm loss value`), else the first other loss."""
    names = [key for key in columns if key not in _KEYS and not _NOT_CURVES.search(key)]
    for key in names:
        if _base(key) == "lm loss":
            return "lm loss"
    losses = [_base(key) for key in names if "loss" in key.lower()]
    return losses[0] if losses else None


def _base(key: str) -> str:
    for suffix in _SUFFIXES:
        if key.endswith(suffix):
            return key[: -len(suffix)]
    return key


def _metric(key: str, loss_key: str | None) -> str | None:
    if key in _KEYS:
        return _KEYS[key]
    if _NOT_CURVES.search(key):
        return None
    base = _base(key)
    if key.endswith(" PPL"):
        return "perplexity" if base == loss_key else canonical_metric(f"{base} ppl")
    return "loss" if base == loss_key else canonical_metric(base)


def _batch_size(
    text: str, meta: RunMeta, name: str, columns: dict[str, tuple[np.ndarray, np.ndarray]]
) -> None:
    if _BATCH_SIZE not in columns:
        return
    values, present = columns[_BATCH_SIZE]
    if present.any():
        first = int(np.flatnonzero(present)[0])
        found = re.search(r"global batch size:\s*\d+", text)
        line = text.count("\n", 0, found.start()) + 1 if found else 0
        meta.set("batch_size", int(values[first]), LogLine(name, line, found[0] if found else ""))


def _planned_iterations(text: str, meta: RunMeta, name: str) -> None:
    """`--train-iters`, the `M` of the first `iteration N/ M |` line: the fixes size a warm-up by it."""
    found = _PLANNED.search(text)
    if found is not None:
        line = text.count("\n", 0, found.start()) + 1
        meta.set("max_iter", int(found[1]), LogLine(name, line, found[0]))
