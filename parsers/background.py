"""Work a caller wants done while a parser waits for its worker processes.

The Caffe parser forks one process per core for a large log and then only waits for their records.
A caller that will need something slow afterwards (the CLI needs `scipy.stats`, half a second to
import) wraps its parse in `while_parsing(task)`: the parser runs the task in that wait, in the
main thread, so no thread of ours exists when the workers are forked. When no parser forks, the
task runs as the block ends; when the block raises, it does not run at all. Tasks belong to the
thread that handed them over (the server parses uploads in several threads at once): a parse
runs only its own thread's tasks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_thread = threading.local()


def _waiting() -> list[Callable[[], object]]:
    """This thread's tasks."""
    if not hasattr(_thread, "waiting"):
        _thread.waiting = []
    return _thread.waiting


@contextmanager
def while_parsing(task: Callable[[], object]) -> Iterator[None]:
    """Run `task` once during the parses inside the block, or at its end."""
    waiting = _waiting()
    waiting.append(task)
    try:
        yield
    finally:
        not_run = task in waiting
        if not_run:
            waiting.remove(task)
    if not_run:
        task()


def has_waiting_tasks() -> bool:
    return bool(_waiting())


def run_waiting_tasks() -> None:
    """Run the tasks handed over (a parser calls this once its workers are forked)."""
    waiting = _waiting()
    while waiting:
        waiting.pop(0)()
