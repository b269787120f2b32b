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

from parsers.formats import _llm
from parsers.formats._textlog import NUMBER, normal_pages
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "torchtitan"
FRAMEWORK = "pytorch"

# colour codes may wrap every field (`\x1b[32mloss:  9.9300  \x1b[33mgrad_norm:`): allowed around blanks
_COLOUR = r"(?:\x1b\[[0-9;]*[A-Za-z])*"
_BLANKS = rf"{_COLOUR}[^\S\n]+{_COLOUR}"
_GAP = rf"{_COLOUR}[^\S\n]*{_COLOUR}"
_RECORD = _llm.LineKind.of(
    "step:",
    rf"(?:\[rank(?P<rank>\d+)\]:)?(?P<prefix>.*?)(?P<validate>validate {_COLOUR})?step:{_GAP}"
    rf"(?P<step>\d+){_BLANKS}loss:{_GAP}(?P<loss>{NUMBER})"
    rf"(?:{_BLANKS}grad_norm:{_GAP}(?P<grad_norm>{NUMBER}))?{_BLANKS}memory:.*",
    flags=("validate",),
)
_SNIFF = re.compile(rf"step:\s*\d+\s+loss:\s*{NUMBER}\s+(?:grad_norm:\s*{NUMBER}\s+)?memory:\s*[\d.]+GiB")


def sniff(source: SourceFile) -> float:
    if source.looks_binary():
        return 0.0
    return 0.9 if _SNIFF.search(_llm.without_ansi(source.head_text(1024 * 1024))) else 0.0


@normal_pages()
def parse(source: SourceFile) -> ParsedFile:
    text, meta = _llm.start(source, FORMAT, FRAMEWORK)
    (records,) = _llm.read_records(text, (_RECORD,))
    rank, has_rank = records.number("rank")
    rank = np.where(has_rank, rank, -1.0)  # no `[rankN]:` prefix comes first
    if len(np.unique(rank)) > 1:  # every rank prints the same averaged values: the first rank's are read
        records = records.where(rank == rank.min())
    validate = records.number("validate")[0] == 1.0
    rows = _llm.RecordRows(records.number("step")[0], records.lines, _llm.wall_times(records.stamps))
    loss, loss_present = records.number("loss")
    grad_norm, grad_present = records.number("grad_norm")
    rows.add(loss, loss_present & ~validate, "train", "loss", "loss")
    rows.add(grad_norm, grad_present & ~validate, "train", "grad_norm", "grad_norm")
    rows.add(loss, loss_present & validate, "val", "loss", "validate loss")
    return rows.parsed(source.name, meta, "no torchtitan `step: N  loss: X  ... memory:` lines found")
