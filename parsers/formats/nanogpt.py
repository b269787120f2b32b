"""nanoGPT `train.py` (and the many loops copied from it): per-iteration lines and evaluation lines.

    iter 10: loss 3.1462, time 13.86ms, mfu 26.88%
    step 250: train loss 1.5440, val loss 1.7220

`iter` lines give the train `loss` at the step: the LAST micro-batch's loss times
`gradient_accumulation_steps`, so it is noisy. `step` lines are evaluations at `eval_interval`: the
`val loss` (split val) and the train-set estimate over `eval_iters` batches, kept as
`train_loss_estimate` (split train) so that it does not interleave with the per-iteration curve. The
`time` and `mfu` (model FLOPs utilisation, `-100.00%` for the first iterations, a placeholder) are speed,
not training signals, and are not read. Only lines with `mfu` make a file nanoGPT's: the older
`iter N: loss X, time Yms` alone is also what hand-written loops print, and stays with `print_style`.
`saving checkpoint to out` and `Resuming training from out` are events (parsers/events.py).
"""

from __future__ import annotations

import re

import numpy as np

from parsers.formats._llm import RecordRows, floats, hyperparams_from_head, record_lines, wall_times
from parsers.formats._textlog import NUMBER, sniff_head
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "nanogpt"
FRAMEWORK = "pytorch"

_RECORD = (
    rf"([^\n]*?)iter (\d+): loss ({NUMBER}), time [^\n]*"
    rf"|([^\n]*?)step (\d+): train loss ({NUMBER}), val loss ({NUMBER})[^\n]*"
)
_SNIFF = re.compile(rf"iter \d+: loss {NUMBER}, time [\d.]+ms, mfu -?[\d.]+%")


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_head(text, source.name, meta)
    lines, records = record_lines(text, "loss ", _RECORD)
    # groups: iter (prefix, step, loss), eval (prefix, step, train loss, val loss)
    fields = list(zip(*records, strict=True)) if records else [()] * 7
    is_eval = np.fromiter((step == "" for step in fields[1]), dtype=bool, count=len(records))
    prefixes = [a or b for a, b in zip(fields[0], fields[3], strict=True)]
    steps = [a or b for a, b in zip(fields[1], fields[4], strict=True)]
    rows = RecordRows(floats(steps)[0], lines, wall_times(prefixes))
    loss, loss_present = floats([a or b for a, b in zip(fields[2], fields[5], strict=True)])
    rows.add(loss, loss_present & ~is_eval, "train", "loss", "loss")
    rows.add(loss, loss_present & is_eval, "train", "train_loss_estimate", "train loss")
    val_loss, val_present = floats(fields[6])
    rows.add(val_loss, val_present & is_eval, "val", "loss", "val loss")
    return rows.parsed(source.name, meta, "no nanoGPT `iter N: loss X, time ...` lines found")
