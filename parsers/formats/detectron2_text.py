"""detectron2 text logs (`log.txt`, stdout of `tools/train_net.py` and projects built on it).

    [11/18 18:14:12] d2.utils.events INFO:  eta: 21:18:00  iter: 19  total_loss: 0.1443  loss_cls: 0.05095
        ...  time: 0.6875  data_time: 0.3772  lr: 0.02038  max_mem: 11810M
    [11/18 18:14:12 d2.utils.events]: eta: 0:01:02  iter: 19  total_loss: ...     (older versions)
    [11/18 18:28:19] d2.evaluation.testing INFO: copypaste: Task: bbox
    [11/18 18:28:19] d2.evaluation.testing INFO: copypaste: AP,AP50,AP75,APs,APm,APl
    [11/18 18:28:19] d2.evaluation.testing INFO: copypaste: 11.4201,23.2443,9.8554,0.8408,4.1875,14.3397

The step is the printed `iter` (the same number metrics.json calls `iteration`). Keys are read as the
detectron2_json plug-in reads them: `total_loss` is `loss`, the `loss_*` terms and `lr` keep their
names, timings and `max_mem` are left out; the copypaste table becomes `bbox/AP` (= `map`),
`bbox/AP50`, ... in split val. The evaluation hook runs before the events writer of the same
iteration, so an evaluation takes the iteration of the next events line (the last one when training
has ended). The iteration going back starts a new segment. The timestamps have no year; a log that
crosses New Year is unwrapped. The YAML config dump (`SOLVER.BASE_LR`, `MODEL.WEIGHTS`, ...) and the
checkpointer's `Loading from ...` fill RunMeta through `hyperparams_from_text`.
"""

from __future__ import annotations

import re

from parsers.formats._textlog import (
    NUMBER,
    At,
    LineCounter,
    Problems,
    Restarts,
    Rows,
    WallClock,
    line_at,
    sniff_head,
    to_float,
)
from parsers.formats.detectron2_json import metric_of
from parsers.hparams import hyperparams_from_text
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "detectron2_text"
FRAMEWORK = "pytorch"

_STAMP = r"(?m)^\[\d\d/\d\d \d\d:\d\d:\d\d[^\]\n]*\]"  # [11/18 18:14:12] or [11/18 18:14:12 d2.x]
_EVENT_OR_TABLE = re.compile(
    _STAMP + r"[^\n]*?(?:"
    # an iteration past MAX_COUNTER is skipped and reported by the rows; 4000 digits keep int() legal
    r"\biter: (?P<iter>\d{1,4000}+)(?P<rest>[^\n]*)"
    r"|copypaste: Task: (?P<task>\S+)"
    r"|copypaste: (?P<header>[A-Za-z][\w\-]*(?:,[A-Za-z][\w\-]*)+)\s*$"
    rf"|copypaste: (?P<values>{NUMBER}(?:,{NUMBER})*)\s*$"
    r")"
)
_PAIR = re.compile(rf"(?:^|\s)([A-Za-z][\w/.\-]*): ({NUMBER})(?=\s|$)")
_SNIFF = re.compile(_STAMP + r"[^\n]*(?:\biter: \d+\s+\w*loss|copypaste: Task:)")
_START = re.compile(r"Starting training from iteration (\d{1,18}+)(?!\d)")


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    meta.resumed = any(int(start[1]) > 0 for start in _START.finditer(text))
    rows = Rows()
    problems = Problems(source.name)
    lines = LineCounter(text)
    clock = WallClock()
    restarts = Restarts()
    last_iter: int | None = None
    task, header = "bbox", None
    pending: list[tuple[int, float, list[tuple[str, float]]]] = []  # evaluations awaiting their step
    for found in _EVENT_OR_TABLE.finditer(text):
        number = lines.line(found.start())
        wall_time = clock.since_start(found[0])
        if found["iter"] is not None:
            step = int(found["iter"])
            if last_iter is not None and step < last_iter:  # a restart: earlier evaluations end the old run
                _flush(rows, pending, last_iter, restarts.segment)
            segment = restarts.at(step)
            _flush(rows, pending, step, segment)
            last_iter = step
            at = At(step=step, line=number, segment=segment, wall_time=wall_time)
            for key, value in _PAIR.findall(found["rest"]):
                target = metric_of(key)
                if target is not None:
                    rows.add(at, target[0], target[1], key, to_float(value))
        elif found["task"] is not None:
            task, header = found["task"], None
        elif found["header"] is not None:
            header = found["header"].split(",")
        elif header is not None:
            values = found["values"].split(",")
            if len(values) != len(header):
                problems.add(number, f"copypaste row with {len(values)} values for {len(header)} names")
                continue
            named = [(f"{task}/{name}", to_float(value)) for name, value in zip(header, values, strict=True)]
            pending.append((number, wall_time, named))
        else:
            problems.add(number, f"copypaste values without a header: {line_at(text, found.start())[:80]!r}")
    _flush(rows, pending, last_iter or 0, restarts.segment)
    return rows.parsed(source.name, meta, problems, "no detectron2 `iter: N  total_loss: ...` lines")


def _flush(rows: Rows, pending: list, step: int, segment: int) -> None:
    """Place the evaluations seen since the last events line at `step`."""
    for number, wall_time, named in pending:
        at = At(step=step, line=number, segment=segment, wall_time=wall_time)
        for key, value in named:
            target = metric_of(key)
            if target is not None:
                rows.add(at, target[0], target[1], key, value)
    pending.clear()
