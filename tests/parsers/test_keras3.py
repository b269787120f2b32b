"""Real Keras 3 output (`tests/fixtures/keras3/`, written by keras 3.15.1 on the torch backend): the
console output of `fit` redirected to a file, with its backspaces, colour codes and the full bar printed
before and after validation, gives every epoch of the run's `CSVLogger` file, as `verbose=2` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from parsers import load, load_paths

KERAS3 = Path(__file__).resolve().parents[1] / "fixtures" / "keras3"


def _curves(path: Path) -> dict[tuple[str, str], np.ndarray]:
    log = load_paths([path])
    assert not log.warnings
    frame = log.metrics
    return {
        key: group["value"].to_numpy() for key, group in frame.groupby(["split", "metric"], observed=True)
    }


@pytest.mark.parametrize(
    ("run", "printed"),
    [("sgd_lr0.05", "fit.log"), ("sgd_lr0.05", "fit_verbose2.log"), ("sgd_lr5", "fit.log")],
)
def test_the_printed_epochs_are_the_csv_loggers(run, printed):
    shown, saved = _curves(KERAS3 / run / printed), _curves(KERAS3 / run / "training.csv")
    assert set(shown) == set(saved) == {(s, m) for s in ("train", "val") for m in ("loss", "accuracy")}
    for key, values in saved.items():
        assert len(shown[key]) == len(values) == 10
        assert np.allclose(shown[key], values, atol=5e-5, rtol=0)  # printed to 4 decimals


def test_the_console_log_is_text_not_binary():
    log = load_paths([KERAS3 / "sgd_lr0.05" / "fit.log"])
    assert log.meta.format == "keras_stdout" and log.meta.epochs == 10
    assert log.metrics["wall_time"].notna().all()  # `1s 6ms/step`: the epoch's seconds are read


def test_an_epoch_line_printed_twice_is_one_epoch():
    lines = (KERAS3 / "sgd_lr0.05" / "fit_verbose2.log").read_text(encoding="utf-8").splitlines(keepends=True)
    first = next(n for n, line in enumerate(lines) if "val_loss" in line)
    doubled = "".join([*lines[: first + 1], lines[first], *lines[first + 1 :]])
    log = load([("fit.log", doubled.encode())])
    assert not log.warnings and len(log.series("loss")) == 10
