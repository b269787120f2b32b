"""LD108 counts a spike only when it moves the loss by a share of the level it trains on
(`spike_min_height`): near zero, a robust z and a ratio over the rolling median grow without bound, so
minibatch noise late in a run looked like spikes. Real runs of the corpus's training split."""

from __future__ import annotations

import dataclasses

import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, fitted
from diagnostics.context import Context
from diagnostics.features import spikes
from parsers import load_paths

RUNS = SAMPLE_LOGS / "corpus" / "runs"


def load(name: str):
    return load_paths(sorted((RUNS / name).iterdir()))


def found_spikes(log, **change) -> list[tuple[int, float, float]]:
    """LD108's spikes of the run's training loss under the fitted params (with `change`), after the
    start it does not search."""
    ctx = Context(log, dataclasses.replace(fitted.PARAMS, **change))
    curve = ctx.train_loss_raw or ctx.train_loss
    assert curve is not None
    skip = int(ctx.params.spike_skip_start * len(curve))
    return [s for s in spikes(curve) if s[0] >= skip]


@pytest.mark.parametrize("name", ["mlp_030_tiny_data_60", "resnet_038_tiny_data_60"])
def test_noise_near_zero_is_not_spikes(name):
    """Losses of ~0.01 with batches at 0.05: tall in robust z, a few % of the starting level."""
    log = load(name)
    level = (Context(log, fitted.PARAMS).train_loss_raw or Context(log, fitted.PARAMS).train_loss).start_level
    noise = found_spikes(log, spike_min_height=0.0)
    assert noise and all(value - base < 0.06 * level for _, value, base in noise)
    assert not found_spikes(log)
    assert diagnose(log).symptom.symptom != "spiky"


@pytest.mark.parametrize(
    "name",
    [
        "resnet_056_mislabel_every11",
        "charlm_017_mislabel_every17",
        "caffe_mlp_016_corrupt_lmdb_32_black_frames",
    ],
)
def test_spikes_of_bad_data_are_material(name):
    """Mislabelled batches and black frames lift the loss by a third of its start or more."""
    log = load(name)
    assert fitted.PARAMS.spike_min_height > 0 and len(found_spikes(log)) >= fitted.PARAMS.spike_min_count
    assert any(f.rule == "LD108" and f.severity == "warning" for f in diagnose(log).findings)


EXTRA = SAMPLE_LOGS / "corpus_extra" / "runs"


@pytest.mark.parametrize(
    ("name", "symptom"),
    [
        ("resnet_122_garbage_every11", "eval_gap"),  # TensorBoard
        # HF; its pixel accuracy never moved (0.6033 at 5 evaluations): a stall, and the spikes lead
        ("fcn_148_garbage_every37", "spiky"),
    ],
)
def test_periodic_spikes_name_bad_data_first_under_an_eval_gap(name, symptom):
    """Broken batches every k steps (LD108's period) also open an eval gap; the gap's usual suspects
    (BatchNorm statistics, memorisation) come after the data that explains both readings."""
    log = load_paths(sorted((EXTRA / name).iterdir()))
    d = diagnose(log)
    assert d.symptom.symptom == symptom
    assert any(f.rule == "LD107" for f in d.findings)  # the gap is read either way
    assert next(f for f in d.findings if f.rule == "LD108").measurements["periodic_spikes"] == 1.0
    assert d.causes[0].id == "data_issue"
    # control: with LD108 unable to find spikes, the same run does not put the data first
    blind = diagnose(log, dataclasses.replace(fitted.PARAMS, spike_min_height=100.0))
    assert not any(f.rule == "LD108" for f in blind.findings)
    assert blind.causes[0].id != "data_issue"
