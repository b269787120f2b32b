"""OpenMMLab text logs: mmdet 2.x / mmcv `TextLoggerHook` lines and mmengine 1.x `LoggerHook` lines.

    2021-05-07 19:46:14,318 - mmdet - INFO - Epoch [1][50/7330]\tlr: 1.978e-03, eta: ..., loss: 1.6534
    2021-05-07 21:00:09,333 - mmdet - INFO - Epoch(val) [1][7330]\tbbox_mAP: 0.2070, ...
    2023/03/22 19:47:32 - mmengine - INFO - Epoch(train)  [1][  50/7330]  lr: 1.98e-03  ...  loss: 1.94
    2023/03/22 21:15:05 - mmengine - INFO - Epoch(val) [1][5000/5000]    coco/bbox_mAP: 0.2130 ...
    ... Iter [50/90000] / Iter(train) [  50/90000] / Iter(val) [4000]   (iteration-based runners)

Step = the global iteration: (epoch-1) * iters_per_epoch + iter for epoch-based runners (iters per
epoch from the `[50/7330]` denominator), the iteration itself for iteration-based ones. Validation
values are placed at the end of their epoch (mmdet 2.x prints `[epoch][iters_per_epoch]`, mmengine a
count of validation batches). `loss` is the framework's own total (mmdet sums the `loss_*` terms
into `loss`); the terms and the heads' `acc` keep their names. Timings (`eta`, `time`, `data_time`,
`memory`) are left out; `bbox_mAP_copypaste` repeats the other values. An evaluation that produced
nothing prints an empty `Epoch(val)` line: it is reported, not guessed. Lines before the first
record (SLURM banners, nvidia-smi tables, shell noise) are ignored; the config dump fills RunMeta.
"""

from __future__ import annotations

import re
from functools import cache

from parsers.formats._textlog import (
    NUMBER,
    TIMING_KEYS,
    At,
    LineCounter,
    Problems,
    Restarts,
    Rows,
    WallClock,
    to_float,
)
from parsers.hparams import hyperparams_from_text
from parsers.model import RunMeta
from parsers.names import canonical_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "mmdet_text"
FRAMEWORK = "pytorch"

_COUNTER = r"\[\s*(?P<{0}>\d+)(?:\s*/\s*(?P<{1}>\d+))?\s*\]"
_RECORD = re.compile(
    r"(?m)^(?P<prefix>[^\n]*?)(?:"
    rf"Epoch(?:\((?P<ephase>train|val|test)\))?\s*\[\s*(?P<epoch>\d+)\s*\]\s*{_COUNTER.format('eit', 'en')}"
    rf"|Iter(?:\((?P<iphase>train|val|test)\))?\s*{_COUNTER.format('iit', 'in')}"
    r")(?P<rest>[^\n]*)$"
)
_PAIR = re.compile(rf"(?:^|[\s,])([A-Za-z][\w/@.\-]*): ({NUMBER})(?=,|\s|$)")
_PHASE = r"(?:\((?:train|val|test)\))?"
_MM_PREFIX = re.compile(rf" - \w+ - (?:INFO|WARNING) - (?:Epoch|Iter){_PHASE}\s*\[")
_BARE_RECORD = re.compile(rf"(?m)^(?:Epoch|Iter){_PHASE}\s*\[[\d\s/\]\[]+\]\s+(?:base_)?lr: ")
_RESUMED = re.compile(r"\bresumed epoch:? \d+", re.IGNORECASE)


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    head = source.head_text(512 * 1024)
    if _MM_PREFIX.search(head):
        return 0.9
    if _BARE_RECORD.search(head):
        return 0.7
    return 0.0


@cache
def metric_of(key: str, split: str) -> tuple[str, str] | None:
    """(split, metric) of a logged key; None for timings and repeated values."""
    if key.lower() in TIMING_KEYS or key.endswith("_copypaste"):
        return None
    return split, canonical_metric(key.rsplit("/", 1)[-1])


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    meta.resumed = _RESUMED.search(text) is not None
    rows = Rows()
    problems = Problems(source.name)
    lines = LineCounter(text)
    clock = WallClock()
    restarts = Restarts()
    iters_per_epoch: int | None = None
    last_step = 0
    for record in _RECORD.finditer(text):
        number = lines.line(record.start())
        phase = record["ephase"] or record["iphase"] or "train"
        by_epoch = record["epoch"] is not None
        counter = int(record["eit"] if by_epoch else record["iit"])
        total = record["en"] if by_epoch else record["in"]
        if phase == "train":
            if by_epoch and total:
                iters_per_epoch = int(total)
                step = (int(record["epoch"]) - 1) * iters_per_epoch + counter
            else:
                step = counter
            last_step = step
            segment = restarts.at(step)
        else:
            segment = restarts.segment
            if by_epoch:
                step = int(record["epoch"]) * iters_per_epoch if iters_per_epoch else last_step
            else:
                step = last_step if total else counter
        pairs = _PAIR.findall(record["rest"])
        if not pairs:
            problems.add(number, f"{phase} line without values (nothing was evaluated?): {record[0][:80]!r}")
            continue
        at = At(
            step=step,
            line=number,
            segment=segment,
            epoch=float(record["epoch"]) if by_epoch else None,
            wall_time=clock.since_start(record[0]),
        )
        split = "train" if phase == "train" else phase
        for key, value in pairs:
            target = metric_of(key, split)
            if target is not None:
                rows.add(at, target[0], target[1], key, to_float(value))
    return rows.parsed(source.name, meta, problems, "no mmdet/mmengine `Epoch [..][..]` or `Iter [..]` lines")
