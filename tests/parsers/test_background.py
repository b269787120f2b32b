"""Work handed to the parse (`while_parsing`): run once, at the end when no parser forks, never
after a failed parse, and never left over for the next parse."""

import pytest

from parsers import ParseError, load
from parsers.background import has_waiting_tasks, while_parsing

CSV = b"step,loss\n0,2.3\n10,1.9\n20,1.5\n"


def test_a_task_runs_at_the_end_of_the_block_when_no_parser_forks():
    ran: list[str] = []
    with while_parsing(lambda: ran.append("task")):
        load([("metrics.csv", CSV)])
        ran.append("parsed")
    assert ran == ["parsed", "task"]
    assert not has_waiting_tasks()


def test_a_task_is_dropped_when_the_parse_fails():
    ran: list[int] = []
    with pytest.raises(ParseError), while_parsing(lambda: ran.append(1)):
        load([("empty.log", b"")])
    assert ran == []
    assert not has_waiting_tasks()
