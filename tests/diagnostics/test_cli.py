"""`python -m diagnostics`: exit codes 0/1/2, the JSON interface other tools read, both languages."""

import json
import subprocess
import sys

import numpy as np
import pytest
from diag_helpers import REPO, decaying, make_log

import diagnostics.__main__ as cli
from diagnostics.model import CAUSES, SYMPTOMS


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "diagnostics", *args], cwd=REPO, capture_output=True, text=True
    )


def test_unreadable_input_exits_2_with_a_message_and_no_traceback(tmp_path):
    empty = tmp_path / "empty.log"
    empty.write_bytes(b"")
    for path in (empty, tmp_path / "missing.log"):
        result = _run(str(path))
        assert result.returncode == 2
        assert "Cannot read the input" in result.stderr and "Traceback" not in result.stderr
        assert result.stdout == ""


@pytest.fixture
def fake_load(monkeypatch):
    def use(log):
        monkeypatch.setattr(cli, "load_paths", lambda paths: log)

    return use


def test_healthy_run_exits_0(fake_load, capsys):
    fake_load(make_log(decaying(2000, 2.3, 0.3, 300, 0.05)))
    assert cli.main(["run.log"]) == 0
    out = capsys.readouterr().out
    assert "Verdict: Healthy" in out and "train/loss: 2000 points" in out


def test_problem_exits_1_and_json_has_the_interface(fake_load, capsys):
    loss = np.r_[decaying(300, 2.3, 1.0, 100, 0.02), np.linspace(1, 9, 100), np.full(100, np.nan)]
    fake_load(make_log(loss))
    assert cli.main(["run.log", "--json"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert isinstance(out["format"], str) and out["symptom"] in SYMPTOMS and out["symptom"] == "nan"
    assert out["onset_step"] == 400 * 20 and 0 <= out["confidence"] <= 1
    assert out["causes"][0]["id"] in CAUSES
    assert {"id", "confidence", "evidence", "fixes"} <= set(out["causes"][0])
    assert all({"rule", "title", "severity", "step", "evidence"} <= set(f) for f in out["findings"])
    assert out["parsed"]["curves"][0] == {
        "split": "train", "metric": "loss", "points": 500, "first_step": 0, "last_step": 499 * 20,
    }  # fmt: skip


def test_chinese_report(fake_load, capsys):
    fake_load(make_log(np.r_[decaying(300, 2.3, 1.0, 100, 0.02), np.full(100, np.nan)]))
    assert cli.main(["run.log", "--lang", "zh"]) == 1
    out = capsys.readouterr().out
    assert "诊断结论" in out and "可能原因" in out
