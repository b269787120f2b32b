"""mmdetection 2.x (mmcv TextLoggerHook) `*.log.json`: one JSON object per line.

The first line holds `env_info` and the `config` dump (read for the optimizer, lr schedule and
pretrained weights, see `_mmcv_config`). Then `"mode": "train"` lines (`epoch`, `iter`, `lr`,
`loss`, `loss_cls`, ..., `acc`, `grad_norm`) and `"mode": "val"` lines after each epoch
(`bbox_mAP`, `bbox_mAP_50`, ..., VOC: `mAP`, `AP50`). `loss` is mmdet's own total of the loss
terms; timings and memory are left out; val lines without metrics (evaluation skipped) add nothing.

The step is a global iteration. With the default EpochBasedRunner `iter` restarts at every
epoch, so step = (epoch - 1) * iters_per_epoch + iter. Iters per epoch come from the data: the
largest train `iter`, which is a multiple of the log interval and so may fall short of the
epoch's end; a val line's `iter` is the exact epoch length when it lies within one interval
above that (mmcv versions that log the number of val batches there instead fail this check).
When `iter` does not restart at a new epoch (IterBasedRunner), it already is the global step.
Val results are placed at the end of their epoch. Runs are one file each; an iteration going
back still starts a new segment.
"""

from __future__ import annotations

from collections import Counter
from functools import lru_cache
from itertools import pairwise

import numpy as np

from parsers.formats._jsonlines import ColumnRows, JsonLine, Problems, as_step, json_lines, sniff_objects
from parsers.formats._mmcv_config import quote_in_single_line, read_config_facts
from parsers.formats._textlog import STEP_OUT_OF_RANGE
from parsers.model import MAX_COUNTER, RunMeta
from parsers.names import KEY_CACHE_SIZE, canonical_metric, split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "mmdet_json"
FRAMEWORK = "pytorch"

_COORDINATES = {"mode", "epoch", "iter"}
_NOT_METRICS = {"memory", "data_time", "time", "eta"}


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text()
    if head.lstrip().startswith('{"env_info"'):
        return 0.9
    objects = sniff_objects(head)
    return 0.9 if any(obj.get("mode") in ("train", "val") and "iter" in obj for obj in objects) else 0.0


@lru_cache(maxsize=KEY_CACHE_SIZE)
def train_metric(key: str) -> tuple[str, str] | None:
    if key in _COORDINATES or key in _NOT_METRICS:
        return None
    return split_and_metric(key)


@lru_cache(maxsize=KEY_CACHE_SIZE)
def val_metric(key: str) -> tuple[str, str] | None:
    """Evaluation keys are bare names (`bbox_mAP`, `mAP`): split val whatever their prefix."""
    if key in _COORDINATES or key in _NOT_METRICS or key == "lr":
        return None
    return "val", canonical_metric(key)


def parse(source: SourceFile) -> ParsedFile:
    problems = Problems(source.name)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    records: list[JsonLine] = []
    for record in json_lines(source.log_lines(), problems):
        mode = record.obj.get("mode")
        if mode is None and isinstance(record.obj.get("config"), str):
            config = record.obj["config"]
            read_config_facts(meta, config, quote_in_single_line(source.name, record.line, config))
            for key in ("seed", "exp_name", "mmdet_version"):
                if record.obj.get(key) is not None:
                    meta.hyperparams[key] = str(record.obj[key])
        elif mode in ("train", "val"):
            records.append(record)
        elif "env_info" not in record.obj:
            problems.add(record.line, "JSON line without a train/val mode; skipped")
    steps = _GlobalSteps(records)
    kept, step_of, epochs = [], [], []
    for record in records:
        epoch, iteration = _counters(record)
        if record.obj["mode"] == "train":
            if iteration is None:
                problems.add(record.line, "train line without an iter number; skipped")
                continue
            step = steps.train(epoch, iteration)
        else:
            step = steps.val(epoch)
        if abs(step) > MAX_COUNTER:  # epoch x iterations per epoch of corrupt counters
            problems.add(record.line, STEP_OUT_OF_RANGE)
            continue
        step_of.append(step)
        kept.append(record)
        epochs.append(epoch)
    objects = [record.obj for record in kept]
    train = np.array([obj["mode"] == "train" for obj in objects], dtype=bool)
    rows = ColumnRows(np.array(step_of), [r.line for r in kept], epoch=np.array(epochs, dtype=float))
    rows.add_keys(objects, train_metric, only=train)
    rows.add_keys(objects, val_metric, only=~train)
    return rows.parsed(source.name, meta, problems, 'no mmdetection train/val lines (with "mode": "train")')


class _GlobalSteps:
    """Global step of each line from mmcv's (epoch, iter) counters (see the module docstring)."""

    def __init__(self, records: list[JsonLine]) -> None:
        train = [_counters(r) for r in records if r.obj["mode"] == "train"]
        train = [(epoch, it) for epoch, it in train if it is not None]
        consecutive = list(pairwise(train))
        self.iter_restarts = not any(
            None not in (a_epoch, b_epoch) and b_epoch > a_epoch and b_it >= a_it
            for (a_epoch, a_it), (b_epoch, b_it) in consecutive
        )
        largest = max((it for _, it in train), default=0)
        gaps = Counter(
            b_it - a_it for (a_ep, a_it), (b_ep, b_it) in consecutive if a_ep == b_ep and b_it > a_it
        )
        interval = gaps.most_common(1)[0][0] if gaps else 1
        val_iters = [_counters(r)[1] for r in records if r.obj["mode"] == "val"]
        exact = [it for it in val_iters if it is not None and largest <= it < largest + interval]
        self.iters_per_epoch = exact[0] if exact else largest
        self._last_train = 0

    def train(self, epoch: int | None, iteration: int) -> int:
        if self.iter_restarts and epoch is not None:
            self._last_train = (epoch - 1) * self.iters_per_epoch + iteration
        else:
            self._last_train = iteration
        return self._last_train

    def val(self, epoch: int | None) -> int:
        if self.iter_restarts and epoch is not None:
            return epoch * self.iters_per_epoch
        return self._last_train


def _counters(record: JsonLine) -> tuple[int | None, int | None]:
    return as_step(record.obj.get("epoch")), as_step(record.obj.get("iter"))
