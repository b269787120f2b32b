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

from parsers.formats._jsonlines import ColumnRows, Problems
from parsers.formats._llm import pipe_columns, wall_times
from parsers.formats._textlog import LineCounter, sniff_head
from parsers.hparams import hyperparams_from_text
from parsers.model import LogLine, RunMeta
from parsers.names import canonical_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "megatron"
FRAMEWORK = "megatron"

_TRAIN = re.compile(r"\biteration\s+(\d+)\s*/\s*(\d+)\s*\|([^\n]*)")
_VALID = re.compile(
    r"\b(validation|test) loss at iteration\s+(\d+)(?: on (?:validation|test) set)?\s*\|([^\n]*)"
)
_SNIFF = re.compile(r"\biteration\s+\d+\s*/\s*\d+\s*\|\s*consumed (?:samples|tokens):")
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
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    records = sorted(
        [
            (m.start(), int(m[1]), "train", m[3] if m[3].endswith("|") else m[3] + "|")
            for m in _TRAIN.finditer(text)
        ]
        + [
            (
                m.start(),
                int(m[2]),
                "val" if m[1] == "validation" else "test",
                m[3] if m[3].endswith("|") else m[3] + "|",
            )
            for m in _VALID.finditer(text)
        ]
    )
    counter = LineCounter(text)
    starts = [record[0] for record in records]
    lines = np.fromiter((counter.line(start) for start in starts), dtype=np.int64, count=len(records))
    splits = np.asarray([record[2] for record in records], dtype=object)
    rows = ColumnRows(
        np.asarray([record[1] for record in records], dtype=np.int64),
        lines,
        wall_time=wall_times(text, starts),
    )
    columns = pipe_columns([record[3] for record in records])
    loss_key = _loss_key(columns)
    for key, (values, present) in columns.items():
        metric = _metric(key, loss_key)
        if metric is None:
            continue
        for split in ("train", "val", "test"):
            rows.add(values, present & (splits == split), split, metric, key)
    _batch_size(text, meta, source.name, columns)
    return rows.parsed(
        source.name, meta, Problems(source.name), "no Megatron `iteration N/ M |` lines with values found"
    )


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
