"""Real corpus runs reshaped for tests: a print-style run's log cut into the settings its training
script printed and the metrics it logged (a curves-only log and its settings file, as users keep them)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

METRIC_LINE = re.compile(r"\bloss\b", re.IGNORECASE)


def split_run(run: Path) -> tuple[bytes, bytes]:
    """(the lines printed before the first loss line, the rest) of the run's `train.log.gz`."""
    text = gzip.decompress((run / "train.log.gz").read_bytes()).decode()
    lines = text.splitlines(keepends=True)
    first = next(n for n, line in enumerate(lines) if METRIC_LINE.search(line))
    return "".join(lines[:first]).encode(), "".join(lines[first:]).encode()
