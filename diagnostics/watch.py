"""Follow a training log (or a run folder) that is still being written, and re-diagnose as it grows.

    watcher = Watcher("runs/exp7/train.log")
    while True:
        poll = watcher.poll()               # stat() each file; read only the bytes added since
        if poll.changed:                    # a complete line arrived (or a file restarted)
            state = watcher.diagnose()      # verdict + early warnings of everything read so far

Polling `os.stat()` rather than inotify: training logs live on NFS, Lustre or EFS, where inotify
fires no event. Each file keeps its device/inode, the byte offset read up to and the partial last line
(a line is complete at `\\n` or `\\r`, tqdm's separator), so a line cut by a flush is never parsed
half. Rotation (the inode changed: `mv train.log train.log.1` and a new `train.log`) and truncation
(the size fell below the offset: logrotate's copytruncate, or the job restarted with `>`) start the
file over from byte 0 and say so.

Parsing is not incremental line by line: the formats are detected from the content and several carry
state across lines (Caffe's phase and iteration, Keras' epoch, a CSV header), so the kept bytes are
parsed again whole, from memory, never re-read from disk. That costs one parse of the log per change
(the text formats parse at tens of MB/s: a 100 MB log takes seconds), so `Watcher.due()` holds the
next parse back until `min_gap_factor` times the last parse's duration has passed: the watch spends
at most about 1 / (1 + min_gap_factor) of its time parsing, however large the log grows. Memory is
the log's bytes once.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from diagnostics import diagnose
from diagnostics.early_warning import EarlyWarning, early_warnings
from diagnostics.model import Diagnosis
from parsers import ParseError, TrainingLog, load
from parsers.source import NOT_LOG_SUFFIXES, SourceFile


@dataclass
class FileFollower:
    """One file: the complete lines read so far, the partial last line, and where reading stopped."""

    path: Path
    complete: bytearray = field(default_factory=bytearray)
    partial: bytes = b""
    offset: int = 0
    identity: tuple[int, int] | None = None  # (st_dev, st_ino) of the file being read
    restarts: int = 0

    def poll(self) -> tuple[int, str | None]:
        """Read what was appended since the last poll: (complete-line bytes added, restart reason).
        The reason is "rotated" (another file under the name), "truncated" (shorter than what was
        read) or "missing" (the file is gone; what was read is kept until it reappears)."""
        try:
            stat = os.stat(self.path)
        except FileNotFoundError:
            return 0, "missing" if self.identity is not None and self.offset else None
        identity = (stat.st_dev, stat.st_ino)
        reason = None
        if self.identity is not None and identity != self.identity:
            reason = "rotated"
        elif stat.st_size < self.offset:
            reason = "truncated"
        if reason:
            self.complete, self.partial, self.offset = bytearray(), b"", 0
            self.restarts += 1
        self.identity = identity
        if stat.st_size == self.offset:
            return 0, reason
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            chunk = fh.read(
                stat.st_size - self.offset
            )  # up to the size stat() saw: a line being written waits
        self.offset += len(chunk)
        pending = self.partial + chunk
        end = max(pending.rfind(b"\n"), pending.rfind(b"\r")) + 1
        self.complete += pending[:end]
        self.partial = pending[end:]
        return end, reason


@dataclass
class Poll:
    """What one poll found: complete-line bytes added per file, and restarted files with the reason."""

    added: dict[str, int] = field(default_factory=dict)
    restarted: dict[str, str] = field(default_factory=dict)
    new_files: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(self.added.values()) or bool(self.restarted) or bool(self.new_files)


@dataclass
class WatchState:
    """The diagnosis of what has been read so far."""

    log: TrainingLog | None
    diagnosis: Diagnosis | None
    warnings: list[EarlyWarning]
    error: str | None  # the log cannot be parsed yet (empty, header only) or a rule failed
    bytes_read: int
    read_at: float  # time.time() of the poll this state comes from
    parse_seconds: float

    @property
    def last_step(self) -> int | None:
        if self.log is None or not len(self.log.metrics):
            return None
        return int(self.log.metrics["step"].max())

    def key(self) -> tuple:
        """What a change of verdict means: the symptom, whether it is sure, and the warnings' rules."""
        if self.diagnosis is None:
            return ("unreadable",)
        d = self.diagnosis
        return (d.symptom.symptom, d.uncertain, tuple(sorted({w.rule for w in self.warnings})))

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        out: dict[str, Any] = self.diagnosis.to_json(lang) if self.diagnosis is not None else {}
        return out | {
            "warnings": [w.to_json(lang) for w in self.warnings],
            "error": self.error,
            "bytes_read": self.bytes_read,
            "last_step": self.last_step,
            "read_at": self.read_at,
        }


class Watcher:
    """Follows one log file, or every log file of a run folder (files that appear later included)."""

    def __init__(self, path: str | os.PathLike[str], min_gap_factor: float = 4.0) -> None:
        self.path = Path(path)
        self.min_gap_factor = min_gap_factor
        self.followers: dict[str, FileFollower] = {}
        self._last_parse_end = 0.0
        self._last_parse_seconds = 0.0
        self._dirty = True
        self._judged_step: int | None = None  # the last step the early warnings judged
        # The first warning of each episode (a rule that was silent at the refresh before): a warning
        # passes when the loss comes back down, but the page still lists it.
        self.history: list[EarlyWarning] = []
        self._active: set[str] = set()  # rules that warned at the last refresh

    def _paths(self) -> list[Path]:
        if not self.path.is_dir():
            return [self.path]
        return sorted(
            p
            for p in self.path.rglob("*")
            if p.is_file() and p.suffix not in NOT_LOG_SUFFIXES and not p.name.startswith(".")
        )

    def poll(self) -> Poll:
        """stat() every file and read the bytes appended since the last poll."""
        poll = Poll()
        for path in self._paths():
            name = str(path.relative_to(self.path)) if self.path.is_dir() else path.name
            if name not in self.followers:
                self.followers[name] = FileFollower(path)
                poll.new_files.append(name)
            added, reason = self.followers[name].poll()
            if added:
                poll.added[name] = added
            if reason in ("rotated", "truncated"):
                poll.restarted[name] = reason
        self._dirty = self._dirty or poll.changed
        if poll.restarted:
            self._judged_step = None
        return poll

    @property
    def bytes_read(self) -> int:
        return sum(f.offset for f in self.followers.values())

    @property
    def pending(self) -> bool:
        """Lines (or a restart) arrived since the last diagnosis."""
        return self._dirty

    def due(self, now: float | None = None) -> bool:
        """Whether a re-diagnosis is worth it now: new complete lines arrived, and the last parse
        ended at least `min_gap_factor` times its own duration ago (big logs are parsed less often)."""
        now = time.monotonic() if now is None else now
        return self._dirty and now - self._last_parse_end >= self.min_gap_factor * self._last_parse_seconds

    def diagnose(self) -> WatchState:
        """Parse the complete lines read so far (from memory) and diagnose them."""
        started = time.monotonic()
        files = [(name, bytes(f.complete)) for name, f in self.followers.items() if f.complete]
        log = diagnosis = None
        warnings: list[EarlyWarning] = []
        error = None
        try:
            if not files:
                raise ParseError("nothing complete to read yet")
            log = load([SourceFile.from_bytes(name, data) for name, data in files])
            diagnosis = diagnose(log)
            warnings = early_warnings(log, since=self._judged_step)
            self._judged_step = int(log.metrics["step"].max()) if len(log.metrics) else None
            self.history += [w for w in warnings if w.rule not in self._active]
            self._active = {w.rule for w in warnings}
        except ParseError as err:
            error = str(err).splitlines()[0]
        except Exception as err:  # a parser or rule bug on this prefix: reported, the watch goes on
            error = f"{type(err).__name__}: {err}"
        self._last_parse_end = time.monotonic()
        self._last_parse_seconds = self._last_parse_end - started
        self._dirty = False
        return WatchState(
            log, diagnosis, warnings, error, self.bytes_read, time.time(), self._last_parse_seconds
        )
