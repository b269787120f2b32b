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
from operator import methodcaller

import numpy as np

from parsers.formats import _llm
from parsers.formats._textlog import NUMBER
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "torchtitan"
FRAMEWORK = "pytorch"

# The prefix runs up to `step:` (a literal, which the regex engine skips to) and so holds the `validate `
# of a validation line: the first place where the rest matches is the same with `(validate )?` after it.
_RECORD = _llm.LineRecord.of(
    "step:",
    rf"(?:\[rank(\d+)\]:)?([^\n]*?)step:[^\S\n]*(\d+)[^\S\n]+loss:[^\S\n]*({NUMBER})"
    rf"(?:[^\S\n]+grad_norm:[^\S\n]*({NUMBER}))?[^\S\n]+memory:[^\n]*",
)
_SNIFF = re.compile(rf"step:\s*\d+\s+loss:\s*{NUMBER}\s+(?:grad_norm:\s*{NUMBER}\s+)?memory:\s*[\d.]+GiB")


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    return 0.9 if _SNIFF.search(_llm.without_ansi(source.head_text(1024 * 1024))) else 0.0


def parse(source: SourceFile) -> ParsedFile:
    text, meta = _llm.start(source, FORMAT, FRAMEWORK, _llm.without_ansi(source.log_text))
    ((lines, fields),) = _llm.record_lines(text, (_RECORD,))
    # groups: rank, prefix (ending in `validate ` on a validation line), step, loss, grad_norm ("" before
    # 2025: not a value)
    ranks = set(fields[0])
    if len(ranks) > 1:  # every rank prints the same averaged values: the first rank's lines are read
        first_rank = min(ranks, key=lambda rank: int(rank) if rank else -1)
        keep = [i for i, rank in enumerate(fields[0]) if rank == first_rank]
        lines, fields = lines[keep], [[field[i] for i in keep] for field in fields]
    records = fields[0]
    validate = np.fromiter(
        map(methodcaller("endswith", "validate "), fields[1]), dtype=bool, count=len(records)
    )
    rows = _llm.RecordRows(_llm.floats(fields[2])[0], lines, _llm.wall_times(fields[1]))
    loss, loss_present = _llm.floats(fields[3])
    grad_norm, grad_present = _llm.floats(fields[4])
    rows.add(loss, loss_present & ~validate, "train", "loss", "loss")
    rows.add(grad_norm, grad_present & ~validate, "train", "grad_norm", "grad_norm")
    rows.add(loss, loss_present & validate, "val", "loss", "validate loss")
    return rows.parsed(source.name, meta, "no torchtitan `step: N  loss: X  ... memory:` lines found")
