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

from parsers.formats import _llm
from parsers.formats._textlog import NUMBER, sniff_head
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "nanogpt"
FRAMEWORK = "pytorch"

_ITER = _llm.LineRecord.of("iter ", rf"([^\n]*?)iter (\d+): loss ({NUMBER}), time [^\n]*")
_EVAL = _llm.LineRecord.of(
    "val loss", rf"([^\n]*?)step (\d+): train loss ({NUMBER}), val loss ({NUMBER})[^\n]*"
)
_SNIFF = re.compile(rf"iter \d+: loss {NUMBER}, time [\d.]+ms, mfu -?[\d.]+%")


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


def parse(source: SourceFile) -> ParsedFile:
    text, meta = _llm.start(source, FORMAT, FRAMEWORK)
    (iter_lines, iters), (eval_lines, evals) = _llm.record_lines(text, (_ITER, _EVAL))
    # iters: prefix, step, loss; evals: prefix, step, train loss, val loss
    lines = np.concatenate([iter_lines, eval_lines])
    order = _llm.in_file_order(lines)
    is_eval = np.arange(len(lines)) >= len(iter_lines)
    loss, loss_present = _llm.floats(iters[2] + evals[2])
    val, val_present = _llm.floats(evals[3])
    val = np.concatenate([np.full(len(iter_lines), np.nan), val])
    val_present = np.concatenate([np.zeros(len(iter_lines), dtype=bool), val_present])
    arrays = [_llm.floats(iters[1] + evals[1])[0], lines, is_eval, loss, loss_present, val, val_present]
    if order is not None:
        arrays = [array[order] for array in arrays]
    steps, lines, is_eval, loss, loss_present, val, val_present = arrays
    rows = _llm.RecordRows(steps, lines, _llm.ordered_wall_times(iters[0] + evals[0], order))
    rows.add(loss, loss_present & ~is_eval, "train", "loss", "loss")
    rows.add(loss, loss_present & is_eval, "train", "train_loss_estimate", "train loss")
    rows.add(val, val_present & is_eval, "val", "loss", "val loss")
    return rows.parsed(source.name, meta, "no nanoGPT `iter N: loss X, time ...` lines found")
