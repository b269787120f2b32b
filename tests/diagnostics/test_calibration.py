"""Platt scaling, the reliability table and the Brier score; the uncertain verdict in CLI and JSON."""

from pathlib import Path

import numpy as np
import pytest

from diagnostics import diagnose, fitted
from diagnostics.__main__ import main as cli_main
from diagnostics.calibration import Calibration, Platt, brier, reliability
from diagnostics.fitted import CALIBRATION, UNCERTAIN_BELOW_ENV
from diagnostics.model import Diagnosis, SymptomResult
from parsers import load
from parsers.source import SourceFile


def test_platt_fit_recovers_an_overconfident_score():
    rng = np.random.default_rng(0)
    raw = rng.uniform(0.55, 0.99, 4000)
    truth = Platt(0.5, -0.4)  # the rules say 90% where only ~70% are right
    right = rng.uniform(size=raw.size) < np.array([truth(r) for r in raw])
    fitted = Platt.fit(raw, right, ridge=0.01)
    assert abs(fitted.a - 0.5) < 0.15 and abs(fitted.b + 0.4) < 0.15
    calibrated = np.array([fitted(r) for r in raw])
    assert brier(calibrated, right) < brier(raw, right)


def test_platt_without_data_is_the_identity():
    assert Platt.fit(np.array([]), np.array([])) == Platt()
    assert abs(Platt()(0.8) - 0.8) < 1e-9


def test_reliability_rows_count_every_verdict():
    conf = np.array([0.55, 0.58, 0.95, 0.97, 0.3])
    right = np.array([1, 0, 1, 1, 0])
    rows = reliability(conf, right)
    assert sum(r[2] for r in rows) == 5
    (high,) = [r for r in rows if r[0] == 0.9]
    assert high[2] == 2 and high[4] == 1.0
    assert brier(np.array([1.0, 0.0]), np.array([1, 0])) == 0.0


def test_calibration_round_trips_through_its_dict():
    c = Calibration(Platt(0.7, 0.1), Platt(1.2, -0.3), Platt(0.9, 0.0), 0.45)
    assert Calibration.from_dict(c.to_dict()) == c


def _uncertain():
    verdict = SymptomResult("spiky", 0.41, 120, "train/loss", "LD108")
    runner = SymptomResult("healthy", 0.59, None, "train/loss", None)
    return Diagnosis("print_style", "pytorch", verdict, uncertain=True, runner_up=runner)


def test_uncertain_verdict_names_both_readings(tmp_path):
    d = _uncertain()
    assert d.uncertain_text("en", "cli") == "Uncertain: Loss spikes (41%) or Healthy (59%)"
    assert "不确定" in d.uncertain_text("zh", "ui")
    payload = d.to_json()
    assert payload["uncertain"] is True
    assert [r["symptom"] for r in payload["readings"]] == ["spiky", "healthy"]


SAMPLE = Path(__file__).resolve().parents[2] / "sample_logs" / "caffe_lenet_step_healthy.log"


def test_operator_floor_makes_a_verdict_under_it_uncertain(monkeypatch, capsys):
    """LOSS_DOCTOR_UNCERTAIN_BELOW replaces the fitted floor in the library and so in the CLI."""
    monkeypatch.delenv(UNCERTAIN_BELOW_ENV, raising=False)
    log = load([SourceFile.from_path(SAMPLE)])
    fitted_reading = diagnose(log)
    assert fitted.calibration() == fitted.CALIBRATION
    assert fitted_reading.symptom.confidence < 0.99
    assert fitted_reading.uncertain is (fitted_reading.symptom.confidence < CALIBRATION.uncertain_below)
    monkeypatch.setenv(UNCERTAIN_BELOW_ENV, "0.99")
    cautious = diagnose(log)
    assert cautious.uncertain and cautious.symptom == fitted_reading.symptom
    assert cli_main([str(SAMPLE)]) == 0
    assert "== Uncertain: " in capsys.readouterr().out
    monkeypatch.setenv(UNCERTAIN_BELOW_ENV, "0.01")
    assert not diagnose(log).uncertain


@pytest.mark.parametrize("bad", ["0", "1", "1.5", "-0.2", "nan", "sixty"])
def test_operator_floor_out_of_range_is_refused_naming_the_variable(monkeypatch, bad):
    monkeypatch.setenv(UNCERTAIN_BELOW_ENV, bad)
    with pytest.raises(ValueError, match=UNCERTAIN_BELOW_ENV):
        fitted.calibration()
