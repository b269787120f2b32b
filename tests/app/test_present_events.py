"""Events on the page: markers on the loss panel with the log line escaped in the hover, the localised
table, and the CLI's JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

from parsers import load
from parsers.events import events_frame
from present import events
from present.figures import RunView, build_figure

REPO = Path(__file__).resolve().parents[2]
HOSTILE = "<img src=x onerror=alert(1)> **bold** %{x}"
LOG = (
    "step=1 loss=2.0\n"
    "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768\n"
    "step=2 loss=1.9\n"
    f"saving checkpoint at iteration 2 to /ckpt {HOSTILE}\n"
    "step=3 loss=1.8\n"
)


def _log():
    return load([("train.log", LOG.encode())])


def test_markers_sit_on_the_loss_curve_one_trace_per_kind_and_escape_the_log_line():
    fig = build_figure([RunView("run", _log())])
    markers = {
        trace.name: trace
        for trace in fig.data
        if trace.legendgroup and trace.legendgroup.startswith("event-")
    }
    assert set(markers) == {"overflow, step skipped", "checkpoint saved"}
    overflow, save = markers["overflow, step skipped"], markers["checkpoint saved"]
    assert list(overflow.x) == [2.0] and list(overflow.y) == [1.9]  # placed at the next record's step
    assert list(save.x) == [2.0]  # the line names its iteration
    assert "<img" not in save.text[0] and "&lt;img src=x onerror=alert(1)&gt;" in save.text[0]


def test_no_markers_when_comparing_runs_or_without_events():
    quiet = load([("a.log", b"step=1 loss=2.0\nstep=2 loss=1.0\n")])
    for runs in ([RunView("a", quiet)], [RunView("a", _log()), RunView("b", quiet)]):
        fig = build_figure(runs)
        assert not [trace for trace in fig.data if (trace.legendgroup or "").startswith("event-")]


def test_table_is_localised_and_keeps_the_detail_as_text():
    log = _log()
    table = events.table(log, "zh")
    assert list(table.columns) == ["步", "事件", "数值", "日志行", "行号", "文件"]
    assert table["事件"].tolist() == ["梯度溢出，跳过该步", "保存检查点"]
    assert table["日志行"].iloc[1].endswith(HOSTILE)
    assert events.summary(log, "en") == "2 events: 1 × overflow, step skipped, 1 × checkpoint saved"


def test_table_is_capped():
    log = _log()
    log.events = events_frame([(i, "skipped", 1.0, "x", i, "f") for i in range(3)])
    assert len(events.table(log, "en", limit=2)) == 2


def test_cli_json_lists_the_events(tmp_path):
    path = tmp_path / "train.log"
    path.write_text(LOG)
    result = subprocess.run(
        [sys.executable, "-m", "diagnostics", str(path), "--json"], cwd=REPO, capture_output=True, text=True
    )
    report = json.loads(result.stdout)
    assert report["events_total"] == 2
    first = report["events"][0]
    assert first == {
        "step": 2,
        "kind": "overflow",
        "value": 32768.0,
        "detail": "[deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 65536, reducing to 32768",
        "line": 2,
        "source": "train.log",
    }
    assert not any(isinstance(v, float) and math.isnan(v) for v in first.values())
