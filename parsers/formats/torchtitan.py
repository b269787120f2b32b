"""torchtitan (`torchtitan/components/metrics.py`) training and validation lines.

    [rank0]:[titan] 2025-11-25 19:45:01,441 - root - INFO - step:  1  loss:  8.0277  grad_norm:  1.4604
        memory:  1.21GiB(0.86%)  tps: 5,756  tflops: 0.41  mfu: 0.04%
    [rank0]:[titan] 2025-07-10 10:00:00,000 - root - INFO - validate step: 100  loss:  3.2710  memory: ...

(one line each). Every field is wrapped in ANSI colour codes unless `metrics.disable_color_printing`
is set, `torchrun` prefixes `[rankN]:`, counts carry thousands commas. `loss` and `grad_norm` (absent
before 2025) are read; memory, tokens per second (`tps`, formerly `wps`), TFLOPs and MFU are speed, not
training signals. Only the first rank's lines are read when several ranks print (every rank logs the
same averaged values; LOG_RANK picks which print). A step that goes back starts a new segment.
"""

from __future__ import annotations

import re

import numpy as np

from parsers.formats._jsonlines import ColumnRows, Problems
from parsers.formats._llm import floats, wall_times, without_ansi
from parsers.formats._textlog import NUMBER
from parsers.hparams import hyperparams_from_text
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "torchtitan"
FRAMEWORK = "pytorch"

_RECORD = re.compile(
    rf"(?:\[rank(\d+)\]:)?[^\n]*?\b(validate )?step:\s*(\d+)\s+loss:\s*({NUMBER})"
    rf"(?:\s+grad_norm:\s*({NUMBER}))?\s+memory:"
)
_SNIFF = re.compile(rf"\bstep:\s*\d+\s+loss:\s*{NUMBER}\s+(?:grad_norm:\s*{NUMBER}\s+)?memory:\s*[\d.]+GiB")


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    return 0.9 if _SNIFF.search(without_ansi(source.head_text(1024 * 1024))) else 0.0


def parse(source: SourceFile) -> ParsedFile:
    text = without_ansi(source.log_text)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    found = [
        (m.start(3), m[1] or "", m[2] or "", m[3], m[4], m[5] or "nan", m[5] is not None)
        for m in _line_starts(text)
    ]
    ranks = {record[1] for record in found}
    if len(ranks) > 1:
        first_rank = min(ranks, key=lambda rank: int(rank) if rank else -1)
        found = [record for record in found if record[1] == first_rank]
    starts = [record[0] for record in found]
    lines = _line_numbers(text, starts)
    table = np.asarray([record[2:6] for record in found], dtype=str).reshape(len(found), 4)
    has_grad_norm = np.asarray([record[6] for record in found], dtype=bool)
    validate = table[:, 0] != ""
    steps, _ = floats(table[:, 1])
    rows = ColumnRows(steps.astype(np.int64), lines, wall_time=wall_times(text, starts))
    loss, loss_present = floats(table[:, 2])
    grad_norm, grad_present = floats(table[:, 3])
    rows.add(loss, loss_present & ~validate, "train", "loss", "loss")
    rows.add(grad_norm, grad_present & has_grad_norm & ~validate, "train", "grad_norm", "grad_norm")
    rows.add(loss, loss_present & validate, "val", "loss", "validate loss")
    return rows.parsed(
        source.name, meta, Problems(source.name), "no torchtitan `step: N  loss: X  ... memory:` lines found"
    )


def _line_starts(text: str):
    """Matches of `_RECORD` anchored at line starts (so the `[rankN]:` prefix is seen)."""
    position = 0
    while True:
        at = text.find("step:", position)
        if at < 0:
            return
        start = text.rfind("\n", 0, at) + 1
        match = _RECORD.match(text, start)
        end = text.find("\n", at)
        position = len(text) if end < 0 else end + 1
        if match is not None:
            yield match


def _line_numbers(text: str, starts: list[int]) -> np.ndarray:
    lines, line, counted = [], 1, 0
    for start in starts:
        line += text.count("\n", counted, start)
        counted = start
        lines.append(line)
    return np.asarray(lines, dtype=np.int64)
