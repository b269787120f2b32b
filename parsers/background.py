"""Work a caller wants done while a parser waits for its worker processes.

The Caffe parser forks one process per core for a large log and then only waits for their records.
A caller that will need something slow afterwards (the CLI needs `scipy.stats`, half a second to
import) hands it over here, and the parser runs it in that wait, in the main thread: no thread of
our own exists when the workers are forked. When no parser forks, the work runs as parsing ends.
"""

from __future__ import annotations

from collections.abc import Callable

_waiting: list[Callable[[], object]] = []


def while_parsing(task: Callable[[], object]) -> None:
    """Run `task` during the next parse, while its workers scan (or right after it)."""
    _waiting.append(task)


def has_waiting_tasks() -> bool:
    return bool(_waiting)


def run_waiting_tasks() -> None:
    """Run every task handed over so far (parsers call this once their workers are forked)."""
    while _waiting:
        _waiting.pop(0)()
