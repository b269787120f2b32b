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
window, canonical `skipped_iters` / `nan_iters`), `num zeros` and `params norm` are kept. Counters and
timings (`consumed samples`, `elapsed time per iteration`, throughput, energy) are not curves; the
`global batch size` of the first line is the run's batch size. Losses are averages over the
`--log-interval` window. An iteration that goes back starts a new segment (a run resumed earlier).
"""

from __future__ import annotations

import re

import numpy as np

from parsers.formats import _llm
from parsers.formats._textlog import sniff_head
from parsers.model import LogLine, RunMeta
from parsers.names import canonical_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "megatron"
FRAMEWORK = "megatron"

# a training line (prefix, step) or a validation line (prefix, step, set) up to its first `|`, then the
# `key: value |` fields up to the last `|` (what follows it may be cut off mid-number)
_RECORD = _llm.LineRecord.of(
    "iteration",
    r"([^|\n]*?)(?:iteration[^\S\n]+(\d+)[^\S\n]*/[^\S\n]*\d+|loss at iteration[^\S\n]+(\d+)"
    r"(?: on (validation|test) set)?)[^\S\n]*\|((?:[^\n]*\|)?)[^\n]*",
)
_VALUE = re.compile(
    r":[^|\n]*+\|"
)  # a field's value, from the first colon: the layout of a line is without them
_FIELD_VALUE = re.compile(r":([^|\n]*+)\|")
_SNIFF = re.compile(r"iteration\s+\d+\s*/\s*\d+\s*\|\s*consumed (?:samples|tokens):")
_KEYS = {
    "learning rate": "lr",
    "grad norm": "grad_norm",
    "loss scale": "loss_scale",
    "number of skipped iterations": "skipped_iters",
    "number of nan iterations": "nan_iters",
    "num zeros": "num_zeros",
    "params norm": "params_norm",
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
    rows = _llm.RecordRows(_llm.floats(steps)[0], lines, _llm.wall_times(prefixes))
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
) -> tuple[np.ndarray, list[str], list[str], list[str], dict[str, tuple[np.ndarray, list[str]]]]:
    """(line numbers, steps, splits, logging prefixes, key -> (records, value texts)) of the training and
    validation lines, keys in the order they first appear. A log repeats a few layouts of keys millions
    of times, so the lines are grouped by layout (the line with its values taken out) and each layout's
    values are read by one `findall` over its lines: per record, no Python-level call."""
    ((numbers, (prefixes, train_steps, other_steps, sets, rests)),) = _llm.record_lines(text, (_RECORD,))
    steps = [train or other for train, other in zip(train_steps, other_steps, strict=True)]
    splits = [
        "train" if train else "test" if name == "test" else "val"
        for train, name in zip(train_steps, sets, strict=True)
    ]
    chunks: dict[str, list[tuple[np.ndarray, int, list[str]]]] = {}  # raw key -> (records, field, values)
    layouts = _VALUE.sub(":|", "\n".join(rests)).split("\n") if rests else []
    ids = dict.fromkeys(layouts, 0)
    for number, layout in enumerate(ids):
        ids[layout] = number
    codes = np.fromiter(map(ids.__getitem__, layouts), dtype=np.int64, count=len(layouts))
    for code, layout in enumerate(ids):
        records = np.flatnonzero(codes == code)
        keys = [field[:-1] for field in layout.split("|") if ":" in field]
        values = _FIELD_VALUE.findall("\n".join([rests[i] for i in records.tolist()]))
        for position, key in enumerate(keys):
            chunks.setdefault(key, []).append((records, position, values[position :: len(keys)]))
    first = {
        key: min((int(records[0]), position) for records, position, _ in found)
        for key, found in chunks.items()
    }
    merged: dict[str, tuple[np.ndarray, list[str]]] = {}
    for key in sorted(chunks, key=first.__getitem__):  # ` lm loss` and `lm loss ` are one key
        where, texts = _in_record_order(chunks[key])
        name = key.strip()
        if name in merged:
            where = np.concatenate([merged[name][0], where])
            texts = [*merged[name][1], *texts]
        merged[name] = (where, texts)
    return numbers, steps, splits, prefixes, merged


def _in_record_order(found: list[tuple[np.ndarray, int, list[str]]]) -> tuple[np.ndarray, list[str]]:
    """(records, value texts) of one key from its layouts, record by record (a key twice in a line: in
    the order of the line)."""
    if len(found) == 1:
        return found[0][0], found[0][2]
    records = np.concatenate([records for records, _, _ in found])
    fields = np.concatenate([np.full(len(records), position) for records, position, _ in found])
    texts = [text for _, _, values in found for text in values]
    order = np.lexsort((fields, records))
    return records[order], [texts[i] for i in order.tolist()]


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
