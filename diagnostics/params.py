"""Every threshold the rules use, in one documented place (deepchecks' conditions idea).

Rules measure; these numbers judge. Change a threshold here, never inside a rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Caffe's SoftmaxWithLoss clamps p(true class) at FLT_MIN: loss = -ln(1.17549435e-38).
CAFFE_CLAMP_LOSS = -math.log(1.17549435e-38)  # 87.3365
CAFFE_CLAMP_LOSS_DOUBLE = -math.log(2.2250738585072014e-308)  # 708.396
# Class counts recognised from an initial loss of ln(C) when the log does not state C.
KNOWN_CLASS_COUNTS = (2, 3, 4, 5, 6, 7, 8, 10, 20, 21, 80, 100, 200, 1000, 1001)


@dataclass(frozen=True)
class Params:
    """Thresholds of the rule catalogue. Fractions are of the curve's own level unless noted."""

    # feature layer
    buckets: int = 300  # long curves are summarised by this many bucket medians
    head_fraction: float = 0.05  # "initial level" = median of the first 5% of buckets
    tail_fraction: float = 0.15  # "final level" = median of the last 15% of buckets
    lnc_tolerance: float = 0.04  # a loss within 4% of ln(C) counts as "at chance"
    chance_accuracy_tolerance: float = 0.03  # an accuracy within 3% of 1/C is exactly chance
    # LD101 nan: the clamp value counts as non-finite; a non-finite run must persist to be "nan"
    clamp_tolerance: float = 0.002
    nan_persist_fraction: float = 0.5  # share of points after the first non-finite one that are bad
    nan_early_steps: int = 10  # NaN at or before this step points at data or lr, not slow blow-up
    # LD102 diverging: final level over the running minimum, with a rising trend after the minimum
    diverge_ratio: float = 1.6
    diverge_tau: float = 0.3
    diverge_min_after: float = 0.1  # the rise spans at least 10% of the curve
    explode_ratio: float = 20.0  # any bucket this many times above the initial level
    # LD103 flat: no real progress from the start
    flat_drop: float = 0.05  # drop (initial - best) below 5% of the initial level ...
    flat_drop_lnc: float = 0.05  # ... or, when ln(C) is known, below 5% of ln(C)
    eval_gain: float = 0.05  # unless the evaluation's accuracy/mAP/WER improved by 5 points of 100
    # LD104 plateau: some progress, then stuck at a poor level early
    plateau_max_drop: float = 0.3  # total drop below 30% of the initial level (or of ln(C))
    plateau_stall_fraction: float = 0.5  # the last half of the run ...
    plateau_stall_gain: float = 0.02  # ... improves by less than 2% of the level
    plateau_lnc_level: float = 0.75  # with ln(C): final loss above 75% of ln(C) is "poor"
    plateau_long_from: float = 0.2  # a loss without gain after the first 20% of the run ...
    plateau_long_lnc_level: float = 0.5  # ... is "poor" above half of ln(C)
    # LD105 oscillating: swings without a downward trend
    oscillation_amplitude: float = 0.25  # swing (q90-q10 of bucket medians, detrended) / level
    oscillation_step: float = 0.15  # a reversal counts when the curve turns back by 15% of its level
    oscillation_reversals: int = 4  # at least this many reversals (2 full up-down cycles)
    oscillation_max_tau: float = -0.3  # a trend below this (falling) is progress, not oscillation
    # LD106 overfitting: validation rises after its minimum while training keeps falling
    overfit_rise: float = 0.2  # final val level 20% above the (3-point median) val minimum
    overfit_steady_rise: float = 0.03  # ... or 3% when the rise is steady (Kendall tau >= 0.8 ...
    overfit_steady_tau: float = 0.8
    overfit_steady_points: int = 8  # ... over at least 8 evaluations from the minimum)
    overfit_min_points: int = 4
    overfit_min_position: float = 0.15  # the val minimum is not in the first 15% of the run, unless
    overfit_rising_tau: float = 0.6  # val rises steadily from its first evaluation after training began
    # LD107 eval gap: validation far above training from early on, or far more erratic
    gap_ratio: float = 3.0  # median val/train ratio (and over 2x in the first third of the run)
    gap_progress: float = 0.5  # val improved less than half as much (relatively) as train
    gap_erratic_ratio: float = 4.0  # relative step-to-step variation of val vs train
    gap_min_points: int = 3
    # LD108 spiky: isolated spikes that recover
    spike_window: int = 25  # rolling-median window (points)
    spike_mad: float = 12.0  # robust z above the rolling median
    spike_ratio: float = 2.0  # and at least 2x the rolling median
    spike_recover_points: int = 25  # back to normal within this many points
    spike_min_count: int = 3  # isolated spikes needed for the symptom (1 is noise)
    spike_max_fraction: float = 0.01  # more than 1% of points spiking is noise, not spikes
    spike_skip_start: float = 0.02  # the first 2% of a run (initial drop, warm-up) is not searched
    # config checks and causes
    tiny_lr: float = 1e-7  # below this no optimiser makes visible progress in a normal run
    low_lr_sgd: float = 1e-5
    low_lr_adaptive: float = 1e-6
    high_lr_sgd: float = 0.1
    high_lr_adaptive: float = 3e-3
    lr_cut: float = 10.0  # the suggested lr is the current one divided by this
    lr_raise: float = 10.0
    small_batch: int = 2  # batch sizes up to this make BatchNorm statistics meaningless
    small_batch_noise: int = 8  # batch sizes up to this make gradients noisy
    target_batch: int = 32  # effective batch size suggested via iter_size / accumulation
    deep_layers: int = 10  # weight layers from which a plain net is "deep"
    plain_gaussian_std: float = 0.01  # fixed gaussian std that stalls deep plain nets
    raw_pixel_scale: float = 0.01  # transform scale below this means inputs were rescaled to ~[0,1]
    min_cause_confidence: float = 0.25


DEFAULT_PARAMS = Params()
