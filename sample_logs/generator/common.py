"""Shared bits of the run modules: the registry of runs, output paths, the fixed start date."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

SAMPLE_LOGS = Path(__file__).resolve().parents[1]
START = datetime(2026, 11, 24, 10, 15, 3)  # logs start here; their clocks then advance with real time


@dataclass(frozen=True)
class Label:
    """labels.csv row of a run: what the curve really did (read off the numbers) and why."""

    path: str  # relative to sample_logs/, a folder for multi-file runs
    format: str
    symptom: str
    cause: str  # "" for healthy; "a;b" only when the run genuinely has two causes
    case: str  # "1".."4" for the DEVELOPERS cases, else ""
    description: str


RUNS: dict[str, Callable[[], None]] = {}
LABELS: dict[str, Label] = {}


def run(
    path: str, fmt: str, symptom: str, cause: str = "", *, case: str = "", about: str = ""
) -> Callable[[Callable[[], None]], Callable[[], None]]:
    """Register a run with its label; `path` (relative to sample_logs/) is the file or folder it writes."""

    def register(fn: Callable[[], None]) -> Callable[[], None]:
        RUNS[path] = fn
        LABELS[path] = Label(path, fmt, symptom, cause, case, " ".join(about.split()))
        return fn

    return register


def out(path: str) -> Path:
    target = SAMPLE_LOGS / path
    target.parent.mkdir(parents=True, exist_ok=True)
    return target
