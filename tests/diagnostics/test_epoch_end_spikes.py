"""LD108 reads spikes that sit on the last step of an epoch as the last, partial batch (field notes #11:
spikes once per epoch; `drop_last=True`), not as bad data: a note, not the spiky symptom. Spikes of bad
batches land anywhere in the epoch and stay a symptom. Real runs of the tuning sets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
from diag_helpers import SAMPLE_LOGS, make_log

from diagnostics import diagnose, fitted
from diagnostics.features import epoch_last_steps
from parsers import load_paths


def rows(steps: list[int], epochs: list[float]) -> pd.DataFrame:
    return pd.DataFrame({"step": steps, "epoch": epochs, "value": np.ones(len(steps))})


def test_whole_epochs_end_before_the_epoch_number_grows():
    """`epoch 9 step 90` then `epoch 10 step 91`: step 90 ends epoch 9."""
    found = epoch_last_steps(rows([88, 89, 90, 91, 92, 100, 101], [9, 9, 9, 10, 10, 10, 11]))
    assert found.tolist() == [90, 100]


def test_fractional_epochs_end_where_the_epoch_is_whole():
    """The HF Trainer logs epoch 1.0 at the last step of the first epoch and 1.0229 after it."""
    found = epoch_last_steps(
        rows([42, 43, 44, 45, 87, 88, 89], [0.9771, 1.0, 1.0229, 1.0457, 1.9771, 2.0, 2.0229])
    )
    assert found.tolist() == [43, 88]


def test_no_epoch_ends_without_epochs_or_when_the_epoch_goes_back():
    assert epoch_last_steps(rows([1, 2, 3], [np.nan, np.nan, np.nan])).tolist() == []
    assert epoch_last_steps(rows([10, 11, 5, 6], [2, 2, 1, 1])).tolist() == []  # a resumed run
    assert epoch_last_steps(rows([1], [1])).tolist() == []


def load(name: str):
    return load_paths(sorted((SAMPLE_LOGS / "corpus_extra" / "runs" / name).iterdir()))


def test_spikes_on_the_last_batch_of_epochs_are_a_note_not_a_fault():
    """A frozen-backbone fine-tune on 300 samples in batches of 32: the last batch of each epoch holds
    12, and two of the run's three spikes are those batches (steps 120 and 150 of 10-step epochs). They
    lift the loss by a tenth of its start, under the fitted `spike_min_height` (which leaves one spike and
    no symptom), so the height that counts them is set here."""
    log = load("cnn_121_healthy_finetune_frozen")
    low = dataclasses.replace(fitted.PARAMS, spike_min_height=0.1)
    assert diagnose(log).symptom.symptom == "healthy"
    d = diagnose(log, params=low)
    assert d.symptom.symptom == "healthy" and d.causes == []
    note = next(f for f in d.findings if f.rule == "LD108")
    assert note.severity == "info"
    at_end = next(e for e in note.evidence if e.key == "evidence.spikes_at_epoch_end")
    assert at_end.params == {"at_end": 2, "count": 3}
    # the control: without the epoch-end reading, the same three spikes are the spiky symptom
    never = dataclasses.replace(low, ld108_epoch_end_share=1.01)
    assert diagnose(log, params=never).symptom.symptom == "spiky"


@pytest.mark.parametrize("name", ["cnn_187_garbage_every37", "fcn_148_garbage_every37"])
def test_spikes_of_bad_batches_inside_epochs_stay_spiky(name):
    """Garbage batches every 37 steps fall anywhere in the epoch: at most one of their spikes on an
    epoch's last step."""
    d = diagnose(load(name))
    assert d.symptom.symptom == "spiky"
    finding = next(f for f in d.findings if f.rule == "LD108")
    assert all(e.key != "evidence.spikes_at_epoch_end" for e in finding.evidence)


def spiky_log(spike_steps: list[int], epoch_of_step) -> object:
    """600 steps of a decaying minibatch loss, 20 steps an epoch, with tall one-step spikes."""
    rng = np.random.default_rng(3)
    steps = np.arange(1, 601)
    loss = 2.3 * np.exp(-steps / 120) + 0.3 + 0.02 * rng.standard_normal(len(steps))
    loss[np.isin(steps, spike_steps)] += 2.0
    log = make_log(loss, steps=steps)
    log.metrics["epoch"] = epoch_of_step(log.metrics["step"].to_numpy()).astype(float)
    return log


def by_epoch(steps: np.ndarray) -> np.ndarray:
    return (steps - 1) // 20 + 1  # steps 1-20 are epoch 1, 21-40 epoch 2, ...


def test_where_the_spikes_fall_in_the_epoch_decides():
    at_ends = diagnose(spiky_log([200, 300, 400, 500], by_epoch))
    note = next(f for f in at_ends.findings if f.rule == "LD108")
    assert at_ends.symptom.symptom != "spiky" and note.severity == "info"
    assert {"at_end": 4, "count": 4} in [e.params for e in note.evidence]
    inside = diagnose(spiky_log([210, 310, 410, 510], by_epoch))
    assert inside.symptom.symptom == "spiky"


def test_a_log_where_every_step_ends_an_epoch_excuses_nothing():
    """One row per epoch (the epoch is the step): every spike is on an epoch's last row, by construction."""
    d = diagnose(spiky_log([200, 300, 400, 500], lambda steps: steps))
    assert d.symptom.symptom == "spiky"
