"""Work handed to the parse (`while_parsing`): run once, at the end when no parser forks, never
after a failed parse, and never left over for the next parse."""

import threading

import pytest
from test_caffe_glog import BODY, HEADER

from parsers import ParseError, load
from parsers.background import has_waiting_tasks, while_parsing
from parsers.formats import caffe_glog

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


def test_a_task_is_run_only_by_a_parse_in_its_own_thread(monkeypatch):
    """Two uploads are parsed in two threads of the server: a parse that forks workers in one
    thread must not run (nor use up) the task another thread handed over."""
    monkeypatch.setattr(caffe_glog, "CHUNK_BYTES", 700)  # a small log forks workers too
    monkeypatch.setenv("LOSS_DOCTOR_WORKERS", "2")
    caffe_log = (HEADER + BODY * 40).encode()
    ran: list[str] = []
    seen_by_other: list[bool] = []

    def other_parse() -> None:
        seen_by_other.append(has_waiting_tasks())
        load([("train.log", caffe_log)])

    with while_parsing(lambda: ran.append(threading.current_thread().name)):
        other = threading.Thread(target=other_parse)
        other.start()
        other.join(timeout=60)
        assert ran == [] and seen_by_other == [False]
        assert has_waiting_tasks()
    assert ran == [threading.current_thread().name]
