"""End to end on sample_logs/ (real PyTorch/Caffe-format runs with labels.csv), skipped until they land:
the four DEVELOPERS cases with the right symptom, top cause and fix numbers, and the evaluation."""

import csv

import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, evaluate
from parsers import load_paths

LABELS = SAMPLE_LOGS / "labels.csv"
pytestmark = pytest.mark.skipif(not LABELS.exists(), reason="sample_logs/labels.csv not there yet")


def _rows() -> list[dict]:
    if not LABELS.exists():
        return []
    with LABELS.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _case_rows() -> list[dict]:
    return [r for r in _rows() if (r.get("case") or "").strip()]


def _path(row):
    return next(p for p in (SAMPLE_LOGS / row["path"], SAMPLE_LOGS.parent / row["path"]) if p.exists())


@pytest.mark.parametrize("row", _case_rows(), ids=lambda r: f"case{r['case']}:{r['path']}")
def test_developers_cases(row):
    d = diagnose(load_paths([_path(row)]))
    assert d.symptom.symptom == row["symptom"]
    if row["cause"]:
        accepted = row["cause"].replace("|", ";").split(";")
        assert d.causes and d.causes[0].id in accepted, [c.id for c in d.causes]
        assert d.causes[0].fixes, "a cause without a fix"


def test_case3_fix_keeps_the_runs_lr():
    rows = [r for r in _case_rows() if r["case"].strip() == "3"]
    if not rows:
        pytest.skip("no case 3 sample")
    log = load_paths([_path(rows[0])])
    d = diagnose(log)
    texts = " ".join(f.text() + " " + (f.snippet or "") for c in d.causes[:1] for f in c.fixes)
    assert f"{log.meta.base_lr:g}" in texts


def test_evaluation_meets_the_targets():
    _, scores = evaluate.run(LABELS)
    print(evaluate.render(scores))
    assert scores.unreadable == 0
    assert scores.symptom_accuracy >= 0.9
    assert scores.cause_top1 >= 0.8 and scores.cause_top2 >= 0.9
    assert scores.false_alarm_rate <= 0.05
