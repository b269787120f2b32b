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


def test_folder_of_2000_junk_files_gives_a_short_summary_not_megabytes(tmp_path):
    for i in range(2000):
        (tmp_path / f"junk{i:04d}.txt").write_bytes(b"not a training log %d\n" % i * 5)
    result = _run(str(tmp_path))
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert "2000 files could not be read" in lines[0]
    assert lines[1].startswith("junk0000.txt: no training metrics recognised") and len(lines) == 22
    assert lines[-1] == "... and 1980 more file(s) that could not be read"
    assert len(result.stderr) < 5000  # was 839 KB of errors


def test_input_that_crashed_a_parser_is_read_without_a_traceback(tmp_path):
    # a mutated JSON-lines log (a 31-digit step) was an OverflowError traceback with exit code 1
    log = tmp_path / "log.jsonl"
    log.write_bytes(b"".join(b'{"step": %d, "loss": %.3f}\n' % (s, 2 / (s + 1)) for s in range(0, 400, 10)))
    log.write_bytes(log.read_bytes() + b'{"step": 1000000000000000000000000000000, "loss": 0.1}\n')
    result = _run(str(log), "--json")
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr
    assert json.loads(result.stdout)["parsed"]["warnings"] == 1


def test_unexpected_error_while_reading_exits_2_with_one_line(monkeypatch, capsys):
    def broken(paths):
        raise OverflowError("int too large to convert to float")

    monkeypatch.setattr(cli, "load_paths", broken)
    assert cli.main(["run.log"]) == 2
    err = capsys.readouterr().err
    assert err == "Cannot read the input: OverflowError: int too large to convert to float\n"
