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

import numpy as np

from parsers.formats._jsonlines import (
    ColumnRows,
    JsonLine,
    Problems,
    as_number,
    as_step,
    counted_records,
    json_lines,
    keys_of,
    numeric_column,
    sniff_objects,
)
from parsers.model import LogLine, RunMeta
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

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
    records = list(json_lines(source.log_lines(), problems))
    step_key = _step_key(records)
    if step_key is None:
        raise ParseError("no JSON lines with a step or epoch counter")
    records, steps = counted_records(records, step_key, problems)
    objects = [record.obj for record in records]
    epochs = numeric_column(objects, "epoch")[0]
    wall_times = np.array([_wall_time(obj.get("elapsed_time")) for obj in objects], dtype=float)
    rows = ColumnRows(steps, [record.line for record in records], epoch=epochs, wall_time=wall_times)
    rows.add_keys(objects, metric_of)
    for key in keys_of(objects):
        if key.endswith(("coco_eval_bbox", "coco_eval_masks")):  # COCOeval stats: element 0 is the mAP
            heads = [
                {key: value[0]} if isinstance(value := obj.get(key), list) and value else {}
                for obj in objects
            ]
            split = split_and_metric(key)[0]
            rows.add(*numeric_column(heads, key), split, "map" if key.endswith("bbox") else "segm_map", key)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    total = next((r for r in records if as_step(r.obj.get("total_steps"))), None)
    if total is not None:
        meta.set(
            "max_iter",
            as_step(total.obj["total_steps"]),
            LogLine(source.name, total.line, total.text.strip()),
        )
    return rows.parsed(source.name, meta, problems, "no JSON lines with a step or epoch counter")


def _step_key(records: list[JsonLine]) -> str | None:
    """The first counter of STEP_KEYS that at least half of the records carry."""
    for key in STEP_KEYS:
        if sum(key in record.obj for record in records) * 2 >= len(records) > 0:
            return key
    return None


def _first_of_list(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None


def _wall_time(elapsed: Any) -> float | None:
    """`elapsed_time` as seconds: "2:45:59", "1 day, 2:00:38" (str of a timedelta) or a number."""
    if isinstance(elapsed, str) and (clock := _CLOCK.match(elapsed.strip())):
        days, hours, minutes, seconds = clock.groups()
        # floats: a 400-digit hour count reads as inf instead of overflowing int + float
        return float(days or 0) * 86400 + float(hours) * 3600 + float(minutes) * 60 + float(seconds)
    return as_number(elapsed)
