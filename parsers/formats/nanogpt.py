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

from parsers.formats._jsonlines import ColumnRows, Problems
from parsers.formats._llm import floats, wall_times
from parsers.formats._textlog import NUMBER, LineCounter, sniff_head
from parsers.hparams import hyperparams_from_text
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "nanogpt"
FRAMEWORK = "pytorch"

_ITER = re.compile(rf"\biter (\d+): loss ({NUMBER}), time ")
_EVAL = re.compile(rf"\bstep (\d+): train loss ({NUMBER}), val loss ({NUMBER})")
_SNIFF = re.compile(rf"\biter \d+: loss {NUMBER}, time [\d.]+ms, mfu -?[\d.]+%")


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    iters = [(m.start(), m[1], m[2], "") for m in _ITER.finditer(text)]
    evals = [(m.start(), m[1], m[2], m[3]) for m in _EVAL.finditer(text)]
    records = sorted(iters + evals) if evals else iters
    counter = LineCounter(text)
    starts = [record[0] for record in records]
    lines = np.fromiter((counter.line(start) for start in starts), dtype=np.int64, count=len(records))
    table = np.asarray([record[1:] for record in records], dtype=str).reshape(len(records), 3)
    is_eval = table[:, 2] != ""
    steps, _ = floats(table[:, 0])
    rows = ColumnRows(steps.astype(np.int64), lines, wall_time=wall_times(text, starts))
    first, first_present = floats(table[:, 1])
    rows.add(first, first_present & ~is_eval, "train", "loss", "loss")
    rows.add(first, first_present & is_eval, "train", "train_loss_estimate", "train loss")
    if is_eval.any():
        val, val_present = floats(np.where(is_eval, table[:, 2], "nan"))
        rows.add(val, val_present & is_eval, "val", "loss", "val loss")
    return rows.parsed(
        source.name, meta, Problems(source.name), "no nanoGPT `iter N: loss X, time ...` lines found"
    )
