"""detectron2 `metrics.json`: one JSON object per line, written by its JSONWriter every 20 iterations.

Kept: `total_loss` (the training objective, metric `loss`), each `loss_*` component under its own
name, `lr`, the heads' accuracies (`fast_rcnn/cls_accuracy`, `mask_rcnn/accuracy`, ...) and the
evaluation results. Left out: timings (`time`, `data_time`, `eta_seconds`), sample counters
(`roi_head/num_fg_samples`, `rpn/num_pos_anchors`) and false-positive/negative rates, which
describe the sampler rather than the optimisation.

Evaluation results are `<task>/<metric>` keys (`bbox/AP`, `bbox/AP50`, `segm/AP`, `sem_seg/mIoU`)
and land in split val; `bbox/AP` is the canonical `map`, the rest keep their lower-cased name
(`bbox_ap50`), per-class APs (`bbox/AP-person`) are left out. Depending on the detectron2 version
they share a line with the train values of the same iteration or get a line of their own.
A second run appended to the same file shows as the iteration going back (299 -> 19): a new segment.
"""

from __future__ import annotations

import re
from functools import lru_cache

from parsers.formats._jsonlines import ColumnRows, Problems, counted_records, json_lines, sniff_objects
from parsers.model import RunMeta
from parsers.names import KEY_CACHE_SIZE, canonical_metric, split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "detectron2_json"
FRAMEWORK = "pytorch"

_EVAL_TASKS = {"bbox", "segm", "keypoints", "sem_seg", "panoptic_seg"}
_EVAL_METRIC = re.compile(r"^(AP\w*|PQ\w*|SQ\w*|RQ\w*|mIoU|fwIoU|mACC|pACC|IoU|ACC|top1|top5)$")


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    for obj in sniff_objects(source.head_text()):
        if "iteration" in obj and ("total_loss" in obj or "lr" in obj or any("/AP" in key for key in obj)):
            return 0.9
    return 0.0


@lru_cache(maxsize=KEY_CACHE_SIZE)
def metric_of(key: str) -> tuple[str, str] | None:
    """(split, metric) of a metrics.json key; None for what is left out (see the module docstring)."""
    if key == "total_loss":
        return "train", "loss"
    if key.startswith("loss") or key == "lr":
        return "train", canonical_metric(key)
    task, _, name = key.partition("/")
    if name and (task in _EVAL_TASKS or _EVAL_METRIC.match(name)):
        if "-" in name:
            return None  # per-class AP
        return "val", "map" if key == "bbox/AP" else canonical_metric(key)
    if key.endswith("accuracy"):
        return "train", canonical_metric(key)
    split, metric = split_and_metric(key)
    return (split, metric) if split != "train" else None  # hooks that log e.g. `validation_loss`


def parse(source: SourceFile) -> ParsedFile:
    problems = Problems(source.name)
    records, steps = counted_records(json_lines(source.log_lines(), problems), "iteration", problems)
    rows = ColumnRows(steps, [record.line for record in records])
    rows.add_keys([record.obj for record in records], metric_of)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    return rows.parsed(source.name, meta, problems, "no detectron2 metrics rows (with an `iteration`)")
