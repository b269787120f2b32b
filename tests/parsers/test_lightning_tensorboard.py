"""A real PyTorch Lightning run (`tests/fixtures/lightning/`, pytorch-lightning 2.6.6) whose first layer
is frozen with random weights: its TensorBoard event file alone states the arguments in its hparams
record (booleans as 0/1) and gets the diagnosis its CSV logger's folder gets with `hparams.yaml`; its
console log (tqdm's bar) gives the CSV logger's curve."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from diagnostics import diagnose
from parsers import load_paths

LIGHTNING = Path(__file__).resolve().parents[1] / "fixtures" / "lightning"


def test_the_event_file_alone_states_the_arguments_hparams_yaml_states():
    events = load_paths([LIGHTNING / "tb" / "events.out.tfevents.lightning"]).meta
    yaml = load_paths([LIGHTNING / "csv"]).meta
    for fact in ("base_lr", "batch_size", "pretrained"):
        assert getattr(events, fact) == getattr(yaml, fact) is not None, fact
    assert events.pretrained is False and events.where["pretrained"].text == "pretrained: 0"
    assert [f.how for f in events.frozen_layers] == [f.how for f in yaml.frozen_layers] == ["flag"]
    curves = load_paths([LIGHTNING / "tb" / "events.out.tfevents.lightning"])
    assert curves.meta.framework == "pytorch" and "hp_metric" not in set(curves.metrics["metric"])


def test_the_event_file_alone_names_the_frozen_random_layers():
    alone = diagnose(load_paths([LIGHTNING / "tb" / "events.out.tfevents.lightning"]))
    with_yaml = diagnose(load_paths([LIGHTNING / "csv"]))
    curves_only = diagnose(load_paths([LIGHTNING / "csv" / "metrics.csv"]))
    assert curves_only.healthy and "LD310" in curves_only.unchecked  # the curves cannot show it
    assert alone.symptom.symptom == with_yaml.symptom.symptom != "healthy"
    assert [c.id for c in alone.causes][:1] == [c.id for c in with_yaml.causes][:1] == ["no_pretraining"]
    assert "LD310" not in alone.unchecked


def test_the_console_progress_bar_gives_the_csv_loggers_curve():
    """tqdm's bar (`Epoch 3: 40%|████ | 20/50 [..., train_loss=0.421, val_loss=0.460]`) is redrawn with
    the previous step's values before the new ones, again at count 0 under the old epoch's name, and
    carries val_loss to every later step: read as one point per step (the CSV logger's value at the
    step before, printed to 3 digits), one segment, and one val point per validation."""
    console = load_paths([LIGHTNING / "console.log"]).metrics
    csv = pd.read_csv(LIGHTNING / "csv" / "metrics.csv")
    train = console[(console["split"] == "train") & (console["metric"] == "loss")].set_index("step")["value"]
    assert train.index.is_unique and (console["segment"] == 0).all() and len(train) == 8 * 50
    logged = csv.dropna(subset=["train_loss"])
    assert np.allclose(train.loc[logged["step"] + 1], logged["train_loss"], rtol=5e-3)
    val = console[(console["split"] == "val") & (console["metric"] == "loss")]
    expected = csv.dropna(subset=["val_loss"])
    assert val["step"].tolist() == (expected["step"] + 1).tolist()
    assert np.allclose(val["value"], expected["val_loss"], rtol=5e-3)
    assert "v_num" not in set(console["metric"])  # the logger's version, shown in the bar
