"""Keras `fit()` stdout (verbose 1 and 2, standalone Keras and tf.keras).

    Epoch 3/30
      256/10000 [..............................] - ETA: 57s - loss: 0.6828 - acc: 0.5469
    10000/10000 [==============================] - 51s 5ms/step - loss: 0.31 - acc: 0.90 - val_loss: 0.40
    313/313 [==============================] - 2s 6ms/step - loss: 0.31 - accuracy: 0.91      (TF2)
     - 51s - loss: 0.31 - acc: 0.90 - val_loss: 0.40                                           (verbose=2)

One record per epoch: the epoch-final progress line (no `ETA:`), whose values are the epoch's means
(`val_*` in split val). The step is the epoch as printed (1-based). Its duration (`51s`) adds up to
the wall time. The in-epoch lines (`ETA:`) are running means and are not kept. The first
`Epoch k/N` header gives the planned number of epochs.

Several `fit()` calls writing to one `nohup.out` at the same time interleave their lines, and a
header can be glued to the end of another process's progress line. So each `Epoch k/N` header is
given to the run that printed `Epoch k-1/N` last (a new run, and a new segment, for `Epoch 1/N`),
each in-epoch line to the open epoch whose sample counter it continues most closely, and each final
line to the open epoch whose running-mean loss it continues. A final line that no open epoch can
claim is reported and skipped. A single run is unaffected by all this.
"""

from __future__ import annotations

import bisect
import math
import re
from dataclasses import dataclass, field

from parsers.formats._llm import without_ansi
from parsers.formats._textlog import NUMBER, At, LineCounter, Problems, Rows, sniff_head, to_float
from parsers.hparams import hyperparams_from_text
from parsers.keras_summary import summary_facts
from parsers.model import LogLine, RunMeta
from parsers.names import split_and_metric
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "keras_stdout"
FRAMEWORK = "keras"

_CANDIDATE = re.compile(r"(?m)^[^\n]*(?:Epoch \d+/\d+| - [A-Za-z_]\w*: )[^\n]*$")
_HEADER = re.compile(r"Epoch (\d+)/(\d+)")
_COUNTER = re.compile(r"^\s*(\d+)/(\d+)\b")
_PAIR = re.compile(rf" - ([A-Za-z_]\w*): ({NUMBER})(?![\d.])")
_DURATION = re.compile(r" - (\d+(?:\.\d+)?)s(?=\s)")
# Keras 3, verbose=1: `50/50 ━━━━━━━━━━━━━━━━━━━━ 1s 6ms/step - loss: ...` (seconds of the epoch, per step)
_KERAS3_DURATION = re.compile(r"(?<=\s)(\d+(?:\.\d+)?)s \d+(?:\.\d+)?(?:[mun]|µ)?s/step\b")
_SNIFF = re.compile(r"(?m)^Epoch \d+/\d+\s*$[\s\S]{0,4000}? - (?:ETA: \S+ - )?\w*loss: ")


@dataclass
class _Run:
    segment: int
    epochs: int  # N of `Epoch k/N` (0 for final lines that came without a header)
    epoch: int = 0  # the last epoch header
    open: bool = False  # a header was seen and its final line was not
    done: int = 0  # sample counter of the open epoch
    opened: int = 0  # order of the last header (ties go to the newest)
    closed: int = 0  # order of the last final line (a header follows its run's final line)
    last_loss: float | None = None  # running mean loss of the open epoch's last in-epoch line
    elapsed: float = 0.0  # summed epoch durations
    start: float | None = None  # `elapsed` at the first record
    # the last epoch line: where it was recorded, its values, and the keys recorded there since
    final_at: At | None = None
    final_pairs: dict[str, str] = field(default_factory=dict)
    final_keys: set[str] = field(default_factory=set)


class _Runs:
    """The runs of a file (index = segment) with the open ones and the ones at each (N, epoch k) kept
    aside in file order: a grown log holds thousands of runs, and searching them all for every line took
    time quadratic in its length."""

    def __init__(self) -> None:
        self.all: list[_Run] = []
        self.open: list[_Run] = []
        self._at: dict[tuple[int, int], list[_Run]] = {}  # (epochs, epoch) -> runs there, in file order
        self.last_closed: _Run | None = None  # the run of the last epoch line

    def new(self, epochs: int) -> _Run:
        run = _Run(segment=len(self.all), epochs=epochs)
        self.all.append(run)
        self._at.setdefault((epochs, 0), []).append(run)
        return run

    def at(self, epochs: int, epoch: int) -> list[_Run]:
        return self._at.get((epochs, epoch), [])

    def move(self, run: _Run, epoch: int) -> None:
        self._at[(run.epochs, run.epoch)].remove(run)
        _insort(self._at.setdefault((run.epochs, epoch), []), run)
        run.epoch = epoch

    def set_open(self, run: _Run, is_open: bool) -> None:
        if is_open and not run.open:
            _insort(self.open, run)
        elif run.open and not is_open:
            self.open.remove(run)
        run.open = is_open


def _insort(runs: list[_Run], run: _Run) -> None:
    bisect.insort(runs, run, key=lambda r: r.segment)


def sniff(source: SourceFile) -> float:
    return sniff_head(source, _SNIFF, 0.9)


def parse(source: SourceFile) -> ParsedFile:
    text = _without_redraws(source.log_text)
    meta = RunMeta(framework=FRAMEWORK, format=FORMAT)
    hyperparams_from_text(text, source.name, meta)
    summary_facts(text, source.name, meta)
    rows = Rows()
    problems = Problems(source.name)
    lines = LineCounter(text)
    runs = _Runs()
    headers = 0
    for found in _CANDIDATE.finditer(text):
        number = lines.line(found.start())
        position = 0
        for header in _HEADER.finditer(found[0]):
            _progress(found[0][position : header.start()], number, runs, rows, problems)
            headers += 1
            _open_epoch(runs, int(header[1]), int(header[2]), headers)
            meta.set("epochs", int(header[2]), LogLine(source.name, number, found[0].strip()))
            position = header.end()
        _progress(found[0][position:], number, runs, rows, problems)
    return rows.parsed(source.name, meta, problems, "no Keras `Epoch k/N` progress lines with values")


def _without_redraws(text: str) -> str:
    """The text without the colour codes and backspaces of a progress bar written to a file (Keras 3
    erases each update with backspaces and colours the bar); line breaks stay, so line numbers do."""
    if "\x1b" not in text and "\x08" not in text:
        return text
    return without_ansi(text).replace("\x08", "")


def _open_epoch(runs: _Runs, epoch: int, epochs: int, order: int) -> None:
    """The run an `Epoch k/N` header belongs to: the one that printed `Epoch k-1/N`."""
    previous = runs.at(epochs, epoch - 1)
    closed = [r for r in previous if not r.open]
    if epoch == 1 or not previous:
        run = runs.new(epochs)
    else:
        run = max(closed, key=lambda r: r.closed) if closed else previous[-1]
    runs.move(run, epoch)
    runs.set_open(run, True)
    run.done, run.opened, run.last_loss = 0, order, None


def _progress(piece: str, number: int, runs: _Runs, rows: Rows, problems: Problems) -> None:
    pairs = _PAIR.findall(piece)
    if not pairs:
        return
    counter = _COUNTER.match(piece)
    done = int(counter[1]) if counter else 0
    loss = next((to_float(value) for key, value in pairs if key == "loss"), None)
    open_runs = runs.open
    if "ETA:" in piece or (counter and counter[1] != counter[2]):  # Keras 3 prints no `ETA:`
        if open_runs:
            behind = [r for r in open_runs if r.done < done]  # the sample counter only goes up
            if behind:
                run = min(behind, key=lambda r: (done - r.done, _distance(r, loss)))
            else:
                run = min(open_runs, key=lambda r: r.done)
            run.done, run.last_loss = done, loss
        return
    duration = _DURATION.search(piece) or _KERAS3_DURATION.search(piece)
    if not counter and not duration:
        return  # ` - loss: ...` in some other message
    reprinted = _reprinted(runs, pairs)
    if reprinted is not None:
        # Keras 3 prints the full bar when the training batches are done and again with the val_
        # metrics once validation is: the second line completes the first epoch record
        known = reprinted.final_keys
        for key, value in pairs:
            if key not in known:
                split, metric = split_and_metric(key)
                rows.add(reprinted.final_at, split, metric, key, to_float(value))
                known.add(key)
        return
    if open_runs:
        run = min(open_runs, key=lambda r: _distance(r, loss))
    elif runs.all and runs.all[-1].epochs:
        problems.add(number, "epoch summary that no open epoch claims (interleaved output?); skipped")
        return
    else:  # no `Epoch k/N` headers at all: epochs counted in file order
        run = runs.all[-1] if runs.all else runs.new(0)
        runs.move(run, run.epoch + 1)
    runs.set_open(run, False)
    run.closed = number
    run.elapsed += float(duration[1]) if duration else 0.0
    if run.start is None:
        run.start = run.elapsed
    at = At(
        step=run.epoch,
        line=number,
        segment=run.segment,
        epoch=float(run.epoch),
        wall_time=run.elapsed - run.start if duration else None,
    )
    for key, value in pairs:
        split, metric = split_and_metric(key)
        rows.add(at, split, metric, key, to_float(value))
    run.final_at, run.final_pairs, run.final_keys = at, dict(pairs), {key for key, _ in pairs}
    runs.last_closed = run


def _reprinted(runs: _Runs, pairs: list[tuple[str, str]]) -> _Run | None:
    """The run whose last epoch line this one prints again, maybe with more values (Keras 3's line after
    validation): the same values for every key the first line had."""
    last = runs.last_closed
    if runs.open or last is None or last.final_at is None:
        return None
    given = dict(pairs)
    same = all(given.get(key) == value for key, value in last.final_pairs.items())
    return last if same else None


def _distance(run: _Run, loss: float | None) -> tuple[float, int, int]:
    """How unlikely it is that a progress line belongs to `run`: its loss (a running mean) continues
    the run's last in-epoch line; then the run furthest along, then the newest."""
    gap = abs(loss - run.last_loss) if loss is not None and run.last_loss is not None else math.inf
    return (gap if gap == gap else math.inf, -run.done, -run.opened)
