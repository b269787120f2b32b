"""Every number the rules judge with, in one documented place (deepchecks' conditions idea).

Rules measure; these numbers judge. Change a threshold here, never inside a rule. Each field carries
metadata: `rule` (the rule id, or ids, that use it; empty for the shared feature layer), `doc` (what it
judges, shown in `docs/rules.md`) and, for the thresholds that decide a symptom (LD101-LD108) and the
cause scores, `grid`: a few plausible values around the default for a fit to choose from
(`tunable_fields()`).
"""

from __future__ import annotations

import math
from dataclasses import Field, dataclass, field, fields
from typing import Any

# Caffe's SoftmaxWithLoss clamps p(true class) at FLT_MIN: loss = -ln(1.17549435e-38).
CAFFE_CLAMP_LOSS = -math.log(1.17549435e-38)  # 87.3365
CAFFE_CLAMP_LOSS_DOUBLE = -math.log(2.2250738585072014e-308)  # 708.396
# Class counts recognised from an initial loss of ln(C) when the log does not state C.
KNOWN_CLASS_COUNTS = (2, 3, 4, 5, 6, 7, 8, 10, 20, 21, 80, 100, 200, 1000, 1001)


def _p(default: Any, rule: str | tuple[str, ...], doc: str, grid: tuple | None = None) -> Any:
    """A Params field: its default, the rule(s) that judge with it, what it judges, its fit grid."""
    metadata: dict[str, Any] = {"rule": rule, "doc": doc}
    if grid is not None:
        if default not in grid or not 3 <= len(grid) <= 7:
            raise ValueError(f"grid {grid} must hold the default {default} and 3-7 values")
        metadata["grid"] = tuple(grid)
    return field(default=default, metadata=metadata)


def _score(default: float, rule: str | tuple[str, ...], doc: str) -> Any:
    """A cause score or bonus: tunable on a grid of steps of 0.1 around the default, within 0..1."""
    grid = tuple(v for v in (round(default + d, 2) for d in (-0.2, -0.1, 0.0, 0.1, 0.2)) if 0.0 <= v <= 1.0)
    return _p(default, rule, doc, grid)


_STALL = ("LD103", "LD104")


@dataclass(frozen=True)
class Params:
    """Thresholds of the rule catalogue. Fractions are of the curve's own level unless noted."""

    # ----- feature layer (every curve rule) ------------------------------------------------------
    buckets: int = _p(300, (), "long curves are summarised by this many bucket medians")
    head_fraction: float = _p(0.05, (), 'the "initial level" is the median of the first 5% of buckets')
    tail_fraction: float = _p(0.15, (), 'the "final level" is the median of the last 15% of buckets')
    lnc_tolerance: float = _p(0.04, (), 'a loss within 4% of ln(C) counts as "at chance"')
    chance_accuracy_tolerance: float = _p(0.03, (), "an accuracy within 3% of 1/C is exactly chance")
    chance_accuracy_multiple: float = _p(
        2.0,
        ("LD103", "LD106", "LD107", "LD109"),
        "an accuracy up to this many times chance (1/C) never worked",
    )
    chance_accuracy_margin: float = _p(
        0.111,
        ("LD103", "LD106", "LD107", "LD109"),
        "... nor one this share of the way from chance to perfect (the lower bound wins; 0.556 for C=2)",
    )
    resumed_first_fraction: float = _p(
        0.1, ("LD103", "LD104", "LD110"), "a resumed run whose log starts after this share of its steps"
    )
    late_first_fraction: float = _p(
        0.3, ("LD103", "LD104", "LD110"), "a log starting after this share of its steps is a resumed run"
    )
    symptom_max_confidence: float = _p(0.99, (), "cap of every symptom's confidence")
    # ----- LD101 nan: the clamp value counts as non-finite; a non-finite run must persist ---------
    clamp_tolerance: float = _p(
        0.002, "LD101", "distance from Caffe's clamp loss 87.3365 that counts as non-finite"
    )
    nan_persist_fraction: float = _p(
        0.5, "LD101", "share of points after the first non-finite one that are bad", (0.2, 0.3, 0.5, 0.7, 0.9)
    )
    ld101_all_bad_share: float = _p(
        0.9, "LD101", "a share of bad points above this gives the high confidence"
    )
    ld101_confidence_all_bad: float = _p(0.95, "LD101", "confidence when (nearly) every later point is bad")
    ld101_confidence: float = _p(0.8, "LD101", "confidence of a persistent NaN otherwise")
    ld101_growth_min_points: int = _p(
        4, "LD101", "finite points before the NaN needed to judge a growth", (3, 4, 6, 8)
    )
    ld101_growth_tail_points: int = _p(
        3, "LD101", "the level before the NaN is the median of at least this many points"
    )
    ld101_growth_tail_parts: int = _p(20, "LD101", "... or of the last 1/this of the finite points")
    ld101_growth_min_after: int = _p(
        2, "LD101", "the minimum must lie at least this many points before the NaN"
    )
    ld101_growth_ratio: float = _p(
        1.5,
        "LD101",
        "the loss grew before the NaN: its last level is this many times its minimum",
        (1.2, 1.5, 2.0, 3.0),
    )
    ld101_companion_min_points: int = _p(
        3, "LD101", "values of another metric before the NaN needed for its usual size"
    )
    nan_early_steps: int = _p(
        10,
        "LD210",
        "NaN at or before this step points at data or lr, not slow blow-up",
        (0, 5, 10, 20, 50),
    )
    # ----- LD102 diverging: final level over the running minimum, with a rising trend -------------
    diverge_ratio: float = _p(
        1.6, "LD102", "final level over the running minimum", (1.3, 1.45, 1.6, 2.0, 2.5)
    )
    diverge_tau: float = _p(0.3, "LD102", "Kendall tau of the curve after its minimum", (0.2, 0.3, 0.4, 0.5))
    diverge_min_after: float = _p(
        0.1, "LD102", "the rise spans at least this share of the curve", (0.05, 0.1, 0.15, 0.2)
    )
    explode_ratio: float = _p(
        20.0,
        ("LD101", "LD102"),
        "any bucket (or another metric) this many times above its usual level",
        (5.0, 10.0, 20.0, 50.0),
    )
    ld102_min_buckets: int = _p(4, "LD102", "bucket medians needed to judge a divergence")
    ld102_back_below_start: float = _p(
        0.5,
        "LD102",
        "a loss that ends below this share of its start learned past its peak: no explosion (0: off)",
        (0.0, 0.25, 0.5, 1.0),
    )
    ld102_min_rise_of_start: float = _p(
        0.05,
        "LD102",
        "the rise is also at least this share of the initial level",
        (0.0, 0.02, 0.05, 0.1, 0.2),
    )
    ld102_onset_share: float = _p(
        0.5, "LD102", "the onset is where the curve first exceeds this share of the diverge_ratio rise"
    )
    ld102_strong_ratio: float = _p(
        3.0, "LD102", "a final level this many times the minimum is a strong divergence"
    )
    ld102_confidence_strong: float = _p(0.9, "LD102", "confidence of an explosion or a strong divergence")
    ld102_confidence: float = _p(0.75, "LD102", "confidence of a divergence otherwise")
    ld102_lr_rise_ratio: float = _p(
        1.5,
        "LD102",
        "the logged lr rose to this many times its value at the minimum (a restart)",
        (1.2, 1.5, 2.0, 3.0),
    )
    ld102_penalty_lr_rose: float = _p(
        0.35, "LD102", "confidence taken off when the lr rose during the rise", (0.2, 0.3, 0.35, 0.45, 0.5)
    )
    ld102_min_confidence: float = _p(
        0.5, "LD102", "below this confidence the divergence is an info finding, not the symptom"
    )
    # ----- LD103 flat: no real progress from the start -------------------------------------------
    flat_drop: float = _p(
        0.05,
        _STALL,
        "drop (initial - best) below this share of the initial level ...",
        (0.02, 0.03, 0.05, 0.08, 0.1),
    )
    flat_drop_lnc: float = _p(
        0.05, _STALL, "... or, when ln(C) is known, below this share of ln(C)", (0.02, 0.03, 0.05, 0.08, 0.1)
    )
    eval_gain: float = _p(
        0.05,
        "LD103",
        "unless the evaluation's accuracy/mAP/WER improved by this much (of 1, or 100)",
        (0.02, 0.05, 0.1),
    )
    ld103_min_buckets: int = _p(3, "LD103", "bucket medians needed to judge a flat run")
    ld103_eval_chance_is_flat: bool = _p(
        True, "LD103", "an evaluation accuracy never above twice chance makes the run flat"
    )
    frozen_accuracy_evals: int = _p(
        4,
        ("LD103", "LD104"),
        "an evaluation accuracy that took one value at this many evaluations or more is frozen ...",
        (3, 4, 5, 6, 8),
    )
    frozen_accuracy_spread: float = _p(
        0.001,
        ("LD103", "LD104"),
        "... to within this much (of 1, or 100): the printed precision, not a model that moved ...",
        (0.0, 0.0005, 0.001, 0.002, 0.005),
    )
    frozen_accuracy_level: float = _p(
        0.9,
        ("LD103", "LD104"),
        "... below this (of 1, or 100): a net that converged before its first evaluation is spared",
        (0.7, 0.8, 0.9, 0.95),
    )
    ld103_frozen_eval_drop: float = _p(
        0.2,
        "LD103",
        "a frozen evaluation makes the run flat when its loss fell by less than this share",
        (0.1, 0.15, 0.2, 0.3, 1.0),
    )
    ld103_stalled_eval_level: float = _p(
        0.0,
        "LD103",
        "an evaluation accuracy that gained less than eval_gain over its first value at "
        "frozen_accuracy_evals or more evaluations, and never reached this (of 1, or 100), makes the run "
        "flat whatever its loss did (0 = off) ...",
        (0.0, 0.2, 0.3, 0.5),
    )
    ld103_stalled_eval_loss_ratio: float = _p(
        1.5,
        "LD103",
        "... when the evaluation loss ends at most this many times the training loss: training learned "
        "no more than the evaluation shows (a gap is LD106's eval gap, not a flat run)",
        (1.2, 1.5, 2.0),
    )
    ld103_learned_lnc_level: float = _p(
        0.5, "LD103", "a first loss below this share of ln(C) learned already", (0.3, 0.4, 0.5, 0.6, 0.7)
    )
    ld103_trend_buckets: int = _p(
        8, "LD103", "bucket medians needed to trust a trend (and the higher confidence)"
    )
    ld103_steady_tau: float = _p(
        -0.5,
        "LD103",
        "a Kendall tau below this is slow progress, not a flat run",
        (-0.7, -0.6, -0.5, -0.4, -0.3),
    )
    ld103_steady_min_drop: float = _p(
        0.0,
        "LD103",
        "... once the loss has fallen at least this share of its start (a steady crawl of a few tenths "
        "of a percent over the whole run is an lr too small to matter; 0: any steady fall)",
        (0.0, 0.005, 0.01, 0.02),
    )
    ld103_confidence_at_chance: float = _p(0.9, "LD103", "confidence when the loss ends at ln(C)")
    ld103_confidence: float = _p(0.7, "LD103", "confidence of a long flat curve")
    ld103_confidence_short: float = _p(0.55, "LD103", "confidence of a short flat curve")
    # ----- LD104 plateau: some progress, then stuck at a poor level early -------------------------
    plateau_max_drop: float = _p(
        0.3,
        ("LD104", "LD303"),
        "total drop below this share of the initial level (or of ln(C))",
        (0.2, 0.25, 0.3, 0.4, 0.5),
    )
    plateau_stall_fraction: float = _p(
        0.5, "LD104", "the last this share of the run ...", (0.3, 0.4, 0.5, 0.6)
    )
    plateau_stall_gain: float = _p(
        0.02, "LD104", "... improves by less than this share of the level", (0.01, 0.02, 0.03, 0.05)
    )
    ld104_frozen_stall_gain: float = _p(
        0.0,
        "LD104",
        "... or by less than this share when the evaluation accuracy never moved (frozen_accuracy_*): the "
        "model's answers stayed the same, so what the loss still gains is not learning (0 = off)",
        (0.0, 0.05, 0.1, 0.2),
    )
    plateau_lnc_level: float = _p(
        0.75, "LD104", 'with ln(C): a final loss above this share of ln(C) is "poor"', (0.5, 0.6, 0.75, 0.85)
    )
    plateau_long_from: float = _p(
        0.2, "LD104", "a loss without gain after this share of the run ...", (0.1, 0.2, 0.3)
    )
    plateau_long_lnc_level: float = _p(
        0.5, "LD104", '... is "poor" above this share of ln(C)', (0.3, 0.4, 0.5, 0.6)
    )
    ld104_min_buckets: int = _p(8, "LD104", "bucket medians needed to judge a plateau")
    ld104_lr_cut_factor: float = _p(
        0.5, "LD104", "an lr below this share of its previous value is a decay", (0.3, 0.5, 0.7)
    )
    ld104_early_cut_position: float = _p(
        1 / 3, "LD104", "an lr decay within this share of the run is early", (0.2, 0.25, 1 / 3, 0.4, 0.5)
    )
    ld104_early_cut_ratio: float = _p(
        0.01, "LD104", "... when the final lr is at most this share of the peak", (0.001, 0.01, 0.03, 0.1)
    )
    ld104_after_cut_margin: float = _p(
        0.05, "LD104", "the window after an lr decay starts this share of the run after it"
    )
    ld104_no_lnc_drop_share: float = _p(
        0.5,
        "LD104",
        "without ln(C) a poor run dropped by less than this share of plateau_max_drop",
        (0.3, 0.5, 0.7, 1.0),
    )
    ld104_steady_tau: float = _p(
        -0.3, "LD104", "a Kendall tau of the last part below this is slow progress", (-0.5, -0.4, -0.3, -0.2)
    )
    ld104_onset_share: float = _p(
        0.2, "LD104", "the plateau starts where the loss is within this share of the drop from its best"
    )
    ld104_confidence_lnc: float = _p(0.8, "LD104", "confidence when ln(C) is known")
    ld104_confidence: float = _p(0.6, "LD104", "confidence otherwise")
    # ----- LD105 oscillating: swings without a downward trend -------------------------------------
    oscillation_amplitude: float = _p(
        0.25, "LD105", "swing (q90-q10 of bucket medians, detrended) / level", (0.15, 0.2, 0.25, 0.35, 0.5)
    )
    oscillation_step: float = _p(
        0.15,
        "LD105",
        "a reversal counts when the curve turns back by this share of its level",
        (0.1, 0.15, 0.2, 0.25),
    )
    oscillation_reversals: int = _p(
        4, "LD105", "at least this many reversals (2 full up-down cycles)", (3, 4, 5, 6, 8)
    )
    oscillation_max_tau: float = _p(
        -0.3,
        "LD105",
        "a trend below this (falling) is progress, not oscillation",
        (-0.5, -0.4, -0.3, -0.2, -0.1),
    )
    ld105_min_buckets: int = _p(8, "LD105", "bucket medians needed to judge swings")
    # Single batches logged every k steps swing with the batch's difficulty (batch 8: 0.02 to 0.7 around
    # one level) while the evaluation loss, a mean over a whole pass, falls steadily: such swings are the
    # sampling of the log, not a run that overshoots (an lr too high swings the evaluated model too).
    ld105_eval_min_points: int = _p(5, "LD105", "evaluation losses needed to read their trend")
    ld105_eval_tau: float = _p(
        -0.3,
        "LD105",
        "swings are single-batch noise when the evaluation loss trends down at least this steadily "
        "(Kendall tau; -1.01 = never) ...",
        (-1.01, -0.7, -0.5, -0.3),
    )
    ld105_eval_drop: float = _p(
        0.2,
        "LD105",
        "... and ends this share of its first value below it ...",
        (0.1, 0.2, 0.3, 0.5),
    )
    ld105_eval_max_rise: float = _p(
        0.5,
        "LD105",
        "... and never rose by more than this share of its level from one evaluation to the next (a model "
        "that jumps around is no steady reference)",
        (0.25, 0.5, 1.0),
    )
    ld105_min_reversals: int = _p(2, "LD105", "a short curve still needs this many reversals ...")
    ld105_buckets_per_reversal: int = _p(3, "LD105", "... or one per this many bucket medians")
    ld105_confidence_base: float = _p(0.5, "LD105", "confidence = base + amplitude x per_amplitude ...")
    ld105_confidence_per_amplitude: float = _p(0.5, "LD105", "... (see ld105_confidence_base) ...")
    ld105_max_confidence: float = _p(0.9, "LD105", "... up to this")
    # ----- LD106 overfitting: validation rises after its minimum while training keeps falling -----
    overfit_rise: float = _p(
        0.2,
        "LD106",
        "final val level this share above the (3-point median) val minimum",
        (0.1, 0.15, 0.2, 0.3, 0.4),
    )
    overfit_steady_rise: float = _p(
        0.03,
        "LD106",
        "... or this share when the rise is steady (Kendall tau >= overfit_steady_tau ...",
        (0.02, 0.03, 0.05, 0.08),
    )
    overfit_steady_tau: float = _p(0.8, "LD106", "... (see overfit_steady_rise) ...", (0.6, 0.7, 0.8, 0.9))
    overfit_rise_of_fall: float = _p(
        0.0,
        "LD106",
        "and the rise is at least this share of the fall to the minimum from the first evaluation or the "
        "training loss's start, the higher (a validation loss that fell to ~0 rises by large shares of "
        "nothing; 0: no such bar)",
        (0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5),
    )
    overfit_min_improvement: float = _p(
        0.0,
        "LD106",
        "the validation loss first fell by at least this share of where it began (its first evaluation or "
        "the training loss's start, the higher): overfitting generalises first, a validation loss that "
        "never came down was apart from the start (LD107); judged when training had not yet fallen by "
        "this share at the first evaluation, in a log of one session; 0: no such bar",
        (0.0, 0.1, 0.15, 0.2, 0.25, 0.3),
    )
    overfit_steady_points: int = _p(
        8, "LD106", "... over at least this many evaluations from the minimum)", (5, 8, 12)
    )
    overfit_min_points: int = _p(4, "LD106", "evaluations needed to judge overfitting", (3, 4, 5, 6))
    overfit_min_position: float = _p(
        0.15,
        "LD106",
        "the val minimum is not in this first share of the run, unless",
        (0.05, 0.1, 0.15, 0.2, 0.3),
    )
    ld106_learned_fall: float = _p(
        0.0,
        "LD106",
        "... or the validation loss (3-point median) had first come down by at least this share of where "
        "it began (its first evaluation or the training loss's start, the higher): a minimum reached by "
        "learning, not a run that began at its best, and a rise that stays up, not noise (exempts it from "
        "overfit_min_position and ld106_after_tau; without a validation loss, the quality metric's "
        "relative gain to its best counts alike); 0: no such exemption",
        (0.0, 0.3, 0.4, 0.5, 0.6),
    )
    overfit_rising_tau: float = _p(
        0.6,
        ("LD106", "LD107"),
        "val rises steadily from its first evaluation after training began",
        (0.4, 0.5, 0.6, 0.7, 0.8),
    )
    ld106_moderate_tau: float = _p(
        0.3, "LD106", "... or rises with at least this Kendall tau ...", (0.2, 0.3, 0.4)
    )
    ld106_moderate_rise_multiple: float = _p(
        2.0, "LD106", "... by this many times overfit_rise", (1.5, 2.0, 3.0)
    )
    ld106_after_min_points: int = _p(
        3, "LD106", "evaluations after the minimum needed to judge their trend ..."
    )
    ld106_after_tau: float = _p(
        0.3, "LD106", "... which must rise with at least this Kendall tau", (0.1, 0.2, 0.3, 0.4, 0.5)
    )
    eval_tail_parts: int = _p(
        10, ("LD106",), "the final evaluation level is the median of the last 1/this of them"
    )
    ld106_strong_rise_multiple: float = _p(2.0, "LD106", "a rise over this many times overfit_rise is strong")
    ld106_confidence_strong: float = _p(0.85, "LD106", "confidence of a strong rise")
    ld106_confidence: float = _p(0.7, "LD106", "confidence of a rise otherwise")
    ld106_confidence_quality: float = _p(0.7, "LD106", "confidence when the quality metric gets worse")
    ld106_quality_min_points: int = _p(
        3, "LD106", "evaluations of a quality metric needed to judge that it improves"
    )
    ld106_quality_tolerance: float = _p(
        0.005,
        "LD106",
        "a quality metric still improving gained more than this (of 1, or 100)",
        (0.002, 0.005, 0.01, 0.02),
    )
    ld106_quality_tau: float = _p(
        0.3, "LD106", "... with at least this Kendall tau since the val loss minimum", (0.2, 0.3, 0.4, 0.5)
    )
    # ----- LD107 eval gap: validation far above training from early on, or far more erratic ------
    gap_ratio: float = _p(
        3.0,
        "LD107",
        "median val/train ratio (and over ld107_early_ratio in the first part)",
        (2.0, 2.5, 3.0, 4.0, 5.0),
    )
    gap_progress: float = _p(
        0.5,
        "LD107",
        "val improved less than this share as much (relatively) as train",
        (0.3, 0.4, 0.5, 0.6, 0.7),
    )
    # Once training nears zero loss, every relative measure of progress saturates (train "improved by
    # 100 %"), so a run that memorised a tiny data set looked like one whose evaluation kept pace. What
    # separates them is how far the evaluation stays above training on the scale the loss started from.
    gap_min_height: float = _p(
        0.3,
        "LD107",
        "... or the late val level stays above the late train level by this share of the first loss",
        (0.0, 0.15, 0.2, 0.3, 0.4),
    )
    # A ratio of two near-zero losses is no gap: a model that fits both sets (losses of 1e-4 and 3e-4)
    # has a working evaluation, however large their ratio.
    ld107_min_gap: float = _p(
        0.01,
        "LD107",
        "the median val - train difference, in the loss's own units, must exceed this",
        (0.0, 0.003, 0.01, 0.03, 0.1),
    )
    gap_erratic_ratio: float = _p(
        4.0, "LD107", "relative step-to-step variation of val vs train", (2.0, 3.0, 4.0, 6.0)
    )
    gap_min_points: int = _p(3, "LD107", "evaluations needed to judge a gap", (2, 3, 4, 5))
    ld107_early_parts: int = _p(3, "LD107", "the early (and late) part of the evaluations is 1/this of them")
    ld107_early_ratio: float = _p(
        2.0, "LD107", "median val/train ratio in the early part", (1.5, 2.0, 2.5, 3.0)
    )
    ld107_trained_lnc_level: float = _p(
        0.5,
        "LD107",
        "training below this share of ln(C) while the evaluation never beat chance is a gap",
        (0.3, 0.5, 0.7),
    )
    ld107_min_val_variation: float = _p(
        0.25,
        "LD107",
        "erratic val: median |change of log(val)| between evaluations above this",
        (0.1, 0.15, 0.25, 0.35, 0.5),
    )
    ld107_train_variation_floor: float = _p(0.001, "LD107", "the train variation counts as at least this")
    ld107_confidence_both: float = _p(0.85, "LD107", "confidence when val is both far and erratic")
    ld107_confidence: float = _p(0.7, "LD107", "confidence otherwise")
    # ----- LD108 spiky: isolated spikes that recover ----------------------------------------------
    spike_window: int = _p(25, ("LD108", "LD112"), "rolling-median window (points)", (11, 15, 25, 41))
    # Grids bounded by principle: a robust z under 10 is within reach of heavy-tailed minibatch noise, and
    # more than 2% of the points spiking is noise (tests/diagnostics: test_sample_principles, test_symptoms).
    spike_mad: float = _p(
        12.0, ("LD108", "LD112"), "robust z above the rolling median", (10.0, 12.0, 16.0, 24.0)
    )
    spike_ratio: float = _p(
        2.0, ("LD108", "LD112"), "and at least this many times the rolling median", (1.5, 2.0, 3.0, 4.0)
    )
    spike_recover_points: int = _p(
        25, ("LD108", "LD112"), "back to normal within this many points", (10, 25, 50)
    )
    # A robust z and a ratio over the rolling median both grow without bound as the loss nears zero: a
    # jump from 0.001 to 0.02 late in a healthy run is minibatch noise, a spike worth a warning moves the
    # loss by a share of the scale it trains on.
    spike_min_height: float = _p(
        0.1,
        "LD108",
        "and rises above the rolling median by at least this share of the curve's initial level",
        (0.0, 0.05, 0.1, 0.2, 0.3, 0.5),
    )
    spike_min_count: int = _p(
        3, ("LD108", "LD112"), "isolated spikes needed for the symptom (1 is noise)", (2, 3, 4, 5)
    )
    spike_max_fraction: float = _p(
        0.01,
        "LD108",
        "more than this share of points spiking is noise, not spikes",
        (0.005, 0.01, 0.02),
    )
    spike_skip_start: float = _p(
        0.02,
        "LD108",
        "the first share of a run (initial drop, warm-up) is not searched",
        (0.0, 0.01, 0.02, 0.05),
    )
    ld108_period_min_spikes: int = _p(4, "LD108", "spikes needed to call them periodic", (3, 4, 5, 6))
    ld108_period_min_gap: int = _p(3, "LD108", "periodic spikes are at least this many points apart")
    ld108_period_tolerance: float = _p(
        0.15,
        "LD108",
        "a periodic spike falls within this share of a period of the beat",
        (0.05, 0.1, 0.15, 0.25),
    )
    ld108_period_max_strays: float = _p(
        0.25,
        "LD108",
        "spike episodes off the beat (strays) may be up to this share of them",
        (0.0, 0.1, 0.25),
    )
    # Field notes #11: spikes once per epoch, on its last and partial batch (the data set does not divide
    # into batches), are that small batch's noise or a loss scaled by the batch size, not bad data.
    ld108_epoch_end_share: float = _p(
        0.5,
        "LD108",
        "spikes on the last logged step of an epoch, as a share of all spikes, that read as the partial "
        "last batch (1.01: never)",
        (0.5, 0.67, 0.8, 1.01),
    )
    ld108_epoch_end_min_spikes: int = _p(2, "LD108", "... and at least this many of them (one is chance)")
    ld108_epoch_end_max_points: float = _p(
        0.2,
        "LD108",
        "... where such steps are at most this share of the points (a per-epoch log has nothing else)",
        (0.1, 0.2, 0.34),
    )
    ld108_confidence_base: float = _p(0.5, "LD108", "confidence = base + per_spike x spikes ...")
    ld108_confidence_per_spike: float = _p(0.05, "LD108", "... (see ld108_confidence_base) ...")
    ld108_max_confidence: float = _p(0.85, "LD108", "... up to this")
    # ----- LD110 / LD111: facts ----------------------------------------------------------------
    ld110_initial_ratio: float = _p(
        3.0, "LD110", "a first loss at least this many times ln(C) is far above chance"
    )
    ld110_max_classes: int = _p(
        100000,
        "LD110",
        "C unknown but the log reports an accuracy: ln(C) is taken as ln(this), a class count few "
        "classifiers exceed (so the first loss must be far above any untrained classifier's)",
        (1000, 10000, 100000),
    )
    ld111_warmup_share: float = _p(0.5, "LD111", "a first lr below this share of the peak is a warm-up")
    ld111_drop_factor: float = _p(0.6, "LD111", "an lr below this share of its previous value is a drop")
    ld111_decay_share: float = _p(0.5, "LD111", "a final lr below this share of the peak is a decay")
    ld115_min_buckets: int = _p(8, "LD115", "loss buckets needed to place the lowest loss on the lr ramp")
    ld115_gave_back: float = _p(
        0.5,
        "LD115",
        "share of its fall the loss gave back after its lowest point",
        (0.3, 0.5, 0.7, 1.0),
    )
    ld115_lr_rise: float = _p(
        2.0,
        "LD115",
        "the lr after the lowest loss rose to (and ended at) this many times its value there",
        (1.5, 2.0, 3.0, 5.0),
    )
    ld115_lr_divisor: float = _p(
        10.0,
        "LD201",
        "the new peak lr is the lr at the lowest loss divided by this (the lr range test's reading: "
        "an order of magnitude below where the loss stopped falling)",
    )
    # ----- config checks ----------------------------------------------------------------------
    tiny_lr: float = _p(
        1e-7,
        ("LD309", "LD202", "LD206", "LD306"),
        "below this no optimiser makes visible progress in a normal run (LD306: an averaged loss with "
        "an lr this small had its lr tuned for a summed loss)",
    )
    low_lr_sgd: float = _p(1e-5, "LD309", "lowest usual lr of SGD")
    low_lr_adaptive: float = _p(1e-6, "LD309", "lowest usual lr of an adaptive optimiser (or an unknown one)")
    high_lr_sgd: float = _p(0.1, "LD309", "highest usual lr of SGD (or an unknown optimiser)")
    high_lr_adaptive: float = _p(3e-3, "LD309", "highest usual lr of an adaptive optimiser")
    lr_cut: float = _p(10.0, "LD201", "the suggested lr is the current one divided by this")
    lr_raise: float = _p(10.0, "LD202", "the suggested lr is at least the current one times this")
    start_lr_adaptive: float = _p(
        1e-3, "LD202", "a too-small lr of an adaptive optimiser is raised at least to this (Adam's default)"
    )
    start_lr_sgd: float = _p(1e-2, "LD202", "a too-small SGD lr is raised at least to this (the usual start)")
    small_batch: int = _p(
        2, ("LD301", "LD304", "LD207"), "batch sizes up to this make BatchNorm statistics meaningless"
    )
    small_batch_noise: int = _p(8, "LD207", "batch sizes up to this make gradients noisy")
    target_batch: int = _p(32, "LD207", "effective batch size suggested via iter_size / accumulation")
    deep_layers: int = _p(
        10, ("LD205", "LD206", "LD303", "LD305", "LD308"), 'weight layers from which a plain net is "deep"'
    )
    ld305_min_depth: int = _p(
        0,
        ("LD305", "LD205"),
        "a named architecture (resnet, fcn...) of fewer weight layers than this is shallow enough to train "
        "from scratch: no pretraining is blamed (0: the name alone counts)",
        grid=(0, 4, 5, 6, 8),
    )
    plain_gaussian_std: float = _p(0.01, "LD308", "fixed gaussian std that stalls deep plain nets")
    ld308_min_depth: int = _p(
        10,
        "LD308",
        "... in a plain net of at least this many weight layers; below deep_layers, only when its "
        "layers are narrow (ld308_max_gain)",
        grid=(4, 6, 8, 10),
    )
    ld308_kernel_area: int = _p(
        9,
        "LD308",
        "... fan-in per unit of the stated width: a 3x3 convolution (an upper bound for a dense layer)",
    )
    ld308_max_gain: float = _p(
        0.5,
        "LD308",
        "... narrow: the signal's gain per layer at init, std x sqrt(fan-in) (fan-in: ld308_kernel_area "
        "x the median stated width), is at most this; wider layers (CaffeNet's 96-4096 "
        "at std 0.01: 0.59) keep the signal for a few layers",
    )
    raw_pixel_scale: float = _p(
        0.01, "LD303", "a transform scale below this means inputs were rescaled to ~[0,1]"
    )
    ld302_raw_mean_above: float = _p(1.5, "LD302", "a mean_value above this is in raw pixel units")
    ld306_summed_min_lr: float = _p(
        1e-6, "LD306", "a summed loss with an lr at least this was tuned for an average"
    )
    ld306_min_pixels: int = _p(64 * 64, "LD306", "... over at least this many positions (input size squared)")
    ld306_summed_effective_lr: float = _p(
        0.5,
        "LD306",
        "... or, for SGD, an lr this large once multiplied by the batch (x positions) it is summed over",
        grid=(0.25, 0.5, 1.0, 2.0),
    )
    ld114_train_over_eval: float = _p(
        4.0,
        "LD114",
        "a training loss (median over the evaluations) at least this many times the evaluation loss is "
        "a sum over the batch, not an average (regularisation keeps the ratio near 1-2)",
        grid=(3.0, 4.0, 6.0, 8.0),
    )
    ld114_min_train_level: float = _p(
        2.0,
        "LD114",
        "... and the training loss (same median) at least this many times ln(C) (or 1 without C): a "
        "ratio between two losses near 0 (a trained net) says nothing",
        grid=(1.0, 2.0, 4.0),
    )
    ld114_min_points: int = _p(2, "LD114", "evaluations with both losses finite needed to judge the ratio")
    ld306_summed_first_loss: float = _p(
        100.0, "LD306", "... or a first loss at least this many times ln(C) (or 1) shows the sum"
    )
    ld308_min_small_share: float = _p(
        0.5, "LD308", "at least this share of the weight fillers are small gaussians"
    )
    # ----- causes: every score and bonus a cause rule gives ----------------------------------------
    min_cause_confidence: float = _p(0.25, (), "causes below this confidence are not shown")
    # the runner: which symptom becomes the verdict, and how sure a healthy verdict is
    spiky_over_plateau: float = _p(
        0.6,
        (),
        "spikes at least this sure explain a stall better than a plateau does",
        (0.5, 0.6, 0.7, 0.8),
    )
    periodic_spikes_over_eval: float = _p(
        0.6,
        (),
        "spikes at a fixed period this sure lead over swings, an eval gap or a rising val loss (1: never)",
        (0.5, 0.6, 0.7, 1.0),
    )
    config_fault_confidence: float = _p(
        0.7,
        (),
        "a healthy-looking curve under a critical config fault (LD301, LD310-LD312) becomes a stall this"
        " sure (0: the curve decides)",
        (0.0, 0.5, 0.6, 0.7, 0.8),
    )
    config_warning_fault_confidence: float = _p(
        0.6,
        (),
        "a healthy-looking curve under a config mismatch the log states but cannot prove harmful (LD304"
        " BatchNorm over 1-2 samples, LD306 loss normalisation vs lr, LD310-LD312 warnings, LD114 a"
        " training loss summed over the batch) becomes a stall this sure (0: the curve decides)",
        (0.0, 0.4, 0.5, 0.6, 0.7),
    )
    healthy_confidence_long: float = _p(0.85, (), "raw confidence of healthy with >= 20 points")
    healthy_confidence_medium: float = _p(0.7, (), "raw confidence of healthy with 5-19 points")
    healthy_confidence_short: float = _p(0.5, (), "raw confidence of healthy with < 5 points")
    healthy_points_long: int = _p(20, (), "points from which a healthy curve is fully judged")
    healthy_points_medium: int = _p(5, (), "points from which a healthy curve is judged at all")
    # A symptom whose rule is less sure than its floor is not raised as the verdict (it stays a finding):
    # the fit raises the floors of the symptoms that cry wolf on healthy runs.
    alarm_floor_nan: float = _p(0.0, (), "least confidence for a NaN verdict", (0.0, 0.6, 0.7, 0.8, 0.9))
    alarm_floor_diverging: float = _p(
        0.0, (), "least confidence for a diverging verdict", (0.0, 0.6, 0.7, 0.8, 0.9)
    )
    alarm_floor_flat: float = _p(0.0, (), "least confidence for a flat verdict", (0.0, 0.6, 0.7, 0.8, 0.9))
    alarm_floor_plateau: float = _p(
        0.0, (), "least confidence for a plateau verdict", (0.0, 0.6, 0.7, 0.8, 0.9)
    )
    alarm_floor_oscillating: float = _p(
        0.0, (), "least confidence for an oscillating verdict", (0.0, 0.6, 0.7, 0.8, 0.9)
    )
    alarm_floor_overfitting: float = _p(
        0.0, (), "least confidence for an overfitting verdict", (0.0, 0.6, 0.7, 0.8, 0.9)
    )
    alarm_floor_eval_gap: float = _p(
        0.0, (), "least confidence for an eval-gap verdict", (0.0, 0.6, 0.7, 0.8, 0.9)
    )
    alarm_floor_spiky: float = _p(0.0, (), "least confidence for a spiky verdict", (0.0, 0.6, 0.7, 0.8, 0.9))
    cause_max_confidence: float = _p(0.97, (), "cap of every cause's confidence")
    collapse_first_over_lnc: float = _p(
        1.05,
        ("LD201", "LD202"),
        "a loss that ended at ln(C) collapsed when its first value was this many times ln(C) ...",
    )
    collapse_peak_over_lnc: float = _p(1.5, ("LD201", "LD202"), "... or its early peak this many times ln(C)")
    collapse_early_parts: int = _p(10, ("LD201", "LD202"), "the early part is the first 1/this of the curve")
    ld201_score_blowup: float = _score(0.6, "LD201", "NaN or divergence")
    ld201_bonus_grew: float = _score(0.2, "LD201", "... the loss grew before (or diverged)")
    ld201_bonus_lr_high: float = _score(0.15, "LD201", "... the lr is above the usual range (LD309)")
    ld201_score_sudden_nan: float = _score(
        0.45, "LD201", "NaN from a normal lr without growth before it, early or late (data as likely)"
    )
    ld201_score_oscillating: float = _score(0.65, "LD201", "oscillating loss")
    ld201_bonus_oscillating_lr_high: float = _score(0.15, "LD201", "... with a high lr")
    ld201_score_spiky: float = _score(0.45, "LD201", "spiky loss")
    ld201_bonus_spiky_lr_high: float = _score(0.15, "LD201", "... with a high lr")
    ld201_score_collapsed: float = _score(0.5, "LD201", "a stall after a collapse onto ln(C)")
    ld201_bonus_collapsed_lr_high: float = _score(0.2, "LD201", "... with a high lr")
    ld201_score_stalled_lr_high: float = _score(0.45, "LD201", "a stall with a high lr")
    ld201_penalty_uniform_start: float = _p(
        0.2,
        "LD201",
        "... taken off when the untrained net was already at ln(C) and never moved (LD206's uniform "
        "start): a large step moves the loss, it does not hold it where it began (0 = off)",
        (0.0, 0.1, 0.2, 0.3, 0.4),
    )
    ld201_penalty_huge_start: float = _score(
        0.15, "LD201", "taken off: the logits were huge before the lr acted"
    )
    ld201_penalty_config: float = _score(
        0.3, "LD201", "taken off: frozen BatchNorm or a loss/lr mismatch explains it"
    )
    ld201_bonus_broken_policy: float = _score(0.15, "LD201", "added: the lr schedule is broken (LD307)")
    ld202_score_tiny_lr: float = _score(0.8, "LD202", "a stall under an lr at most tiny_lr")
    ld202_score_lr_low: float = _score(0.6, "LD202", "a stall under an lr below the usual range (LD309)")
    ld202_score_after_decay: float = _score(0.6, "LD202", "the loss stopped where the lr was cut")
    ld202_score_unknown_lr_flat: float = _score(0.3, "LD202", "a flat run, lr not in the log")
    ld202_score_unknown_lr_plateau: float = _score(0.25, "LD202", "a plateau, lr not in the log")
    ld202_score_plateau: float = _score(0.3, "LD202", "a plateau under an ordinary lr")
    ld202_score_flat: float = _score(0.2, "LD202", "a flat run under an ordinary lr")
    ld202_score_tiny_lr_flat: float = _score(0.9, "LD202", "a flat run under an lr at most tiny_lr")
    ld202_creeping_tau: float = _p(
        -0.6,
        "LD202",
        "Kendall tau of the last half of a stalled loss at or below which it still creeps down",
        (-0.8, -0.7, -0.6, -0.5, -0.4),
    )
    ld202_creeping_from: float = _p(0.5, "LD202", "the share of the run after which the creep is judged")
    ld202_creeping_min_points: int = _p(8, "LD202", "bucket medians needed to judge a creep")
    ld202_score_creeping: float = _score(0.6, "LD202", "a stall that still creeps down steadily at the end")
    ld202_creep_working_lr: float = _p(
        0.0,
        ("LD202", "LD205", "LD206"),
        "a working lr: a creeping stall under an lr at least this large (and not above the optimiser's "
        "usual range, where the step explains the stall) is not the lr's doing, what trains is too small "
        "(layers frozen at random weights, a head on them); a uniform start under a smaller "
        "one does not blame the init (LD206); 0: every creep blames the lr, and LD206 asks only for an lr "
        "above tiny_lr",
        (0.0, 1e-4, 3e-4, 1e-3),
    )
    ld202_score_large_step: float = _score(0.15, "LD202", "a high lr or a collapse explains the stall")
    ld203_score_rescaled: float = _score(
        0.8, "LD203", "a stall with inputs rescaled for a raw-pixel recipe (LD303)"
    )
    ld203_bonus_at_chance: float = _score(0.1, "LD203", "... and the loss at ln(C) (LD109)")
    ld203_score_mean_scaled: float = _score(0.7, "LD203", "mean_value in scaled units (LD302)")
    ld203_score_huge_start: float = _score(0.7, "LD203", "a huge first loss without any input scaling")
    ld203_score_rescaled_other: float = _score(0.35, "LD203", "inputs rescaled, another symptom")
    ld203_penalty_gaussian: float = _score(0.3, "LD203", "taken off: a small-gaussian deep plain net (LD308)")
    ld203_score_norm_units: float = _score(
        0.8, "LD203", "mean/std of the input normalisation in different pixel units (LD312, critical)"
    )
    ld204_score_frozen: float = _score(0.9, "LD204", "BatchNorm frozen in a net trained from scratch (LD301)")
    ld204_score_bn_flag_scratch: float = _score(
        0.8, "LD204", "BatchNorm set to inference mode while training from scratch (LD311)"
    )
    ld204_score_frozen_intended: float = _score(0.4, "LD204", "BatchNorm frozen as fine-tuning does it")
    ld204_score_tiny_batch: float = _score(
        0.6, "LD204", "BatchNorm over 1-2 samples (LD304) with an unstable run"
    )
    ld204_score_gap_without_bn: float = _score(
        0.3, "LD204", "an eval gap in a net known to have no BatchNorm"
    )
    ld204_score_gap_bn: float = _score(0.75, "LD204", "an eval gap with BatchNorm or an erratic val loss")
    ld204_score_gap: float = _score(0.6, "LD204", "an eval gap otherwise")
    ld204_gap_generalised: float = _p(
        0.0,
        "LD204",
        "... and with BatchNorm or an erratic val loss too, when the validation loss (3-point median) "
        "first came down by at least this share of where it began: the evaluation works, the gap is "
        "memorisation (0: off)",
        grid=(0.0, 0.4, 0.5, 0.6),
    )
    ld205_score_segmentation: float = _score(
        0.85, "LD205", "a segmentation net from scratch that stalls (LD305)"
    )
    ld205_score_scratch: float = _score(0.7, "LD205", "another deep net from scratch that stalls (LD305)")
    ld205_score_unknown: float = _score(
        0.35, "LD205", "a deep net that stalls, weights loaded or not unknown"
    )
    ld205_penalty_config: float = _score(0.2, "LD205", "taken off: LD303 or LD308 explains the stall")
    ld205_score_frozen_random: float = _score(
        0.8, "LD205", "layers frozen at their random init, no weights loaded (LD310), any problem"
    )
    ld205_score_creeping: float = _score(
        0.5, "LD205", "a stall that creeps down steadily under a working lr (ld202_creep_working_lr)"
    )
    ld206_uniform_tolerance: float = _p(
        0.005, "LD206", "a first loss within this share of ln(C) is a uniform prediction at init"
    )
    ld206_score_gaussian_stall: float = _score(
        0.8, "LD206", "small gaussians in a deep plain net (LD308) and a stall"
    )
    ld206_score_gaussian: float = _score(0.5, "LD206", "small gaussians and a blow-up")
    ld206_score_plain: float = _score(0.4, "LD206", "a deep plain net at ln(C)")
    ld206_score_other: float = _score(0.2, "LD206", "another net at ln(C)")
    ld206_score_uniform_at_init: float = _score(
        0.45, "LD206", "at least this when the net predicted 1/C at init"
    )
    ld206_score_prior_only: float = _p(
        0.0,
        "LD206",
        "a plateau whose evaluated answers never changed under a working lr, in a net not known to have "
        "BatchNorm or skip connections: only the class frequencies were learnt (0 = off)",
        grid=(0.0, 0.2, 0.3, 0.4, 0.5),
    )
    ld207_score_tiny: float = _score(0.55, "LD207", "batch at most small_batch with an unstable run")
    ld207_score_small: float = _score(0.4, "LD207", "batch at most small_batch_noise")
    ld207_bonus_bn: float = _score(0.1, "LD207", "added: BatchNorm over the tiny batch (LD304)")
    ld207_penalty_blowup: float = _score(0.25, "LD207", "taken off: a blow-up without LD304")
    ld208_score_stall_blowup: float = _score(
        0.85, "LD208", "a loss/lr mismatch (LD306) with a stall or blow-up"
    )
    ld208_score_other: float = _score(0.5, "LD208", "a loss/lr mismatch with another symptom")
    ld208_score_tiny_lr: float = _score(
        0.6, "LD208", "an averaged loss with an lr for a sum (LD202 ranks first)"
    )
    ld208_score_huge_start: float = _p(
        0.5,
        "LD208",
        "a first loss above any untrained classifier's (LD110 with C unknown) with a stall or blow-up, "
        "the reduction not stated: a sum over samples, pixels or tokens is one way to start that high "
        "(0 = off)",
        (0.0, 0.3, 0.5, 0.7, 0.85),
    )
    ld209_score_primary: float = _score(0.85, "LD209", "overfitting is the verdict")
    ld209_memorised_ratio: float = _p(
        0.2,
        "LD209",
        "train loss at most this share of the best val loss counts as memorised",
        (0.1, 0.2, 0.3, 0.5),
    )
    ld209_score_gap_memorised: float = _score(
        0.6, "LD209", "an eval gap whose val loss stopped falling while training memorised"
    )
    ld209_score_secondary: float = _score(0.45, "LD209", "overfitting is a secondary symptom")
    ld210_score_early_nan: float = _score(
        0.55, "LD210", "NaN at once, without growth, high lr or a config defect"
    )
    ld210_score_sudden_nan: float = _score(0.4, "LD210", "a sudden NaN from a normal-looking loss")
    ld210_score_gap_without_bn: float = _score(
        0.6, "LD210", "an eval gap in a net known to have no BatchNorm"
    )
    ld210_score_gap: float = _score(0.45, "LD210", "an eval gap otherwise")
    ld210_score_periodic_spikes: float = _score(0.7, "LD210", "spikes at a fixed period")
    ld210_score_spikes: float = _score(0.4, "LD210", "other spikes")
    ld210_score_flat: float = _score(0.3, "LD210", "a flat run no config defect explains")

    # ----- LD112 spike recovery, LD211 fp16 loss-scale collapse (not fitted: the corpus has no
    # loss scaler; the numbers come from the scaler's arithmetic, see the docs) ---------------------
    ld112_min_spikes_warning: int = _p(
        1, "LD112", "a level shift after at least this many spikes is a warning (else information)"
    )
    # LD113 (not fitted: no labelled set has runs resumed onto other data; priors, checked on the
    # resumed runs of the corpus and the public logs, which it must leave alone)
    ld113_window: int = _p(10, "LD113", "logged points compared on each side of a restart")
    ld113_skip_points: int = _p(
        2, "LD113", "points after the restart left out (the first batches of a resumed job are noisier)"
    )
    ld113_min_ratio: float = _p(
        1.25, "LD113", "the loss after the restart at least this many times its level before it ..."
    )
    ld113_min_z: float = _p(
        4.0, "LD113", "... and this many robust deviations (1.4826 MAD of the log loss before) above it"
    )
    ld211_scale_floor: float = _p(
        1.0,
        "LD211",
        "a loss scale at or below this is at its floor (DeepSpeed's and Megatron's default minimum)",
    )
    ld211_slide_doublings: float = _p(
        8.0,
        "LD211",
        "the scale ended this many halvings below its peak: a slide, not the saw-tooth of a healthy scaler "
        "(which halves once per overflow and doubles after every window of clean steps)",
    )
    ld211_skipped_share: float = _p(
        0.05,
        "LD211",
        "skipped steps above this share of the steps (a healthy scaler skips about one per growth window, "
        "0.05-0.1 %)",
    )
    ld211_score_floor: float = _p(0.85, "LD211", "the scale reached its floor")
    ld211_score_slide: float = _p(0.75, "LD211", "the scale slid far below its peak")
    ld211_score_skipped: float = _p(0.6, "LD211", "many skipped steps")
    ld211_bonus_blowup: float = _p(0.05, "LD211", "the run blew up (NaN or diverged)")
    ld313_beta2_slow: float = _p(
        0.999,
        "LD313",
        "an Adam beta2 at least this (a ~1,000-step second-moment window) is slow to follow spikes",
    )


DEFAULT_PARAMS = Params()


def tunable_fields() -> list[Field]:
    """The Params fields a fit may set, each with its candidate `grid` (metadata)."""
    return [f for f in fields(Params) if "grid" in f.metadata]


def fields_of_rule(rule_id: str) -> list[Field]:
    """The Params fields a rule judges with (from their `rule` metadata)."""
    out = []
    for f in fields(Params):
        rule = f.metadata.get("rule", ())
        if rule == rule_id or (isinstance(rule, tuple) and rule_id in rule):
            out.append(f)
    return out


def shared_fields() -> list[Field]:
    """The fields of the feature layer and the runner, which no single rule owns."""
    return [f for f in fields(Params) if f.metadata.get("rule") == ()]
