"""HuggingFace Trainer `trainer_state.json`: the `log_history` list of logged dicts.

Train entries carry `loss`, `learning_rate`, `grad_norm`, `epoch`, `step` and whatever the trainer
adds (TRL: `mean_token_accuracy`); eval entries carry `eval_*` keys (split val). The last entry of
a finished run is a summary (`train_runtime`, `train_loss` = the mean loss over the whole run):
it is skipped, because read like the others it would put the run's AVERAGE loss on the curve at
the last step, a false jump. Throughput and counters (`*_runtime`, `*_per_second`, `total_flos`,
`num_tokens`) are not training signals and are left out.

Each entry is decoded on its own (`raw_decode`), so every value keeps the line of its key
(`"loss": NaN,` is the line evidence quotes) and a file cut off mid-write still yields the entries
before the cut.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import cache
from typing import Any

from parsers.formats._jsonlines import At, MetricRows, Problems, Restarts, as_number, as_step
from parsers.model import LogLine, RunMeta
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "hf_trainer_state"
FRAMEWORK = "pytorch"

_LOG_HISTORY = re.compile(r'"log_history"\s*:\s*\[')
_KEY = re.compile(r'"((?:[^"\\]|\\.)*)"\s*:')
_NOT_METRICS = {"step", "epoch", "total_flos", "num_input_tokens_seen"}
_NOT_METRIC_SUFFIXES = ("_runtime", "_per_second", "num_tokens")
# top-level key -> RunMeta fact (train_batch_size is the per-step batch the Trainer saw)
_FACTS = {"max_steps": "max_iter", "num_train_epochs": "epochs", "train_batch_size": "batch_size"}


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text()
    return 0.95 if head.lstrip().startswith("{") and _LOG_HISTORY.search(head) else 0.0


@cache
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
    rows = MetricRows()
    restarts = Restarts()
    decoder = json.JSONDecoder()
    position = counted = start.end()
    line = text.count("\n", 0, counted) + 1  # the line of text[counted]
    while True:
        position = _skip_separators(text, position)
        if position >= len(text) or text[position] == "]":
            break
        line += text.count("\n", counted, position)
        counted = position
        try:
            entry, end = decoder.raw_decode(text, position)
        except ValueError:
            problems.add(line, "log_history ends in an incomplete entry (file cut off?); read up to here")
            break
        if isinstance(entry, dict):
            _add_entry(rows, restarts, problems, entry, text, position, end, line)
        position = end
    meta = _meta(source.name, text, start.start(), position, problems)
    return rows.parsed(source.name, meta, problems, "log_history holds no logged metrics")


def _skip_separators(text: str, position: int) -> int:
    while position < len(text) and text[position] in " \t\n,":
        position += 1
    return position


def _add_entry(
    rows: MetricRows,
    restarts: Restarts,
    problems: Problems,
    entry: dict[str, Any],
    text: str,
    start: int,
    end: int,
    line: int,
) -> None:
    if "train_runtime" in entry:
        return  # the end-of-training summary (see the module docstring)
    step = as_step(entry.get("step"))
    if step is None:
        problems.add(line, "log_history entry without a step; skipped")
        return
    at = At(step, line, restarts.at(step), epoch=as_number(entry.get("epoch")))
    key_lines = {
        match[1]: line + text.count("\n", start, match.start()) for match in _KEY.finditer(text, start, end)
    }
    for key, raw in entry.items():
        target = metric_of(key)
        value = as_number(raw)
        if target is None or value is None:
            continue
        rows.add(replace(at, line=key_lines.get(key, line)), target[0], target[1], key, value)


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
