"""LD108 counts a spike only when it moves the loss by a share of the level it trains on
(`spike_min_height`): near zero, a robust z and a ratio over the rolling median grow without bound, so
minibatch noise late in a run looked like spikes. Spikes on a beat (the same bad data met on every pass)
are periodic despite a stray or a period between logged steps, and lead over the readings they cause;
a spike the loss learned past is no explosion (LD102). Real runs of the tuning sets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, fitted
from diagnostics.context import Context
from diagnostics.features import material, searched_excursions, spikes_are_noise
from diagnostics.rules.shape import episodes_on_beat
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
    return material(searched_excursions(curve), curve)


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
    "name",
    [
        "resnet_122_garbage_every11",  # TensorBoard
        # HF; its pixel accuracy never moved (0.6033 at 5 evaluations): a stall, and the spikes lead
        "fcn_148_garbage_every37",
    ],
)
def test_periodic_spikes_name_bad_data_first_under_an_eval_gap(name):
    """Broken batches every k steps (LD108's period) also open an eval gap; the spikes are the verdict
    and the gap's usual suspects (BatchNorm statistics, memorisation) come after the data that explains
    both readings."""
    log = load_paths(sorted((EXTRA / name).iterdir()))
    d = diagnose(log)
    assert d.symptom.symptom == "spiky"
    assert any(f.rule == "LD107" for f in d.findings)  # the gap is read either way
    assert next(f for f in d.findings if f.rule == "LD108").measurements["periodic_spikes"] == 1.0
    assert d.causes[0].id == "data_issue"
    # control: with LD108 unable to find spikes, the same run does not put the data first
    blind = diagnose(log, dataclasses.replace(fitted.PARAMS, spike_min_height=100.0))
    assert not any(f.rule == "LD108" for f in blind.findings)
    assert blind.causes[0].id != "data_issue"


@pytest.mark.parametrize("name", ["resnet_122_garbage_every11", "resnet_164_garbage_every11"])
def test_periodic_spikes_lead_over_the_eval_gap_they_explain(name):
    """Garbage batches every 11 steps wreck BatchNorm's running statistics and the validation loss
    jumps ~10x: the gap is a consequence, the spikes are the reading; with the precedence off
    (`periodic_spikes_over_eval` 1.0, above any LD108 confidence) the evaluation's reading is the
    verdict (an eval gap, or overfitting since the validation loss first came down: LD106's
    `ld106_learned_fall`)."""
    log = load_paths(sorted((EXTRA / name).iterdir()))
    assert diagnose(log).symptom.symptom == "spiky"
    off = diagnose(log, dataclasses.replace(fitted.PARAMS, periodic_spikes_over_eval=1.0))
    assert off.symptom.symptom in ("eval_gap", "overfitting")
    assert any(s.symptom == "spiky" for s in off.secondary)


def assert_spikes_on_a_beat(log, period: int, params=None) -> None:
    """LD108 finds the spikes periodic with this period, and the verdict names the bad data."""
    d = diagnose(log, params)
    ld108 = next(f for f in d.findings if f.rule == "LD108")
    assert ld108.measurements["periodic_spikes"] == 1.0
    assert any(e.params.get("period") == period for e in ld108.evidence)
    assert d.symptom.symptom == "spiky" and d.causes[0].id == "data_issue"


def test_a_stray_spike_does_not_break_the_period():
    """Garbage every 17 steps (TensorBoard): spikes at 71, 88, ..., 156, an after-shock at 160, then
    173, 190, ... The stray is off the beat and does not hide it; with no strays allowed the period is
    lost and the rising validation loss is taken for overfitting. The after-shock rises by a tenth of
    the starting loss, under the fitted `spike_min_height`, so the stray is made to count here."""
    log = load_paths(sorted((EXTRA / "resnet_176_garbage_every17").iterdir()))
    assert_spikes_on_a_beat(log, 17)
    low = dataclasses.replace(fitted.PARAMS, spike_min_height=0.1)
    assert_spikes_on_a_beat(log, 17, low)
    strict = diagnose(log, dataclasses.replace(low, ld108_period_max_strays=0.0))
    # without the period, 19 spikes in 352 points are heavy-tailed noise: LD108 says nothing
    assert not any(f.rule == "LD108" for f in strict.findings)
    assert strict.symptom.symptom == "overfitting"


def test_a_period_between_logged_steps_does_not_drift():
    """HF Trainer logging every 5 steps, a corrupted batch once per pass of ~37.5 steps: the spikes are
    35 and 40 steps apart in turn. The beat is their mean, not the median gap (35), on which the later
    spikes would drift off one by one."""
    assert_spikes_on_a_beat(load_paths(sorted((SAMPLE_LOGS / "hf_corrupted_batches_spiky").iterdir())), 37)


def test_periodic_spikes_lead_over_the_swings_they_make():
    """Mislabelled batches every 50 steps (logged every 5) swing the bucketed loss enough for LD105
    (its trend, Kendall tau -0.17, counts as no progress under the prior `oscillation_max_tau` -0.3);
    the spikes' period says what the swings are. With the precedence off it reads oscillating."""
    log = load("cnn_001_mislabel_every50")
    swings = dataclasses.replace(fitted.PARAMS, oscillation_max_tau=-0.3)
    d = diagnose(log, swings)
    assert d.symptom.symptom == "spiky" and d.causes[0].id == "data_issue"
    assert any(s.symptom == "oscillating" for s in d.secondary)
    off = diagnose(log, dataclasses.replace(swings, periodic_spikes_over_eval=1.0))
    assert off.symptom.symptom == "oscillating"


def test_a_spike_the_loss_learned_past_is_not_an_explosion():
    """Mislabelled batches every 17 steps: one spike reaches 33 (28x the start, 1.17) and the loss ends
    at 0.11, a tenth of its start. LD102 took that peak for an explosion and called the run diverging;
    a loss that ends far below its start learned past its peak (`ld102_back_below_start`)."""
    log = load_paths(sorted((EXTRA / "cnn_145_mislabel_every17").iterdir()))
    d = diagnose(log)
    assert not any(f.rule == "LD102" for f in d.findings)
    assert d.symptom.symptom == "spiky" and d.causes[0].id == "data_issue"
    off = diagnose(log, dataclasses.replace(fitted.PARAMS, ld102_back_below_start=0.0))
    assert off.symptom.symptom == "diverging"


def test_a_blow_up_that_settles_back_at_the_start_stays_one():
    """lr x300 on a char-LM: 2.45 -> 89 -> back to 2.45, where it started, having learned nothing. The
    explosion still counts: the verdict keeps naming the lr."""
    log = load("charlm_077_lr_x300")
    d = diagnose(log)
    ld102 = next(f for f in d.findings if f.rule == "LD102")
    assert ld102.measurements["exploded"] == 1.0
    assert d.symptom.symptom == "diverging" and d.causes[0].id == "lr_too_high"


def test_the_beat_count_is_the_pairwise_count():
    """`episodes_on_beat` counts on the sorted ring of phases; it must equal the direct count (for each
    step, the steps whose phase is within the tolerance of its own, around the ring)."""
    rng = np.random.default_rng(7)
    for _ in range(2000):
        period = float(rng.choice([5.0, 11.5, 17.0, 37.3]))
        tolerance = float(rng.choice([0.05, 0.1, 0.15, 0.25]))
        n = int(rng.integers(4, 30))
        if rng.random() < 0.5:  # a beat with jitter and strays
            steps = np.unique(np.round(period * np.arange(n) + rng.normal(0, 0.1 * period, n)))
        else:
            steps = np.sort(rng.choice(np.arange(0, 1000, 5), n, replace=False)).astype(float)
        phase = np.mod(steps, period)
        apart = np.abs(phase[:, None] - phase[None, :])
        direct = int((np.minimum(apart, period - apart) <= tolerance * period).sum(axis=1).max())
        assert episodes_on_beat(steps, period, tolerance) == direct
    # a clean beat of 17 with one after-shock: all but the stray are on it
    steps = np.r_[np.arange(71, 360, 17), 160.0]
    assert episodes_on_beat(np.sort(steps), 17.0, 0.15) == len(steps) - 1


def test_noise_is_counted_by_all_its_excursions():
    """A healthy small-batch run near zero loss (batch 8, 4,400 steps logged every 10): a few hard
    batches lift the loss by a third of its start, among many smaller excursions as tall in robust z.
    Counted alone, the big ones read as spikes; counted with the small ones, they are the tail of noise."""
    log = load_paths(sorted((EXTRA / "mlp_168_healthy_slow_steady").iterdir()))
    ctx = Context(log, fitted.PARAMS)
    curve = ctx.train_loss_raw or ctx.train_loss
    tail = searched_excursions(curve)
    big = material(tail, curve)
    assert len(big) >= fitted.PARAMS.spike_min_count
    assert not spikes_are_noise(len(big), len(curve.trend_index), fitted.PARAMS)
    assert spikes_are_noise(len(tail), len(curve.trend_index), fitted.PARAMS)
    assert diagnose(log).symptom.symptom == "healthy"
    assert not any(f.rule == "LD108" and f.severity == "warning" for f in diagnose(log).findings)


def test_small_batch_noise_stays_below_a_bad_batch():
    """Batch 4 without BatchNorm: late batches reach 0.1-0.2 of the starting loss, no more; a bad batch
    throws it back to a third of its start or beyond (the bad-data runs above)."""
    log = load_paths(sorted((EXTRA / "mlp_192_healthy_small_batch_noise").iterdir()))
    assert fitted.PARAMS.spike_min_height >= 0.3
    assert len(found_spikes(log)) < fitted.PARAMS.spike_min_count
    assert diagnose(log).symptom.symptom == "healthy"
    low = diagnose(log, dataclasses.replace(fitted.PARAMS, spike_min_height=0.1))
    assert low.symptom.symptom == "spiky"  # control: at a tenth of the start, its noise reads as spikes
