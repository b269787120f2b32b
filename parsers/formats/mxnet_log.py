"""MXNet Module `fit()` logs: Speedometer lines and per-epoch summaries, with any logging prefix.

    Epoch[145] Batch [20]\tSpeed: 36.22 samples/sec\tTrain-Acc=0.774131
    Epoch[145] Train-SmoothL1=2.446886
    Epoch[145] Time cost=106.624
    Epoch[145] Validation-accuracy=0.9012
    Update[4781]: Change learning rate to 1.00000e-04
    Resume training with (gpu(0)) from epoch 149          (example scripts: a run appended)

Steps are batches. MXNet never prints the number of batches per epoch, so it is estimated per run as
the last logged batch plus the logging interval (`Batch [380]` every 20 -> 400): a batch line is at
epoch * 400 + batch, an epoch summary (and validation) at the end of its epoch, (epoch + 1) * 400.
A run without batch lines is stepped by epoch. The Speedometer resets its metric after each print
(`auto_reset`), so batch values are means over the last interval and the epoch summary covers only
the batches after the last print. `lr` comes from the scheduler's `Change learning rate` lines.

`loss`: MXNet metrics have no fixed name for the objective. `loss` is the first loss-like metric
(`cross-entropy`, `ce`, `nll-loss`, `*loss*`, `perplexity` is not one), else, for the SSD example's
MultiBoxMetric which reports `Acc`, `ObjectAcc` and `SmoothL1`, the localisation loss `SmoothL1`;
`name` keeps the original spelling. Every `Resume training` / `Start training` / `from scratch`
line, and an epoch number that goes back, starts a new segment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from parsers.formats._textlog import (
    NUMBER,
    TIMING_KEYS,
    At,
    LineCounter,
    Problems,
    Rows,
    WallClock,
    line_at,
    sniff_head,
    to_float,
)
from parsers.hparams import hyperparams_from_text
from parsers.model import MAX_COUNTER, RunMeta
from parsers.names import KEY_CACHE_SIZE, split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "mxnet_log"
FRAMEWORK = "mxnet"

# Literal-led patterns, scanned separately and merged by position (one alternation behind a lazy
# line prefix costs a regex attempt at every character).
_EPOCH = re.compile(r"Epoch\[(?P<epoch>\d+)\](?:\s*Batch\s*\[(?:\d+-)?(?P<batch>\d+)\])?(?P<rest>[^\n]*)")
_LR_CHANGE = re.compile(rf"Update\[\d+\]: Change learning rate to ({NUMBER})")
_START = re.compile(r"(?:Resume|Start|start) training\b|\bfrom scratch\b")
# a key from the first letter of its run (never from inside one: quadratic on a long run)
_PAIR = re.compile(rf"(?<![\w\-@])(?:[^\WA-Za-z]|[\-@])*+((?:Time )?[A-Za-z][\w\-@]*+)=({NUMBER})(?![\w.])")
_SNIFF = re.compile(r"Epoch\[\d+\] (?:Batch \[[\d\-]+\]\s+Speed: [\d.]+ samples/sec|Train-\S+=|Time cost=)")
_LOSS_LIKE = re.compile(r"loss|entropy|^(?:ce|nll|xent)$")
_LOCALISATION = ("smoothl1", "smooth_l1")
_ALIASES = {"top_k_accuracy_5": "top5", "top_k_accuracy": "top5"}


@dataclass
class _Event:
    line: int
    segment: int
    epoch: int
    batch: int | None  # None: an epoch summary, a validation or an lr change
    pairs: list[tuple[str, str]]
    wall_time: float
    lr_change: bool = False  # placed at the step of the event before it


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


def parse(source: SourceFile) -> ParsedFile:
    text = source.log_text
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    events = _events(text, meta)
    per_epoch = _batches_per_epoch(events)
    rows = Rows()
    step = 0
    for event in events:
        batches = per_epoch.get(event.segment)
        if event.lr_change:
            pass  # at the step of the event before it
        elif batches is None:
            step = event.epoch
        elif event.batch is None:
            step = (event.epoch + 1) * batches
        else:
            step = event.epoch * batches + event.batch
        at = At(step, event.line, event.segment, float(event.epoch), event.wall_time)
        for key, value in event.pairs:
            target = _metric_of(key)
            if target is not None:
                rows.add(at, target[0], target[1], key, to_float(value))
    _name_the_loss(rows)
    return rows.parsed(source.name, meta, Problems(source.name), "no MXNet `Epoch[k] ...=value` lines")


def _events(text: str, meta: RunMeta) -> list[_Event]:
    """The records in file order, with their segment."""
    found = [*_EPOCH.finditer(text), *_LR_CHANGE.finditer(text), *_START.finditer(text)]
    found.sort(key=lambda match: match.start())
    events: list[_Event] = []
    lines = LineCounter(text)
    clock = WallClock()
    segment, epoch, started = 0, 0, False
    for match in found:
        if match.re is _START:
            meta.resumed = meta.resumed or match[0] == "Resume training"
            started = True
            continue
        if match.re is _LR_CHANGE:
            pairs, batch = [("lr", match[1])], None
        else:
            pairs = _PAIR.findall(match["rest"])
            batch = int(match["batch"]) if match["batch"] is not None else None
            if not pairs:
                continue
            new_epoch = int(match["epoch"])
            if max(new_epoch, batch or 0) > MAX_COUNTER:  # corrupt digits: no place in the run
                continue
            if events and (started or new_epoch < epoch):
                segment += 1
            epoch, started = new_epoch, False
        wall_time = clock.since_start(line_at(text, match.start()))
        number = lines.line(match.start())
        events.append(_Event(number, segment, epoch, batch, pairs, wall_time, match.re is _LR_CHANGE))
    return events


def _batches_per_epoch(events: list[_Event]) -> dict[int, int]:
    """Segment -> estimated batches per epoch: the last logged batch plus the logging interval."""
    logged: dict[int, list[int]] = {}
    for event in events:
        if event.batch is not None:
            logged.setdefault(event.segment, []).append(event.batch)
    estimates = {}
    for segment, batches in logged.items():
        gaps = np.diff(batches)
        gaps = gaps[gaps > 0]
        if len(gaps):  # the most common gap, the smallest of equals (bincount would allocate max(gaps))
            values, counts = np.unique(gaps, return_counts=True)
            interval = int(values[counts.argmax()])
        else:
            interval = min(batches) or 1
        estimates[segment] = max(batches) + interval
    return estimates


@lru_cache(maxsize=KEY_CACHE_SIZE)
def _metric_of(key: str) -> tuple[str, str] | None:
    """(split, metric) of an MXNet metric name (`Train-Acc`, `Validation-cross-entropy`); None for
    `Time cost`."""
    split, metric = split_and_metric(key)
    return None if metric in TIMING_KEYS else (split, _ALIASES.get(metric, metric))


def _name_the_loss(rows: Rows) -> None:
    """Without a metric called loss, the first loss-like one (else SSD's SmoothL1) becomes `loss`."""
    metrics = list(dict.fromkeys(metric for _, metric, _ in rows.labels()))
    if "loss" in metrics:
        return
    chosen = next((m for m in metrics if _LOSS_LIKE.search(m)), None)
    chosen = chosen or next((m for m in metrics if m in _LOCALISATION), None)
    if chosen is not None:
        rows.rename_metrics({(split, chosen): "loss" for split in ("train", "val", "test")})
