"""The fitted numbers: `fitted_params.json`, written by `python -m diagnostics.fit` from the corpus's
training split and committed. `PARAMS` are the `Params` defaults with the fitted thresholds and cause
weights put in; `CALIBRATION` maps raw scores to calibrated confidence. Without the file (or for a
field it does not name) the hand-set defaults of `Params` apply. The one number an operator may set is
the confidence floor under which a verdict is shown as uncertain (`calibration()`): how sure a verdict
must be before it is shown as one word is a policy, not a fact about the corpus."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

from diagnostics.calibration import IDENTITY, Calibration
from diagnostics.params import DEFAULT_PARAMS, Params

FITTED_FILE = Path(__file__).with_name("fitted_params.json")
UNCERTAIN_BELOW_ENV = "LOSS_DOCTOR_UNCERTAIN_BELOW"


def load(path: Path = FITTED_FILE) -> tuple[Params, Calibration, dict]:
    """(params, calibration, the fit's record) from a fitted-params file."""
    if not path.exists():
        return DEFAULT_PARAMS, IDENTITY, {}
    data = json.loads(path.read_text(encoding="utf-8"))
    known = {f.name for f in dataclasses.fields(Params)}
    overrides = {k: v for k, v in data.get("params", {}).items() if k in known}
    calibration = Calibration.from_dict(data["calibration"]) if "calibration" in data else IDENTITY
    return dataclasses.replace(DEFAULT_PARAMS, **overrides), calibration, data.get("fit", {})


PARAMS, CALIBRATION, FIT_RECORD = load()


def calibration() -> Calibration:
    """The fitted calibration, with the operator's floor from LOSS_DOCTOR_UNCERTAIN_BELOW (a probability
    strictly between 0 and 1; unset or empty: the fitted floor). Read at use, like the page's budgets; a
    value that is set but out of range raises, naming the variable: a typo must not hide the floor."""
    raw = os.environ.get(UNCERTAIN_BELOW_ENV, "").strip()
    if not raw:
        return CALIBRATION
    try:
        floor = float(raw)
    except ValueError:
        floor = float("nan")
    if not 0 < floor < 1:
        raise ValueError(f"{UNCERTAIN_BELOW_ENV}={raw!r}: expected a probability between 0 and 1")
    return dataclasses.replace(CALIBRATION, uncertain_below=floor)
