"""mmengine (mmdetection 3.x, mmpretrain, mmseg 1.x, ...) `vis_data/scalars.json` and the
`vis_data/<timestamp>.json` beside it: one JSON object per line, every object with a `step`.

Train lines: `{"lr": ..., "loss": ..., "loss_cls": ..., "epoch": 1, "iter": 50, "memory": ...,
"step": 50}` where `iter` and `step` are the GLOBAL iteration. Val lines hold the evaluator's keys
(`coco/bbox_mAP`, `accuracy/top1`, `pascal_voc/mAP`, `mIoU`) and no `iter`; with the default
epoch-based logging their `step` is the EPOCH number, not an iteration, so such a line is placed
at the last train step before it (validation runs right after its epoch). The dataset prefix of
val keys is dropped for the metric (`coco/bbox_mAP` -> `map`, `accuracy/top1` -> `accuracy`);
timings and memory are left out. A step going back (a resumed run appended) starts a segment.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from parsers.formats._jsonlines import (
    ColumnRows,
    Problems,
    as_number,
    counted_records,
    json_lines,
    sniff_objects,
)
from parsers.model import RunMeta
from parsers.names import KEY_CACHE_SIZE, canonical_metric, split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "mmengine_json"
FRAMEWORK = "pytorch"

_NOT_METRICS = {"step", "iter", "epoch", "memory", "data_time", "time", "eta"}


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    objects = sniff_objects(source.head_text())
    train = any("step" in obj and "iter" in obj and ("loss" in obj or "lr" in obj) for obj in objects)
    return 0.85 if train and not any("mode" in obj for obj in objects) else 0.0


@lru_cache(maxsize=KEY_CACHE_SIZE)
def train_metric(key: str) -> tuple[str, str] | None:
    return None if key in _NOT_METRICS else split_and_metric(key)


@lru_cache(maxsize=KEY_CACHE_SIZE)
def val_metric(key: str) -> tuple[str, str] | None:
    if key in _NOT_METRICS:
        return None
    return "val", canonical_metric(key.rsplit("/", 1)[-1])


def parse(source: SourceFile) -> ParsedFile:
    problems = Problems(source.name)
    records, logged_steps = counted_records(json_lines(source.log_lines(), problems), "step", problems)
    objects = [record.obj for record in records]
    train = np.array(["iter" in obj for obj in objects], dtype=bool)
    by_epoch = any("epoch" in obj for obj in objects)
    steps: list[int] = []
    epochs: list[float | None] = []
    last_train = 0
    for obj, step, is_train in zip(objects, logged_steps.tolist(), train, strict=True):
        if is_train:
            last_train = step
            steps.append(step)
            epochs.append(as_number(obj.get("epoch")))
        elif by_epoch:  # the val line's step is its epoch: place it after the epoch's last train line
            steps.append(last_train)
            epochs.append(step)
        else:
            steps.append(step)
            epochs.append(None)
    rows = ColumnRows(
        np.array(steps), [record.line for record in records], epoch=np.array(epochs, dtype=float)
    )
    rows.add_keys(objects, train_metric, only=train)
    rows.add_keys(objects, val_metric, only=~train)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    return rows.parsed(source.name, meta, problems, "no mmengine scalars (JSON lines with a `step`)")
