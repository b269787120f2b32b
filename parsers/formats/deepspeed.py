"""DeepSpeed engine progress lines (`steps_per_print`), with or without the logging prefix.

    [2022-03-11 02:06:58,985] [INFO] [logging.py:69:log_dist] [Rank 0] step=40, skipped=2, lr=[5e-05],
        mom=[[0.9, 0.999]]

The engine prints no loss: the line gives the lr (the first parameter group), the momentum or Adam
beta1 (`momentum`; the first number of the first group) and the cumulative count of steps the fp16 loss
scaler skipped (`skipped_steps`). The scaler's own lines (`OVERFLOW! Rank 0 Skipping step. Attempted
loss scale: 262144, reducing to 131072.0`, the hysteresis and bf16 variants, the fatal `Current loss
scale already at minimum`) are events wherever they occur (parsers/events.py), as is each growth of
`skipped=`. A file whose loss comes from another trainer (HF Trainer dicts, Megatron lines) is that
trainer's format: this one scores below them.
"""

from __future__ import annotations

import re

import numpy as np

from parsers.formats._jsonlines import ColumnRows, Problems
from parsers.formats._llm import floats, wall_times
from parsers.formats._textlog import NUMBER, LineCounter, sniff_head
from parsers.hparams import hyperparams_from_text
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "deepspeed"
FRAMEWORK = "deepspeed"

_PROGRESS = re.compile(rf"\bstep=(\d+), skipped=(\d+), lr=\[?({NUMBER})[^\]\n]*\]?, mom=\[*({NUMBER})?")
_SNIFF = re.compile(r"\bstep=\d+, skipped=\d+, lr=")


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.8)


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    matches = list(_PROGRESS.finditer(text))
    counter = LineCounter(text)
    starts = [m.start() for m in matches]
    lines = np.fromiter((counter.line(start) for start in starts), dtype=np.int64, count=len(matches))
    table = np.asarray([(m[1], m[2], m[3], m[4] or "nan") for m in matches], dtype=str).reshape(
        len(matches), 4
    )
    steps, _ = floats(table[:, 0])
    rows = ColumnRows(steps.astype(np.int64), lines, wall_time=wall_times(text, starts))
    has_momentum = np.asarray([m[4] is not None for m in matches], dtype=bool)
    for position, metric, name in ((2, "lr", "lr"), (3, "momentum", "mom"), (1, "skipped_steps", "skipped")):
        values, present = floats(table[:, position])
        rows.add(values, present & has_momentum if metric == "momentum" else present, "train", metric, name)
    return rows.parsed(
        source.name, meta, Problems(source.name), "no DeepSpeed `step=N, skipped=M, lr=...` lines found"
    )
