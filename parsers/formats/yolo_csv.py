"""YOLOv5 / Ultralytics `results.csv` and the old header-less YOLOv5 `results.txt`, one row per epoch.

results.csv (YOLOv5 v6+: space-padded header `epoch, train/box_loss, ..., metrics/mAP_0.5,
val/cls_loss, x/lr0..2`; Ultralytics YOLOv8+: `epoch, time, train/box_loss, train/cls_loss,
train/dfl_loss, metrics/mAP50(B), ..., lr/pg0..2`) logs only the loss COMPONENTS. YOLO's training
loss is by construction their sum (`loss = (lbox + lobj + lcls) * bs` in YOLOv5, the sum of
`loss_items` in Ultralytics) and the old results.txt wrote that sum as its `total` column, so
`loss` = sum of the `<split>/*_loss` components at each epoch, for train and val; results.txt's
own `total` is used as is. Components stay as their own metrics (box_loss, obj_loss, ...).

The step is the epoch as logged (YOLOv5 counts from 0, Ultralytics from 1); `x/lr0`/`lr/pg0` is
the lr (the first parameter group: during warm-up it carries the bias warm-up lr), the other
groups are lr1, lr2. `metrics/mAP_0.5` (`mAP50(B)`) is `map`, mAP@0.5:0.95 is `map_0.5:0.95`,
precision/recall keep their names; all of these are validation (split val). Mask and pose
metrics of segmentation/pose models (`(M)`, `(P)`) get a `_mask` / `_pose` suffix.

results.txt columns (no header): `epoch/total gpu_mem box obj cls total labels img_size P R
mAP@.5 mAP@.5:.95 val_box val_obj val_cls`; they are named like YOLOv5's results.csv so that
all YOLO sources (and its TensorBoard tags) give the same names; gpu_mem, labels and img_size
are not metrics and are left out.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from parsers.formats import _table
from parsers.model import LogLine, RunMeta, frame_from_columns
from parsers.names import canonical_metric, split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "yolo_csv"
FRAMEWORK = "pytorch"

TXT_COLUMNS = [
    "epoch",
    "gpu_mem",
    "train/box_loss",
    "train/obj_loss",
    "train/cls_loss",
    "total",
    "labels",
    "img_size",
    "metrics/precision",
    "metrics/recall",
    "metrics/mAP_0.5",
    "metrics/mAP_0.5:0.95",
    "val/box_loss",
    "val/obj_loss",
    "val/cls_loss",
]
_NOT_METRICS = {"epoch", "time", "gpu_mem", "labels", "img_size"}
_TXT_ROW = re.compile(r"^\s*(?P<epoch>\d+)/(?P<last>\d+)\s+\S+(?:\s+\S+){13}\s*$")
_LR_GROUP = re.compile(r"^(?:x/lr|lr/pg)(?P<group>\d+)$")
_COMPONENT = re.compile(r"^(?P<split>train|val)/\w+_loss$")
_TASK_SUFFIX = re.compile(r"\((?P<task>[A-Z])\)$")
_TASK_NAMES = {"M": "_mask", "P": "_pose"}


def split_metric(name: str) -> tuple[str, str]:
    """(split, metric) of a YOLO column or TensorBoard tag."""
    lr = _LR_GROUP.match(name)
    if lr:
        group = int(lr["group"])
        return "train", "lr" if group == 0 else f"lr{group}"
    if name == "total":
        return "train", "loss"
    if not name.startswith("metrics/"):
        return split_and_metric(name)
    metric = name.removeprefix("metrics/")
    task = _TASK_SUFFIX.search(metric)
    suffix = _TASK_NAMES.get(task["task"], "") if task else ""
    metric = _TASK_SUFFIX.sub("", metric)
    if metric in ("mAP_0.5", "mAP50"):
        return "val", "map" + suffix
    if metric in ("mAP_0.5:0.95", "mAP50-95"):
        return "val", "map_0.5:0.95" + suffix
    return "val", canonical_metric(metric) + suffix


def with_component_losses(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a `loss` row per (segment, step) = sum of that split's `train/*_loss` (`val/*_loss`)
    components, where all of them were logged, for each split that has no `loss` of its own."""
    names = frame["name"].astype(str)
    added = []
    for split in ("train", "val"):
        if ((frame["split"] == split) & (frame["metric"] == "loss")).any():
            continue
        components = frame[names.str.match(_COMPONENT) & names.str.startswith(f"{split}/")]
        if components.empty:
            continue
        components = components.assign(name=components["name"].astype(str))
        components = components.drop_duplicates(["segment", "step", "name"])
        component_names = list(dict.fromkeys(components["name"]))
        by_step = components.groupby(["segment", "step"], sort=False)
        wide = components.pivot(index=["segment", "step"], columns="name", values="value")
        complete = by_step.size() == len(component_names)
        firsts = by_step[["epoch", "wall_time", "line", "source"]].first()[complete]
        total = wide.loc[firsts.index, component_names].sum(axis=1, skipna=False)
        added.append(
            frame_from_columns(
                {
                    "step": firsts.index.get_level_values("step"),
                    "segment": firsts.index.get_level_values("segment"),
                    "epoch": firsts["epoch"],
                    "wall_time": firsts["wall_time"],
                    "line": firsts["line"],
                    "source": firsts["source"],
                    "split": [split] * len(firsts),
                    "metric": ["loss"] * len(firsts),
                    "name": ["+".join(component_names)] * len(firsts),
                    "value": total.to_numpy(dtype=np.float64),
                }
            )
        )
    if not added:
        return frame
    return _table.concat_frames([frame, *added])


def sniff(source: SourceFile) -> float:
    lines = _table.head_lines(source, 8 * 1024)
    if not lines:
        return 0.0
    columns = _table.split_header(lines[0], ",")
    if "epoch" in columns and any(c.startswith(("train/", "metrics/mAP")) for c in columns):
        return 0.9
    content = [line for line in lines[:5] if line.strip()]
    if all(_TXT_ROW.match(line) for line in content[:-1]) and _TXT_ROW.match(content[0]):
        return 0.9
    return 0.0


def _txt_table(lines: list[str], source: SourceFile, meta: RunMeta) -> _table.Table:
    """The header-less results.txt as a Table named like results.csv."""
    kept, rows, problems = [], [], []
    for index, line in enumerate(lines):
        match = _TXT_ROW.match(line)
        if match is None:
            if line.strip():
                problems.append((index + 1, f"not a results.txt row: {line[:80]!r}"))
            continue
        if not kept:
            meta.set("epochs", int(match["last"]) + 1, LogLine(source.name, index + 1, line.strip()))
        kept.append(index)
        rows.append([match["epoch"], *line.split()[1:]])
    cells = pd.DataFrame(rows, columns=range(len(TXT_COLUMNS)), dtype=str)
    return _table.Table(
        columns=TXT_COLUMNS,
        cells=cells,
        lines=np.asarray(kept, dtype=np.int64) + 1,
        header_line=0,
        header_text="",
        problems=problems,
        skipped=len(problems),
    )


def parse(source: SourceFile) -> ParsedFile:
    lines, first = _table.text_lines(source)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    if _TXT_ROW.match(lines[first]):
        table = _txt_table(lines, source, meta)
    else:
        table = _table.read_table(lines, first, ",")
    table, epoch, epochs = _table.rows_by_counter(table, "epoch", "YOLO results")
    position = {name: i for i, name in enumerate(table.columns)}
    wall_time = None
    if "time" in position:
        seconds = _table.numeric(table.cells[position["time"]]).values
        wall_time = seconds - seconds[0] if len(seconds) else seconds
    segment = _table.segments_from_counter(epochs, restart_on_equal=True)
    rows = _table.LongRows(epochs, table.lines, epoch=epoch.values, segment=segment, wall_time=wall_time)
    numeric_columns = {}
    for name, index in position.items():
        if name in _NOT_METRICS:
            continue
        column = numeric_columns[name] = _table.numeric(table.cells[index])
        rows.add(column.values, column.present, *split_metric(name), name)
    parsed = _table.parsed_file(table, rows, numeric_columns, source.name, meta)
    parsed.metrics = with_component_losses(parsed.metrics)
    return parsed
