"""The runner: requirements -> not applicable, a raising rule -> Diagnosis.errors, JSON shape, speed."""

import json

import numpy as np
from diag_helpers import decaying, make_log

from diagnostics import diagnose
from diagnostics.model import CAUSES, SYMPTOMS
from diagnostics.registry import RULES, Rule


def test_rules_without_their_data_are_not_applicable():
    d = diagnose(make_log(decaying(500, 2.3, 0.4, 100, 0.02)))
    assert {"LD107", "LD301", "LD304"} <= set(d.not_applicable)  # LD106 also reads accuracy or mAP
    assert "LD101" not in d.not_applicable


def test_a_failing_rule_is_isolated(monkeypatch):
    def broken(ctx):
        raise RuntimeError("boom")

    original = RULES["LD105"]
    monkeypatch.setitem(RULES, "LD105", Rule(**{**original.__dict__, "check": broken}))
    loss = np.r_[decaying(300, 6.9, 5.0, 100, 0.02), np.full(300, np.nan)]
    d = diagnose(make_log(loss))
    assert d.errors == [("LD105", "RuntimeError: boom")]
    assert d.symptom.symptom == "nan"


def test_json_is_strict_and_has_the_interface_fields():
    loss = np.r_[decaying(300, 2.3, 1.0, 100, 0.02), np.linspace(1, 9, 100), np.full(100, np.inf)]
    out = diagnose(make_log(loss)).to_json("zh")
    text = json.dumps(out, allow_nan=False, ensure_ascii=False)
    assert json.loads(text)["symptom"] in SYMPTOMS
    assert isinstance(out["onset_step"], int) and 0 <= out["confidence"] <= 1
    assert out["causes"] and all(c["id"] in CAUSES for c in out["causes"])
    assert [c["confidence"] for c in out["causes"]] == sorted(
        (c["confidence"] for c in out["causes"]), reverse=True
    )
    for c in out["causes"]:
        assert isinstance(c["evidence"], list) and isinstance(c["fixes"], list)
    for f in out["findings"]:
        assert {"rule", "title", "severity", "step", "evidence"} <= set(f)


def test_one_million_points_are_diagnosed_whole():
    """A million points go through every curve rule (their speed is `bench/diagnose_bench.py`'s)."""
    n = 1_000_000
    d = diagnose(make_log(decaying(n, 2.3, 0.3, n / 5, 0.1)))
    assert d.symptom.symptom in SYMPTOMS and not d.errors
    assert not {"LD102", "LD103", "LD104", "LD105", "LD108"} & set(d.not_applicable)


def test_curve_points_keep_the_file_they_came_from():
    """Evidence quotes name the file of each point, also in a run merged from several files."""
    from diagnostics.features import Curve
    from diagnostics.params import DEFAULT_PARAMS
    from parsers.model import frame_from_columns

    sources = ["b.log", "a.log", "a.log", "b.log"]
    frame = frame_from_columns(
        {
            "step": [0, 1, 2, 3],
            "split": ["train"] * 4,
            "metric": ["loss"] * 4,
            "value": [1.0] * 4,
            "source": sources,
        }
    )
    assert Curve.from_rows(frame, "train/loss", DEFAULT_PARAMS).sources.tolist() == sources
