"""The principles tuned on sample_logs/, each on a synthetic curve shaped like the labelled run it came
from (periodic data spikes, a stall at an lr decay, a long stall above half of ln(C), a tiny lr)."""

import math

import numpy as np
from diag_helpers import caffe_meta, decaying, make_log

from diagnostics import diagnose

LN3, LN5 = math.log(3), math.log(5)


def _keys(d, rule_id):
    return [e.key for f in d.findings if f.rule == rule_id for e in f.evidence]


def test_spikes_at_a_fixed_period_are_data_however_many():
    """caffe_lenet_corrupt_lmdb_spiky: a bad LMDB stretch met once per pass (every 6 displays)."""
    loss = decaying(300, 2.3, 0.1, 30, 0.005)
    loss[40::20] = 3.0  # 13 spikes: over 1% of the points, but one per pass
    d = diagnose(make_log(loss))
    assert d.symptom.symptom == "spiky"
    assert "evidence.spikes_periodic" in _keys(d, "LD108")
    assert d.causes[0].id == "data_issue"


def test_a_bad_stretch_over_two_logged_points_recurs_as_one_spike_per_pass():
    """caffe_cnn_030_corrupt_lmdb_32_black_frames (extra training split): 32 black frames span two
    displays, met once per pass of 47 displays; the pair is one episode, and the episodes recur."""
    loss = decaying(500, 2.3, 0.1, 30, 0.005)
    for start in range(80, 500, 47):
        loss[start : start + 2] = 3.0  # 18 spiking points: noise by their count, data by their period
    d = diagnose(make_log(loss))
    assert d.symptom.symptom == "spiky"
    assert "evidence.spikes_periodic" in _keys(d, "LD108")
    assert d.causes[0].id == "data_issue"


def test_as_many_spikes_at_random_steps_are_noise():
    loss = decaying(300, 2.3, 0.1, 30, 0.005)
    at = np.sort(np.random.default_rng(3).choice(np.arange(40, 300), 13, replace=False))
    loss[at] = 3.0
    assert diagnose(make_log(loss)).symptom.symptom != "spiky"


def test_a_stall_that_starts_at_the_lr_decay_blames_the_lr():
    """case4_scratch: 1.68 -> 1.26 (78% of ln(5)), flat after the lr step 0.001 -> 0.0001 at 2/3."""
    rng = np.random.default_rng(0)
    loss = np.r_[np.linspace(1.68, 1.27, 200), np.full(100, 1.262)] + 0.005 * rng.standard_normal(300)
    lr = np.r_[np.full(200, 1e-3), np.full(100, 1e-4)]
    meta = caffe_meta(num_classes=(5, "num_output: 5", 217), base_lr=(1e-3, "base_lr: 0.001", 6))
    d = diagnose(make_log(loss, lr=lr, meta=meta))
    assert d.symptom.symptom == "plateau"
    assert "evidence.stalled_after_lr_decay" in _keys(d, "LD104")
    assert d.causes[0].id == "lr_too_low"


def test_a_long_stall_above_half_of_ln_c_is_a_plateau():
    """case2_fcn_lr1e-4: ln(3) -> ~0.76 in the first 10% of the run, then nothing for the rest."""
    rng = np.random.default_rng(1)
    loss = np.r_[np.linspace(LN3, 0.77, 15), np.full(135, 0.76)] + 0.02 * rng.standard_normal(150)
    meta = caffe_meta(num_classes=(3, "num_output: 3", 278))
    assert diagnose(make_log(loss, meta=meta)).symptom.symptom == "plateau"
    converged = decaying(150, LN3, 0.16, 10, 0.003)  # as fast to 0.16: converged, not stalled
    assert diagnose(make_log(converged, meta=meta)).symptom.symptom == "healthy"


def test_a_loss_that_never_moves_under_a_tiny_lr_is_the_lr_first():
    """case2_fcn_lr1e-9: an averaged loss with an lr meant for a summed one: the lr is too low for the
    loss as configured; summing the loss is the second way out."""
    rng = np.random.default_rng(2)
    loss = LN3 + 0.0005 * rng.standard_normal(150)
    meta = caffe_meta(
        num_classes=(3, "num_output: 3", 278),
        base_lr=(1e-9, "base_lr: 1e-09", 6),
        loss_normalize=(True, "normalize: true", 307),
    )
    d = diagnose(make_log(loss, meta=meta))
    assert d.symptom.symptom == "flat"
    ids = [c.id for c in d.causes]
    assert ids[0] == "lr_too_low"
    assert ids.index("loss_normalization") > 0
