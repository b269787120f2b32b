"""The fitted numbers: `fitted_params.json`, written by `python -m diagnostics.fit` from the corpus's
training split and committed. `PARAMS` are the `Params` defaults with the fitted thresholds and cause
weights put in; `CALIBRATION` maps raw scores to calibrated confidence. Without the file (or for a
field it does not name) the hand-set defaults of `Params` apply."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from diagnostics.calibration import IDENTITY, Calibration
from diagnostics.params import DEFAULT_PARAMS, Params

FITTED_FILE = Path(__file__).with_name("fitted_params.json")


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
