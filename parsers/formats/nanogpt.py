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
from parsers.formats._textlog import NUMBER, normal_pages, sniff_head
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "nanogpt"
FRAMEWORK = "pytorch"

_ITER = _llm.LineKind.of("iter ", rf"(?P<prefix>.*?)iter (?P<step>\d+): loss (?P<loss>{NUMBER}), time .*")
_EVAL = _llm.LineKind.of(
    "val loss",
    rf"(?P<prefix>.*?)step (?P<step>\d+): train loss (?P<train>{NUMBER}), val loss (?P<val>{NUMBER}).*",
)
_SNIFF = re.compile(rf"iter \d+: loss {NUMBER}, time [\d.]+ms, mfu -?[\d.]+%")


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


@normal_pages()
def parse(source: SourceFile) -> ParsedFile:
    text, meta = _llm.start(source, FORMAT, FRAMEWORK)
    iters, evals = _llm.read_records(text, (_ITER, _EVAL))
    records, order = _llm.concatenated([iters, evals])
    is_eval = np.repeat([False, True], [len(iters.lines), len(evals.lines)])
    if order is not None:
        is_eval = is_eval[order]
    rows = _llm.RecordRows(records.number("step")[0], records.lines, _llm.wall_times(records.stamps))
    loss, loss_present = records.number("loss")
    train, train_present = records.number("train")
    val, val_present = records.number("val")
    rows.add(loss, loss_present & ~is_eval, "train", "loss", "loss")
    rows.add(train, train_present & is_eval, "train", "train_loss_estimate", "train loss")
    rows.add(val, val_present & is_eval, "val", "loss", "val loss")
    return rows.parsed(source.name, meta, "no nanoGPT `iter N: loss X, time ...` lines found")
