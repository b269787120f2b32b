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

from parsers.formats import _llm
from parsers.formats._textlog import NUMBER, normal_pages, sniff_head
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "deepspeed"
FRAMEWORK = "deepspeed"

_RECORD = _llm.LineKind.of(
    "skipped=",
    rf"(?P<prefix>.*?)step=(?P<step>\d+), skipped=(?P<skipped>\d+), lr=\[?(?P<lr>{NUMBER})[^\]\n]*\]?, "
    rf"mom=\[*(?P<mom>{NUMBER})?.*",
)
_SNIFF = re.compile(r"step=\d+, skipped=\d+, lr=")


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.8)


@normal_pages()
def parse(source: SourceFile) -> ParsedFile:
    text, meta = _llm.start(source, FORMAT, FRAMEWORK)
    (records,) = _llm.read_records(text, (_RECORD,))
    rows = _llm.RecordRows(records.number("step")[0], records.lines, _llm.wall_times(records.stamps))
    for field, metric, name in (
        ("lr", "lr", "lr"),
        ("mom", "momentum", "mom"),
        ("skipped", "skipped_steps", "skipped"),
    ):
        rows.add(*records.number(field), "train", metric, name)
    return rows.parsed(source.name, meta, "no DeepSpeed `step=N, skipped=M, lr=...` lines found")
