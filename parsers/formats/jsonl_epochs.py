"""Generic JSON-lines training logs: one object per logging call, with a step-like counter.

Covers DeiT/DETR-style `log.txt` (one object per epoch: `train_lr`, `train_loss`, `test_acc1`,
`test_coco_eval_bbox`, `epoch`, `n_parameters`), LLaMA-Factory / ChatGLM-Efficient-Tuning
`trainer_log.jsonl` (`current_steps`, `loss`, `learning_rate`, `epoch`, `elapsed_time`
"0:01:23") and any other JSON-lines file whose objects carry a counter and a loss. This is the
fallback: framework-specific JSON formats (detectron2, mmdet, mmengine, fairseq) sniff higher.

The step is the first counter the file uses in this order: current_steps, global_step, step,
iteration, iter, epoch (DeiT: step = epoch). Key prefixes give the split (`train_`, `test_`,
`val_`, `eval_`). `*_coco_eval_bbox` is COCOeval's stats list: its first element is the mAP.
Counters and timings (`n_parameters`, `total_steps`, `percentage`, `*_time`) are left out;
`elapsed_time` becomes the wall time.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from parsers.formats._jsonlines import (
    At,
    JsonLine,
    MetricRows,
    Problems,
    Restarts,
    as_number,
    as_step,
    json_lines,
    sniff_objects,
)
from parsers.model import LogLine, RunMeta
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "jsonl_epochs"
FRAMEWORK = "pytorch"

STEP_KEYS = ("current_steps", "global_step", "step", "iteration", "iter", "epoch")
_NOT_METRICS = {"n_parameters", "total_steps", "percentage", "time", "data_time", "eta", "memory"}
_CLOCK = re.compile(r"^(?:(\d+) days?, )?(\d+):(\d\d):(\d\d(?:\.\d+)?)$")  # str(datetime.timedelta)


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    for obj in sniff_objects(source.head_text()):
        if any(key in obj for key in STEP_KEYS) and any("loss" in key for key in obj):
            return 0.5
    return 0.0


@cache
def metric_of(key: str) -> tuple[str, str] | None:
    if key in STEP_KEYS or key in _NOT_METRICS or key.endswith("_time"):
        return None
    return split_and_metric(key)


def parse(source: SourceFile) -> ParsedFile:
    problems = Problems(source.name)
    records = list(json_lines(source.lines(), problems))
    step_key = next(
        (key for key in STEP_KEYS if sum(key in r.obj for r in records) * 2 >= len(records)), None
    )
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    rows = MetricRows()
    restarts = Restarts()
    for record in records:
        step = as_step(record.obj.get(step_key)) if step_key else None
        if step is None:
            problems.add(record.line, f"no {step_key or 'step'} number; line skipped")
            continue
        if meta.max_iter is None and (total := as_step(record.obj.get("total_steps"))):
            meta.set("max_iter", total, LogLine(source.name, record.line, record.text.strip()))
        at = At(step, record.line, restarts.at(step), as_number(record.obj.get("epoch")), _wall_time(record))
        rows.add_record(at, record.obj, metric_of)
        _add_coco_stats(rows, at, record.obj)
    return rows.parsed(source.name, meta, problems, "no JSON lines with a step or epoch counter")


def _step_key(records: list[JsonLine]) -> str | None:
    """The first counter of STEP_KEYS that at least half of the records carry."""
    for key in STEP_KEYS:
        if sum(key in record.obj for record in records) * 2 >= len(records) > 0:
            return key
    return None


def _wall_time(record: JsonLine) -> float | None:
    elapsed = record.obj.get("elapsed_time")
    if isinstance(elapsed, str) and (clock := _CLOCK.match(elapsed.strip())):
        days, hours, minutes, seconds = clock.groups()
        return int(days or 0) * 86400 + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return as_number(elapsed)


def _add_coco_stats(rows: MetricRows, at: At, obj: dict[str, Any]) -> None:
    """COCOeval stats lists (`test_coco_eval_bbox`, `..._masks`): element 0 is the mAP."""
    for key, value in obj.items():
        if not (key.endswith(("coco_eval_bbox", "coco_eval_masks")) and isinstance(value, list) and value):
            continue
        first = as_number(value[0])
        if first is not None:
            split, _ = split_and_metric(key)
            rows.add(at, split, "map" if key.endswith("bbox") else "segm_map", key, first)
