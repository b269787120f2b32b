"""The committed corpus closed loop (sample_logs/corpus/closed_loop.csv, issue 10 part 2) was re-trained
with the fixes the current code offers: a change to a diagnosis or a fix that was not re-trained since
fails here (re-run `sample_logs/corpus_closed_loop.py`)."""

from __future__ import annotations

import csv
import json
import sys

import pytest
from diag_helpers import REPO

sys.path.insert(0, str(REPO / "sample_logs"))
import corpus_closed_loop

RESULTS = corpus_closed_loop.RESULTS


def _rows() -> list[dict[str, str]]:
    with RESULTS.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_every_config_cause_has_five_runs_and_every_offered_fix_was_judged():
    rows = _rows()
    runs = list(dict.fromkeys(r["run"] for r in rows))
    assert [r["path"] for r in corpus_closed_loop.selected_runs()] == runs
    for cause in corpus_closed_loop.config_causes():
        mine = {r["run"] for r in rows if r["label_cause"].split(";")[0] == cause}
        assert len(mine) == corpus_closed_loop.PER_CAUSE, (cause, mine)
    for r in rows:
        assert r["after"], r["row"]
        assert r["after"] != "not re-trained" or r["why"], r["row"]


@pytest.mark.parametrize("run", sorted({r["run"] for r in _rows()}))
def test_the_committed_fix_is_the_one_the_code_offers_now(run):
    mine = {r["source"]: r for r in _rows() if r["run"] == run}
    symptom, cause, fix, params = corpus_closed_loop.first_fix(run)
    diagnosed = mine["diagnosis"]
    assert (diagnosed["diagnosed_symptom"], diagnosed["diagnosed_cause"]) == (symptom, cause)
    assert diagnosed["fix"] == fix
    if fix:
        assert json.loads(diagnosed["fix_params"]) == params
    label = corpus_closed_loop.label_fix(run, diagnosed["label_cause"].split(";")[0])
    if label[0] != fix:
        assert (mine["label"]["fix"], json.loads(mine["label"]["fix_params"])) == label
    else:
        assert "label" not in mine
