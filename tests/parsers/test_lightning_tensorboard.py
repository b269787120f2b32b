"""A real PyTorch Lightning run (`tests/fixtures/lightning/`, pytorch-lightning 2.6.6) whose first layer
is frozen with random weights: its TensorBoard event file alone states the arguments in its hparams
record (booleans as 0/1) and gets the diagnosis its CSV logger's folder gets with `hparams.yaml`."""

from __future__ import annotations

from pathlib import Path

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


def test_the_event_file_alone_names_the_frozen_random_layers():
    alone = diagnose(load_paths([LIGHTNING / "tb" / "events.out.tfevents.lightning"]))
    with_yaml = diagnose(load_paths([LIGHTNING / "csv"]))
    curves_only = diagnose(load_paths([LIGHTNING / "csv" / "metrics.csv"]))
    assert curves_only.healthy and "LD310" in curves_only.unchecked  # the curves cannot show it
    assert alone.symptom.symptom == with_yaml.symptom.symptom != "healthy"
    assert [c.id for c in alone.causes][:1] == [c.id for c in with_yaml.causes][:1] == ["no_pretraining"]
    assert "LD310" not in alone.unchecked
