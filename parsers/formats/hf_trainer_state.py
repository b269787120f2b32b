"""HuggingFace Trainer `trainer_state.json`: the `log_history` list of logged dicts.

Train entries carry `loss`, `learning_rate`, `grad_norm`, `epoch`, `step` and whatever the trainer
adds (TRL: `mean_token_accuracy`); eval entries carry `eval_*` keys (split val). The last entry of
a finished run is a summary (`train_runtime`, `train_loss` = the mean loss over the whole run):
it is no point of the curve, because read like the others it would put the run's AVERAGE loss on
the curve at the last step, a false jump; its `train_loss` is kept as the fact `train_loss_mean`.
Throughput and counters (`*_runtime`, `*_per_second`, `total_flos`, `num_tokens`) are not training
signals and are left out.

Each entry is decoded on its own (`raw_decode`), so every value keeps the line of its key
(`"loss": NaN,` is the line evidence quotes) and a file cut off mid-write still yields the entries
before the cut.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

import numpy as np

from parsers.formats._jsonlines import ColumnRows, Problems, as_step, keys_of, numeric_column
from parsers.model import LogLine, RunMeta
from parsers.names import KEY_CACHE_SIZE, split_and_metric
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "hf_trainer_state"
FRAMEWORK = "pytorch"

_LOG_HISTORY = re.compile(r'"log_history"\s*:\s*\[')
_NOT_METRICS = {"step", "epoch", "total_flos", "num_input_tokens_seen"}
_NOT_METRIC_SUFFIXES = ("_runtime", "_per_second", "num_tokens")
# top-level key -> RunMeta fact (train_batch_size is the per-step batch the Trainer saw)
_FACTS = {"max_steps": "max_iter", "num_train_epochs": "epochs", "train_batch_size": "batch_size"}


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text()
    return 0.95 if head.lstrip().startswith("{") and _LOG_HISTORY.search(head) else 0.0


@lru_cache(maxsize=KEY_CACHE_SIZE)
def metric_of(key: str) -> tuple[str, str] | None:
    """(split, metric) of a log_history key; None for counters and timings."""
    if key in _NOT_METRICS or key.endswith(_NOT_METRIC_SUFFIXES):
        return None
    return split_and_metric(key)


def parse(source: SourceFile) -> ParsedFile:
    text = source.text
    start = _LOG_HISTORY.search(text)
    if start is None:
        raise ParseError('no "log_history" list: not a HuggingFace trainer_state.json')
    problems = Problems(source.name)
    entries, lines, pretty, end = _entries(text, start.end(), problems)
    meta = _meta(source.name, text, start.start(), end, problems)
    steps = [as_step(entry.get("step")) for entry in entries]
    for line, step in zip(lines, steps, strict=True):
        if step is None:
            problems.add(line, "log_history entry without a step; skipped")
    # the end-of-training summary (`train_runtime`) is left out of the curve, see the module docstring
    for entry, line, one_key_each in zip(entries, lines, pretty, strict=True):
        if "train_runtime" in entry:
            _summary_mean(source.name, entry, line, one_key_each, meta)
    keep = [
        step is not None and "train_runtime" not in entry for step, entry in zip(steps, entries, strict=True)
    ]
    entries = [entry for entry, kept in zip(entries, keep, strict=True) if kept]
    first_lines = np.asarray(lines, dtype=np.int64)[keep]
    one_key_per_line = np.asarray(pretty, dtype=bool)[keep]
    kept_steps = np.array([step for step, kept in zip(steps, keep, strict=True) if kept], dtype=np.int64)
    rows = ColumnRows(kept_steps, first_lines, epoch=numeric_column(entries, "epoch")[0])
    # json.dumps(indent=2) puts each key on a line of its own, in order, right after the "{" line
    positions = [{key: index for index, key in enumerate(entry, start=1)} for entry in entries]
    for key in keys_of(entries):
        target = metric_of(key)
        if target is None:
            continue
        values, present = numeric_column(entries, key)
        offset = np.fromiter((p.get(key, 0) for p in positions), dtype=np.int64, count=len(entries))
        rows.add(values, present, target[0], target[1], key, line=first_lines + offset * one_key_per_line)
    return rows.parsed(source.name, meta, problems, "log_history holds no logged metrics")


def _entries(
    text: str, position: int, problems: Problems
) -> tuple[list[dict[str, Any]], list[int], list[bool], int]:
    """The log_history entries decoded one by one from `position` (just after the `[`), with the
    line each starts on and whether it is pretty-printed one key per line; also where the list
    ends. A cut-off entry ends the list with a warning."""
    decoder = json.JSONDecoder()
    entries: list[dict[str, Any]] = []
    lines: list[int] = []
    pretty: list[bool] = []
    counted = position
    line = text.count("\n", 0, counted) + 1  # the line of text[counted]
    while True:
        while position < len(text) and text[position] in " \t\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return entries, lines, pretty, position
        line += text.count("\n", counted, position)
        counted = position
        try:
            entry, end = decoder.raw_decode(text, position)
        except ValueError:
            problems.add(line, "log_history ends in an incomplete entry (file cut off?); read up to here")
            return entries, lines, pretty, position
        if isinstance(entry, dict):
            entries.append(entry)
            lines.append(line)
            pretty.append(text.count("\n", position, end) == len(entry) + 1)
        position = end


def _meta(name: str, text: str, history_start: int, history_end: int, problems: Problems) -> RunMeta:
    """Run facts from the top-level keys; the line of each key is searched outside log_history."""
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    try:
        state = json.loads(text)
    except ValueError:
        problems.add(0, "the file is not complete JSON; run facts (max_steps, ...) not read")
        return meta
    if not isinstance(state, dict):
        return meta

    def where(key: str) -> LogLine:
        pattern = re.compile(rf'"{re.escape(key)}"\s*:[^\n]*')
        found = pattern.search(text, 0, history_start) or pattern.search(text, history_end)
        if found is None:
            return LogLine(name, 1, f'"{key}": {json.dumps(state[key])}')
        return LogLine(name, text.count("\n", 0, found.start()) + 1, found[0].rstrip(","))

    for key, value in state.items():
        if value is None or isinstance(value, str | int | float | bool):
            meta.hyperparams[key] = str(value)
    for key, fact in (
        ("max_steps", "max_iter"),
        ("num_train_epochs", "epochs"),
        ("train_batch_size", "batch_size"),
    ):
        value = as_step(state.get(key))
        if value is not None and value > 0:
            meta.set(fact, value, where(key))
    return meta


def _summary_mean(name: str, entry: dict[str, Any], line: int, one_key_each: bool, meta: RunMeta) -> None:
    """The summary's `train_loss` (the run's mean loss) as a fact, quoted from the line of its key."""
    value = entry.get("train_loss")
    if isinstance(value, int | float) and not isinstance(value, bool):
        at = line + (list(entry).index("train_loss") + 1 if one_key_each else 0)
        meta.set("train_loss_mean", float(value), LogLine(name, at, f'"train_loss": {json.dumps(value)}'))
