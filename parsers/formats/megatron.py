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
throughput, energy) are not curves; the `global batch size` of the first line is the run's batch size.
Losses are averages over the `--log-interval` window. An iteration that goes back starts a new segment
(a run resumed earlier).
"""

from __future__ import annotations

import re

import numpy as np

from parsers.formats import _llm
from parsers.formats._textlog import sniff_head
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


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


def parse(source: SourceFile) -> ParsedFile:
    text, meta = _llm.start(source, FORMAT, FRAMEWORK)
    lines, steps, split, prefixes, fields = _records(text)
    count = len(lines)
    columns = {}
    for key, (where, texts) in fields.items():
        values, present = np.full(count, np.nan), np.zeros(count, dtype=bool)
        values[where], present[where] = _llm.floats(texts)
        columns[key] = (values, present)
    rows = _llm.RecordRows(
        _llm.floats(steps)[0], np.asarray(lines, dtype=np.int64), _llm.wall_times(prefixes)
    )
    split = np.asarray(split, dtype=object)
    in_split = {name: split == name for name in ("train", "val", "test")}
    loss_key = _loss_key(columns)
    for key, (values, present) in columns.items():
        metric = _metric(key, loss_key)
        if metric is None:
            continue
        for name, records in in_split.items():
            rows.add(values, present & records, name, metric, key)
    _batch_size(text, meta, source.name, columns)
    return rows.parsed(source.name, meta, "no Megatron `iteration N/ M |` lines with values found")


def _records(
    text: str,
) -> tuple[list[int], list[str], list[str], list[str], dict[str, tuple[np.ndarray, list[str]]]]:
    """(line numbers, steps, splits, logging prefixes, key -> (records, value texts)) of the training and
    validation lines. Plain string methods per line: `split("|")` and `partition(":")` are C calls, and
    on these wide lines they beat any regex over the fields."""
    numbers: list[int] = []
    steps: list[str] = []
    splits: list[str] = []
    prefixes: list[str] = []
    fields: dict[str, tuple[list[int], list[str]]] = {}
    for number, line in enumerate(text.split("\n"), start=1):
        if "iteration" not in line:
            continue
        head, bar, rest = line.partition("|")
        found = _HEAD.match(head) if bar else None
        if found is None:
            continue
        record = len(numbers)
        numbers.append(number)
        prefixes.append(found[1])
        if found[2] is not None:
            steps.append(found[2])
            splits.append("train")
        else:
            steps.append(found[3])
            splits.append("test" if found[4] == "test" else "val")
        for field in rest.split("|")[:-1]:  # what follows the last `|` may be cut off mid-number
            key, colon, value = field.partition(":")
            if colon:
                column = fields.get(key)
                if column is None:
                    column = fields[key] = ([], [])
                column[0].append(record)
                column[1].append(value)
    merged: dict[str, tuple[np.ndarray, list[str]]] = {}
    for key, (where, texts) in fields.items():  # ` lm loss` and `lm loss ` are one key
        name = key.strip()
        if name in merged:
            where = [*merged[name][0], *where]
            texts = [*merged[name][1], *texts]
        merged[name] = (np.asarray(where, dtype=np.int64), texts)
    return numbers, steps, splits, prefixes, merged


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
    if "global batch size" not in columns:
        return
    values, present = columns["global batch size"]
    if present.any():
        first = int(np.flatnonzero(present)[0])
        found = re.search(r"global batch size:\s*\d+", text)
        line = text.count("\n", 0, found.start()) + 1 if found else 0
        meta.set("batch_size", int(values[first]), LogLine(name, line, found[0] if found else ""))
