"""LD2xx: why. Each cause rule weighs the primary symptom, the symptom rules' measurements and the
config checks, and returns the cause with its confidence, evidence and fixes (or None).

Cause rules read other rules' numbers (`Finding.measurements`), never their evidence sentences; every
score and bonus is a `Params` field (`ldNNN_score_*`, `ldNNN_bonus_*`, `ldNNN_penalty_*`) so a fit can
set it."""

from __future__ import annotations

import numpy as np

from diagnostics import fixes
from diagnostics.context import Context
from diagnostics.model import Cause, Evidence, Fix
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import fmt
from diagnostics.rules.config import (
    loss_is_normalized,
    missing_policy_fields,
    shallow_named_net,
    usual_lr_range,
)
from diagnostics.rules.generalisation import validation_fall
from parsers.config_facts import states_no_batchnorm

BLOW_UP = ("nan", "diverging")
UNSTABLE = ("nan", "diverging", "oscillating", "spiky")
STALLED = ("flat", "plateau")


def _symptom(ctx: Context) -> str:
    return ctx.primary.symptom if ctx.primary else "healthy"


def _evidence_of(ctx: Context, *rule_ids: str) -> list[Evidence]:
    return [e for rid in rule_ids for f in ctx.findings.get(rid, []) for e in f.evidence]


def _measured(ctx: Context, rule_id: str, name: str) -> float:
    """A measurement of a rule's (first) finding; 0 when the rule found nothing or did not measure it."""
    found = ctx.finding(rule_id)
    return found.measurements.get(name, 0.0) if found is not None else 0.0


def _cause(
    ctx: Context, cause_id: str, rule_id: str, score: float, evidence: list[Evidence], fix_list, rules
) -> RuleResult:
    rules = [rule_id, *[r for r in rules if r]]
    seen: set[tuple] = set()
    unique = []
    for e in evidence:  # several rules can report the same fact (e.g. the loss at ln(C))
        ident = (e.key, tuple(sorted((k, str(v)) for k, v in e.params.items())))
        if ident not in seen:
            seen.add(ident)
            unique.append(e)
    return RuleResult(
        cause=Cause(cause_id, min(score, ctx.params.cause_max_confidence), unique, fix_list, rules)
    )


def _lr_evidence(ctx: Context) -> list[Evidence]:
    if ctx.lr_value is None:
        return []
    name = "base_lr" if ctx.meta.framework == "caffe" else "lr"
    return [Evidence("evidence.lr_value", {"name": name, "lr": f"{ctx.lr_value:g}"}, quote=ctx.lr_quote)]


def _nan_step(ctx: Context) -> int | None:
    s = ctx.symptoms.get("nan")
    return s.onset_step if s else None


def _grew_before_nan(ctx: Context) -> bool:
    """LD101: the finite loss (or another training metric) grew before it turned non-finite."""
    return _measured(ctx, "LD101", "grew_before_nan") > 0


def _sudden_nan_evidence(ctx: Context) -> Evidence | None:
    """The last good training loss before the NaN, against the first: a NaN out of a loss that had not
    grown comes from one batch or one operation more often than from steps that grew too large."""
    curve = ctx.train_loss
    if curve is None or len(curve.trend_index) < 2 or not curve.trend_values[0] > 0:
        return None
    first, last = float(curve.trend_values[0]), float(curve.trend_values[-1])
    step = int(curve.steps[curve.trend_index[-1]])
    params = {"step": step, "before": fmt(last), "first": fmt(first), "pct": round(100 * last / first)}
    return Evidence("evidence.nan_without_growth", params, step)


def _lr_flag(ctx: Context) -> float:
    """LD309's verdict: +1 the lr is above the usual range, -1 below it, 0 inside it (or unknown)."""
    return _measured(ctx, "LD309", "lr_flag")


def _overshot(ctx: Context) -> bool:
    """LD115: the loss climbed back as the lr kept rising, so the run itself showed its lr too high."""
    return ctx.finding("LD115") is not None


def _range_test_fix(ctx: Context) -> list[Fix]:
    """Scale the lr (and so its peak) to the lr at the lowest loss over `ld115_lr_divisor` (LD115)."""
    low, peak = _measured(ctx, "LD115", "lr_at_low"), _measured(ctx, "LD115", "lr_peak")
    divisor = ctx.params.ld115_lr_divisor
    reason = {"lr_low": f"{low:.3g}", "divisor": f"{divisor:g}"}
    return fixes.change_lr(ctx, low / divisor / peak, "fixes.lr_from_warmup", reason)


def _broken_lr_policy(ctx: Context):
    """LD307's finding when the schedule breaks the run from the start (NaN/negative lr, poly without
    max_iter); a missing gamma only matters at the first step decay and explains no blow-up."""
    found = ctx.finding("LD307")
    return found if found is not None and found.severity == "critical" else None


def _huge_start(ctx: Context) -> bool:
    """LD110: the loss was many times ln(C) before any update, so the inputs or the init make the logits
    huge (not the lr, which has not acted yet, nor a bad batch). A summed loss (LD306) is huge anyway."""
    summed = loss_is_normalized(ctx) is False
    return ctx.finding("LD110") is not None and not summed and ctx.finding("LD306") is None


def _known_without_bn(ctx: Context) -> bool:
    """The log lists the whole net (Caffe's prototxt, Keras's `model.summary()`) and it has no BatchNorm
    layer, or its settings say it has none (`batch_norm: false`, a transformer or recurrent net)."""
    listed = ctx.meta.framework in ("caffe", "keras") and ctx.meta.depth is not None
    return not ctx.meta.batchnorm and (listed or states_no_batchnorm(ctx.meta))


def _validation_fall(ctx: Context) -> float:
    """How far the validation loss came down (share of where it began); 0 when it is not logged."""
    val, train = ctx.val_loss, ctx.train_loss
    if val is None or train is None or train.first_finite is None:
        return 0.0
    finite = val.values[np.isfinite(val.values)]
    return validation_fall(train.first_finite, finite) if len(finite) else 0.0


def _val_erratic(ctx: Context) -> bool:
    return _measured(ctx, "LD107", "val_erratic") > 0


def _collapsed(ctx: Context) -> bool:
    """The loss started well above ln(C) and dropped straight onto it: a collapse to a constant
    prediction, which too large steps cause (an lr that is too small would leave it where it was).
    Caffe's raw clamp values 87.3365 on the way are the same collapse seen per batch."""
    curve, lnc = ctx.train_loss, ctx.lnc
    if curve is None or lnc is None or not ctx.at_chance(curve.end_level) or not len(curve):
        return False
    values = curve.trend_values
    if not len(values):
        return False
    p = ctx.params
    early_peak = float(np.max(values[: max(2, len(values) // p.collapse_early_parts)]))
    return (
        float(values[0]) > p.collapse_first_over_lnc * lnc
        or early_peak > p.collapse_peak_over_lnc * lnc
        or ctx.finding("LD101") is not None
    )


def _never_near_chance(ctx: Context) -> bool:
    """The loss (averaged) never came below `ld110_initial_ratio` x ln(C): the logits stayed huge. A normal
    init starts at ln(C) and a too small lr keeps it there; staying far above it takes huge inputs or
    weights thrown far by large steps."""
    curve, lnc = ctx.train_loss, ctx.lnc
    if curve is None or lnc is None or loss_is_normalized(ctx) is False or ctx.finding("LD114") is not None:
        return False  # a summed loss is that large whatever the logits
    return curve.min_level >= ctx.params.ld110_initial_ratio * lnc


def _spike_fixes(ctx: Context, reading: str) -> list[Fix]:
    """LD112's remedies, with the run's steps: `fast` spikes (a bad batch meeting a parameter state)
    are skipped after a rollback; spikes `at_warmup_end` ask for a longer warm-up."""
    found = ctx.finding("LD112")
    if found is None or not found.measurements.get(reading):
        return []
    if reading == "fast":
        return [fixes.rollback_spike(int(found.measurements["tallest_step"]))]
    evidence = next(e for e in found.evidence if e.key == "evidence.spikes_at_warmup_end")
    return [fixes.longer_warmup(ctx, int(evidence.params["warmup_steps"]))]


def _collapse_evidence(ctx: Context) -> Evidence:
    assert ctx.train_loss is not None and ctx.classes is not None and ctx.lnc is not None
    params = {
        "first": f"{float(ctx.train_loss.trend_values[0]):.4g}",
        "c": ctx.classes[0],
        "lnc": round(ctx.lnc, 4),
    }
    return Evidence("evidence.collapsed_to_chance", params, int(ctx.train_loss.steps[0]))


def _held_above_chance_evidence(ctx: Context) -> Evidence:
    assert ctx.train_loss is not None and ctx.classes is not None and ctx.lnc is not None
    best = ctx.train_loss.min_level
    ratio = f"{best / ctx.lnc:.3g}"
    params = {"best": fmt(best), "ratio": ratio, "c": ctx.classes[0], "lnc": round(ctx.lnc, 4)}
    return Evidence("evidence.held_above_chance", params, int(ctx.train_loss.steps[0]))


@rule("LD201", "lr-too-high", curves=("train_loss",), cause="lr_too_high")
def lr_too_high(ctx: Context) -> RuleResult | None:
    s, p = _symptom(ctx), ctx.params
    flagged, overshot = _lr_flag(ctx) > 0, _overshot(ctx)
    high = flagged or overshot  # above the usual range, or the run's own warm-up showed it
    grew = _grew_before_nan(ctx) or "diverging" in ctx.symptoms
    if s in BLOW_UP:
        score = (
            p.ld201_score_blowup
            + (p.ld201_bonus_grew if grew else 0)
            + (p.ld201_bonus_lr_high if high else 0)
        )
        if s == "nan" and not high and not grew:
            # NaN from a normal lr, with no growth before it (at once, or late out of a falling loss):
            # one bad batch or a log(0) is as likely as the lr.
            score = p.ld201_score_sudden_nan
    elif s == "oscillating":
        score = p.ld201_score_oscillating + (p.ld201_bonus_oscillating_lr_high if high else 0)
    elif s == "spiky":
        score = p.ld201_score_spiky + (p.ld201_bonus_spiky_lr_high if high else 0)
    elif s in STALLED and (_collapsed(ctx) or _never_near_chance(ctx)):
        # collapsed onto ln(C), or held far above it: large steps as much as huge inputs (LD203)
        score = p.ld201_score_collapsed + (p.ld201_bonus_collapsed_lr_high if high else 0)
    elif s in STALLED and high:
        score = p.ld201_score_stalled_lr_high
        if _uniform_at_init(ctx):
            score -= p.ld201_penalty_uniform_start  # held at ln(C) from the start: no step too large
    else:
        return None
    if _huge_start(ctx) and not high:
        score -= p.ld201_penalty_huge_start  # the logits were huge before the lr acted
    if ctx.frozen_bn or (ctx.finding("LD306") and s in BLOW_UP):
        score -= p.ld201_penalty_config  # a config defect explains the blow-up better
    evidence = _evidence_of(ctx, "LD101", "LD102", "LD105", "LD108", "LD112") + _lr_evidence(ctx)
    if s in STALLED and _collapsed(ctx):
        evidence.insert(0, _collapse_evidence(ctx))
    elif s in STALLED and _never_near_chance(ctx):
        evidence.insert(0, _held_above_chance_evidence(ctx))
    evidence += _evidence_of(ctx, "LD309", "LD115")
    lower = _range_test_fix(ctx) if overshot else fixes.change_lr(ctx, 1 / p.lr_cut, "fixes.lower_lr")
    fix_list = [*lower, fixes.clip_gradients(ctx)]
    if s in BLOW_UP and not _measured(ctx, "LD111", "warmup"):  # a run that warms up already has one
        fix_list.append(fixes.warmup(ctx))
    if s in UNSTABLE:
        fix_list += _spike_fixes(ctx, "at_warmup_end")
    if ctx.finding("LD313") is not None:
        evidence += _evidence_of(ctx, "LD313")
        fix_list.append(fixes.adam_beta2(ctx))
    policy = _broken_lr_policy(ctx)
    if policy:
        score += p.ld201_bonus_broken_policy  # a broken lr schedule (NaN or negative lr) blows the run up
        evidence += policy.evidence
        fix_list.insert(0, fixes.lr_policy(ctx, missing_policy_fields(ctx)))
    return _cause(
        ctx,
        "lr_too_high",
        "LD201",
        score,
        evidence,
        fix_list,
        ["LD309" if flagged else "", "LD115" if overshot else "", "LD307" if policy else ""],
    )


@rule("LD202", "lr-too-low", curves=("train_loss",), cause="lr_too_low")
def lr_too_low(ctx: Context) -> RuleResult | None:
    s, p, lr = _symptom(ctx), ctx.params, ctx.lr_value
    if s not in STALLED:
        return None
    flag = _lr_flag(ctx)
    if lr is not None and lr <= p.tiny_lr:
        score = p.ld202_score_tiny_lr
    elif flag < 0:
        score = p.ld202_score_lr_low
    elif _measured(ctx, "LD104", "stalled_after_lr_decay") > 0:
        score = (
            p.ld202_score_after_decay
        )  # the loss stopped where the lr was cut: the remaining lr is too small
    elif lr is None:
        # the log does not say: keep the lr among the suspects
        score = p.ld202_score_unknown_lr_flat if s == "flat" else p.ld202_score_unknown_lr_plateau
    else:
        # An ordinary lr: for a plateau, slow convergence is still the most common reason (AUTOTRAINER's
        # most frequent repair); for a loss that never moved, it is not the first suspect.
        score = p.ld202_score_plateau if s == "plateau" else p.ld202_score_flat
    if lr is not None and lr <= p.tiny_lr and s == "flat":
        # A loss that never moved under an lr orders of magnitude below any working one: the lr first,
        # before a missing init or pretraining (a net from scratch still moves with a working lr).
        score = p.ld202_score_tiny_lr_flat
    creep = _still_creeping(ctx)
    creeping = None if _working_lr(ctx) else creep  # under a working lr the creep is LD205's reading
    if creeping is not None:
        score = max(score, p.ld202_score_creeping)
    # Logits that stayed huge under an lr not known to be small: a large step, not a small one.
    huge_logits = _never_near_chance(ctx) and flag >= 0 and not (lr is not None and lr <= p.tiny_lr)
    if flag > 0 or _overshot(ctx) or (_collapsed(ctx) and creep is None) or huge_logits:
        score = p.ld202_score_large_step  # a large step, not a small one, explains this stall
    evidence = _evidence_of(ctx, "LD103", "LD104") + _lr_evidence(ctx) + _evidence_of(ctx, "LD309")
    if creeping is not None:
        evidence.insert(0, creeping)
    return _cause(
        ctx,
        "lr_too_low",
        "LD202",
        score,
        evidence,
        fixes.change_lr(ctx, _raise_factor(ctx), "fixes.raise_lr"),
        ["LD309" if flag else ""],
    )


def _raise_factor(ctx: Context) -> float:
    """How much to raise a too-small lr: 10x, or straight to the low end of the usual range when it is
    far below it (Caffe's 1e-9). A PyTorch-ecosystem run trained from scratch goes to its optimiser's
    usual starting lr (Adam's default 1e-3, SGD 1e-2): the corpus's closed loop re-trained 1,000x-too-
    small runs at the range's low end (1e-6) and they stayed flat (sample_logs/corpus/closed_loop.csv)."""
    p, lr = ctx.params, ctx.lr_value
    if not lr:
        return p.lr_raise
    factor = max(p.lr_raise, usual_lr_range(ctx)[0] / lr)
    if fixes.is_caffe(ctx) or ctx.meta.pretrained:
        return factor
    start = p.start_lr_adaptive if ctx.optimizer_is_adaptive or ctx.meta.optimizer is None else p.start_lr_sgd
    return max(factor, start / lr)


def _working_lr(ctx: Context) -> bool:
    """The lr is at least `ld202_creep_working_lr` (0 = the reading is off) and not above its optimiser's
    usual range (LD309): large enough that a loss creeping down under it is not held back by the step
    size, and not so large that the step itself explains the stall."""
    floor, lr = ctx.params.ld202_creep_working_lr, ctx.lr_value
    return floor > 0 and lr is not None and lr >= floor and _lr_flag(ctx) <= 0


def _still_creeping(ctx: Context) -> Evidence | None:
    """The stalled loss still falls steadily over the last half of the run (Kendall tau at or below
    `ld202_creeping_tau`): each step helps a little. Under a tiny lr the steps are too small; under a
    working lr (`_working_lr`) what trains is small: in the corpus, a head on layers frozen at random
    weights creeps like this, while a loss with no signal to learn wanders around its level. Measured
    once per run: LD202 and LD205 both read it."""
    return ctx.measure("still_creeping", lambda: _measure_creep(ctx))


def _measure_creep(ctx: Context) -> Evidence | None:
    curve = ctx.train_loss
    if curve is None or len(curve.by) < ctx.params.ld202_creeping_min_points:
        return None
    tau = curve.tau_between(ctx.params.ld202_creeping_from, 1.0)
    if tau > ctx.params.ld202_creeping_tau:
        return None
    return Evidence("evidence.still_creeping", {"tau": round(tau, 2)}, int(curve.bx[len(curve.bx) // 2]))


@rule("LD203", "input-scale-mismatch", curves=("train_loss",), cause="input_scale")
def input_scale(ctx: Context) -> RuleResult | None:
    s, p = _symptom(ctx), ctx.params
    if s == "healthy":
        return None
    rescaled, mean_scaled, high_start = ctx.finding("LD303"), ctx.finding("LD302"), ctx.finding("LD110")
    score = 0.0
    if rescaled and s in STALLED:
        score = p.ld203_score_rescaled + (p.ld203_bonus_at_chance if ctx.finding("LD109") else 0)
    elif mean_scaled:
        score = p.ld203_score_mean_scaled
    elif (
        high_start
        and _huge_start(ctx)
        and ctx.meta.input_scale is None
        and s in (*BLOW_UP, *STALLED)
        and _lr_flag(ctx) <= 0  # an lr flagged as high makes the first logged losses huge as well
    ):
        score = p.ld203_score_huge_start  # unscaled inputs: the loss was huge at the first forward pass
    elif rescaled:
        score = p.ld203_score_rescaled_other
    units = ctx.finding("LD312")
    if units is not None and units.severity == "critical":
        score = max(score, p.ld203_score_norm_units)
    if rescaled and ctx.finding("LD308"):
        # Fixed small gaussians shrink the signal by std*sqrt(fan_in) per layer in a deep plain net:
        # no input scale rescues that, so the init (LD206) ranks first.
        score -= p.ld203_penalty_gaussian
    if not score:
        return None
    evidence = _evidence_of(ctx, "LD312", "LD303", "LD302", "LD110", "LD109", "LD103", "LD104")
    fix_list = fixes.input_scale(ctx)
    if mean_scaled:
        fix_list.insert(0, fixes.mean_in_raw_units(ctx))
    return _cause(
        ctx,
        "input_scale",
        "LD203",
        score,
        evidence,
        fix_list,
        ["LD303" if rescaled else "", "LD302" if mean_scaled else "", "LD312" if units else ""],
    )


@rule("LD204", "batchnorm-statistics", curves=("train_loss",), cause="bn_stats")
def bn_stats(ctx: Context) -> RuleResult | None:
    s, p = _symptom(ctx), ctx.params
    if s == "healthy":
        return None
    frozen = ctx.finding("LD301")
    flagged = ctx.finding("LD311")
    tiny = ctx.finding("LD304")
    has_bn = bool(ctx.meta.batchnorm)
    if frozen and frozen.severity == "critical":
        score = p.ld204_score_frozen
    elif flagged:
        score = p.ld204_score_bn_flag_scratch
    elif frozen:
        score = p.ld204_score_frozen_intended
    elif tiny and s in (*UNSTABLE, "eval_gap"):
        score = p.ld204_score_tiny_batch
    elif s == "eval_gap":
        # The usual reason: BatchNorm in the wrong mode or with statistics that do not match training.
        # Only a net known to have no BatchNorm (Caffe dumps the whole net) points elsewhere.
        if _known_without_bn(ctx):
            score = p.ld204_score_gap_without_bn
        elif 0 < p.ld204_gap_generalised <= _validation_fall(ctx):
            # The evaluated net came a long way down with training: its evaluation works, so the
            # gap is memorisation, not statistics that were wrong from the start.
            score = p.ld204_score_gap
        else:
            score = p.ld204_score_gap_bn if has_bn or _val_erratic(ctx) else p.ld204_score_gap
    else:
        return None
    evidence = _evidence_of(ctx, "LD301", "LD311", "LD304", "LD107")
    return _cause(
        ctx,
        "bn_stats",
        "LD204",
        score,
        evidence,
        fixes.bn_batch_stats(ctx),
        ["LD301" if frozen else "", "LD311" if flagged else "", "LD304" if tiny else ""],
    )


@rule("LD205", "no-pretrained-weights", curves=("train_loss",), cause="no_pretraining")
def no_pretraining(ctx: Context) -> RuleResult | None:
    s, p = _symptom(ctx), ctx.params
    arch = ctx.deep_architecture
    frozen_random = ctx.finding("LD310")
    if frozen_random is not None and s != "healthy":
        # Layers that never train and never got weights: whatever the curve does, they hold it back.
        evidence = _evidence_of(ctx, "LD310", "LD305", "LD103", "LD104", "LD109")
        return _cause(
            ctx,
            "no_pretraining",
            "LD205",
            p.ld205_score_frozen_random,
            evidence,
            fixes.pretrained(ctx),
            ["LD310"],
        )
    if s not in STALLED or ctx.meta.pretrained:
        return None
    score, evidence, rules = 0.0, [], []
    named_deep = arch is not None and not shallow_named_net(ctx)
    if named_deep:
        scratch = ctx.finding("LD305")
        segmentation = arch in ("fcn", "deeplab", "segnet", "unet")
        # without LD305 the log does not say whether weights were loaded
        if scratch:
            score = p.ld205_score_segmentation if segmentation else p.ld205_score_scratch
        else:
            score = p.ld205_score_unknown
        if ctx.finding("LD303") or ctx.finding("LD308"):
            score -= p.ld205_penalty_config  # a config defect explains the stall better
        evidence = _evidence_of(ctx, "LD305", "LD103", "LD104", "LD109")
        rules = ["LD305" if scratch else ""]
    creeping = _still_creeping(ctx) if _working_lr(ctx) else None
    if creeping is not None:
        # A steady creep under a working lr: each step helps, but little moves, as when only a head
        # trains on layers frozen at random weights.
        assert ctx.lr_value is not None
        reading = Evidence(
            "evidence.creeping_working_lr",
            {**creeping.params, "lr": f"{ctx.lr_value:g}"},
            creeping.step,
            quote=ctx.lr_quote,
        )
        score = max(score, p.ld205_score_creeping)
        evidence = [reading, *(evidence if named_deep else _evidence_of(ctx, "LD103", "LD104"))]
    elif not named_deep:
        return None
    return _cause(ctx, "no_pretraining", "LD205", score, evidence, fixes.pretrained(ctx), rules)


def _uniform_at_init(ctx: Context) -> bool:
    """The untrained net already predicted exactly 1/C (loss within 0.5% of ln(C), not above it as a
    normal init's random logits give) under an lr of at least `ld202_creep_working_lr` (a high one too:
    a large step moves the loss, it does not hold it at ln(C)) and from a first loss that was not
    huge: its logits were ~0 from the start, the forward signal vanished at
    initialisation. Without the lr, or under a small one, a too small lr stays the first suspect (the
    corpus's 1,000x-too-small MLPs sit at ln(C) too); in a net with BatchNorm or skip connections the
    signal cannot vanish (each layer's output is renormalised or carried past it), so a uniform start
    there says nothing about the init."""
    curve, lnc = ctx.train_loss, ctx.lnc
    if curve is None or lnc is None or ctx.finding("LD110") or _lr_flag(ctx) < 0:
        return False
    if ctx.meta.batchnorm or ctx.meta.has_residual:
        return False
    floor = ctx.params.ld202_creep_working_lr
    if ctx.lr_value is None or ctx.lr_value <= ctx.params.tiny_lr or ctx.lr_value < floor:
        return False  # under a small lr an untouched ln(C) may just be a net that has not moved yet
    return abs(curve.start_level - lnc) <= ctx.params.ld206_uniform_tolerance * lnc


def _prior_only(ctx: Context) -> Evidence | None:
    """A plateau whose evaluated answers never changed (`Context.eval_accuracy_frozen`) under a working
    lr (`_working_lr`): the loss fell as far as learning how often each class occurs takes it (the output
    bias: ln(C) down to the entropy of the class frequencies, as a segmentation net's background does)
    and stopped, and nothing from the inputs ever changed an answer. No signal reaches the output
    (vanishing through a deep net with a small init, inputs scaled to almost nothing, layers frozen at
    random weights); a too small lr, once the prior is learnt, still changes answers little by little."""
    if _symptom(ctx) != "plateau" or not _working_lr(ctx):
        return None
    frozen = ctx.eval_accuracy_frozen()
    curve = ctx.train_loss
    if frozen is None or curve is None:
        return None
    params = {"first": fmt(curve.start_level), "end": fmt(curve.end_level), "evals": frozen[1]}
    return Evidence("evidence.prior_only", params, int(curve.steps[-1]))


@rule("LD206", "deep-net-initialisation", curves=("train_loss",), cause="depth_init")
def depth_init(ctx: Context) -> RuleResult | None:
    s, p = _symptom(ctx), ctx.params
    gaussian = ctx.finding("LD308")
    meta = ctx.meta
    # The prior learnt and nothing else is a lost signal only where it can be lost (no BatchNorm or skip
    # connections renormalising or carrying it).
    prior_only = None if meta.batchnorm or meta.has_residual else _prior_only(ctx)
    at_chance = s in STALLED and ctx.finding("LD109")
    if s not in (*STALLED, *BLOW_UP) or not (gaussian or at_chance or prior_only):
        return None
    if not gaussian and any(f.type in ("xavier", "msra") for f in meta.weight_fillers):
        return None  # a scaled init keeps the signal; LD206 is about fixed small gaussians
    plain = not meta.batchnorm and not meta.has_residual and (meta.depth or 0) >= p.deep_layers
    if gaussian:
        score = p.ld206_score_gaussian_stall if s in STALLED else p.ld206_score_gaussian
    elif at_chance:
        score = p.ld206_score_plain if plain else p.ld206_score_other
    else:
        score = p.ld206_score_prior_only
    evidence = _evidence_of(ctx, "LD308", "LD103", "LD109")
    fix_list = fixes.init(ctx)
    if prior_only is not None:
        evidence.insert(0, prior_only)
        if not gaussian and not fixes.is_caffe(ctx):
            # The curves show the signal lost, not where: inputs scaled to almost nothing and layers frozen
            # at random weights are the other two ways (a Caffe log's settings are judged by LD303/LD310).
            fix_list += fixes.input_scale(ctx)[:1] + fixes.pretrained(ctx)[:1]
    if s == "flat" and _uniform_at_init(ctx):
        score = max(score, p.ld206_score_uniform_at_init)
        assert ctx.train_loss is not None and ctx.lnc is not None and ctx.lr_value is not None
        params = {
            "first": f"{ctx.train_loss.start_level:.4g}",
            "lnc": round(ctx.lnc, 4),
            "lr": f"{ctx.lr_value:g}",
        }
        evidence.insert(0, Evidence("evidence.uniform_at_init", params, int(ctx.train_loss.steps[0])))
    return _cause(ctx, "depth_init", "LD206", score, evidence, fix_list, ["LD308" if gaussian else ""])


@rule("LD207", "small-batch", curves=("train_loss",), cause="small_batch", meta=("batch_size",))
def small_batch(ctx: Context) -> RuleResult | None:
    s, p, batch = _symptom(ctx), ctx.params, ctx.meta.batch_size
    assert batch is not None
    tiny_bn = ctx.finding("LD304") is not None
    # Noise shows as instability or an eval gap; BatchNorm over 1-2 samples (LD304) also stalls a run.
    if batch > p.small_batch_noise or s not in (*UNSTABLE, "eval_gap", *(STALLED if tiny_bn else ())):
        return None
    score = p.ld207_score_tiny if batch <= p.small_batch else p.ld207_score_small
    if tiny_bn:
        score += p.ld207_bonus_bn
    elif s in BLOW_UP:
        # Small batches make the curve noisy; a blow-up needs BatchNorm on them (LD304) to follow.
        # Detectors train with 2 images per GPU and frozen BatchNorm as a matter of course.
        score -= p.ld207_penalty_blowup
    evidence = [Evidence("evidence.batch_size", {"batch": batch}, quote=ctx.quote("batch_size"))]
    evidence += _evidence_of(ctx, "LD304", "LD105", "LD108")
    return _cause(
        ctx,
        "small_batch",
        "LD207",
        score,
        evidence,
        fixes.small_batch(ctx),
        ["LD304" if ctx.finding("LD304") else ""],
    )


@rule("LD208", "loss-normalization", curves=("train_loss",), cause="loss_normalization")
def loss_normalization(ctx: Context) -> RuleResult | None:
    s, p = _symptom(ctx), ctx.params
    # The settings (LD306), or the curves themselves (LD114: a training loss the batch size times the
    # evaluation loss), show the loss and the lr do not match.
    found, summed = ctx.finding("LD306"), ctx.finding("LD114")
    # Or only the first loss: above any untrained classifier's (LD110 with C unknown: over 3x ln of
    # 100,000 classes; a few times a known ln(C) is what huge logits give), from a loss whose reduction
    # the log does not state (a stated one, LD306 judges against the lr). A sum is one of the ways to
    # start that high (huge logits are the other, LD203/LD201).
    huge = (
        not (found or summed)
        and _measured(ctx, "LD110", "classes_unknown") > 0
        and loss_is_normalized(ctx) is None
    )
    if not (found or summed or huge) or s == "healthy":
        return None
    score = p.ld208_score_stall_blowup if s in (*STALLED, *BLOW_UP) else p.ld208_score_other
    if found and found.measurements.get("lr_for_other_loss", 0.0) > 0 and not summed:
        # The loss IS averaged, so for the loss as configured the lr is simply too low (LD202 ranks
        # first); summing the loss instead is the second way out.
        score = p.ld208_score_tiny_lr
    if huge:
        score = p.ld208_score_huge_start if s in (*STALLED, *BLOW_UP) else 0.0
        if not score:
            return None
    evidence = _evidence_of(ctx, "LD306", "LD114", *(("LD110",) if huge else ())) + _lr_evidence(ctx)
    return _cause(
        ctx,
        "loss_normalization",
        "LD208",
        score,
        evidence,
        fixes.loss_normalization(ctx, suspected=huge),
        ["LD306" if found else "", "LD114" if summed else "", "LD110" if huge else ""],
    )


@rule("LD209", "overfitting", curves=("train_loss",), cause="overfitting")
def overfitting(ctx: Context) -> RuleResult | None:
    p = ctx.params
    s = ctx.symptoms.get("overfitting")
    if s is not None:
        score = p.ld209_score_primary if _symptom(ctx) == "overfitting" else p.ld209_score_secondary
        return _cause(
            ctx,
            "overfitting",
            "LD209",
            score,
            _evidence_of(ctx, "LD106"),
            fixes.overfitting(ctx, s.onset_step),
            [],
        )
    memorised = _memorised(ctx) if _symptom(ctx) == "eval_gap" else None
    if memorised is None:
        return None
    evidence = [memorised, *_evidence_of(ctx, "LD107")]
    return _cause(
        ctx,
        "overfitting",
        "LD209",
        p.ld209_score_gap_memorised,
        evidence,
        fixes.overfitting(ctx, memorised.step),
        ["LD107"],
    )


def _memorised(ctx: Context) -> Evidence | None:
    """An eval gap of memorisation: the training loss went far below the best validation loss, and the
    validation loss (not erratic) stopped falling once training took off. A broken evaluation (BatchNorm
    statistics, another preprocessing) is erratic or never improves at all; in a net known to have no
    BatchNorm, a val loss that never fell is memorisation from the first epoch (a tiny data set)."""
    p, train, val = ctx.params, ctx.train_loss, ctx.val_loss
    if train is None or val is None or _measured(ctx, "LD107", "val_erratic") > 0:
        return None
    ok = np.isfinite(val.values)
    vx, vy = val.steps[ok], val.values[ok]
    if len(vy) < 3:
        return None
    best = int(np.argmin(vy))
    if train.end_level > p.ld209_memorised_ratio * float(vy[best]):
        return None  # not memorised
    if vy[0] <= vy[best] and not _known_without_bn(ctx):
        return None  # a val loss that never fell at all, where BatchNorm may have broken the evaluation
    params = {"train": fmt(train.end_level), "val_min": fmt(float(vy[best])), "step": int(vx[best])}
    return Evidence("evidence.memorised", params, int(vx[best]))


@rule("LD210", "data-problem", curves=("train_loss",), cause="data_issue")
def data_issue(ctx: Context) -> RuleResult | None:
    s, p = _symptom(ctx), ctx.params
    nan_step = _nan_step(ctx)
    early_nan = nan_step is not None and nan_step <= p.nan_early_steps
    high = _lr_flag(ctx) > 0
    # Spikes at a fixed period (LD108): the same bad data met every pass, whichever symptom leads.
    periodic = _measured(ctx, "LD108", "periodic_spikes") > 0
    explained = bool(
        ctx.frozen_bn
        or ctx.finding("LD303")
        or _broken_lr_policy(ctx)
        or ctx.finding("LD306")
        or _huge_start(ctx)
    )
    sudden = None
    if s == "nan" and early_nan and not high and not explained and not _grew_before_nan(ctx):
        score = p.ld210_score_early_nan
    elif s == "nan" and not _grew_before_nan(ctx) and not explained:
        score = p.ld210_score_sudden_nan  # a sudden NaN from a normal-looking loss: a bad sample or a log(0)
        sudden = _sudden_nan_evidence(ctx)
    elif s == "eval_gap":
        score = p.ld210_score_gap_without_bn if _known_without_bn(ctx) else p.ld210_score_gap
        if periodic:  # bad batches that a net learns to fit generalise badly: one cause for both readings
            score = max(score, p.ld210_score_periodic_spikes)
    elif s == "spiky":
        score = p.ld210_score_periodic_spikes if periodic else p.ld210_score_spikes
    elif s == "flat" and not explained:
        score = p.ld210_score_flat
    else:
        return None
    evidence = _evidence_of(ctx, "LD101", "LD107", "LD108", "LD112", "LD103", "LD109")
    if sudden is not None:
        evidence.insert(1, sudden)
    fix_list = fixes.check_data(ctx)
    if s in UNSTABLE:
        fix_list = [*_spike_fixes(ctx, "fast"), *fix_list]
    if s == "eval_gap":
        fix_list.insert(0, fixes.eval_pipeline(ctx))
    return _cause(ctx, "data_issue", "LD210", score, evidence, fix_list, [])
