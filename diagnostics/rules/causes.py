"""LD2xx: why. Each cause rule weighs the primary symptom, the symptom rules' measurements and the
config checks, and returns the cause with its confidence, evidence and fixes (or None)."""

from __future__ import annotations

import numpy as np

from diagnostics import fixes
from diagnostics.context import Context
from diagnostics.model import Cause, Evidence
from diagnostics.registry import RuleResult, rule
from diagnostics.rules.config import usual_lr_range

BLOW_UP = ("nan", "diverging")
UNSTABLE = ("nan", "diverging", "oscillating", "spiky")
STALLED = ("flat", "plateau")


def _symptom(ctx: Context) -> str:
    return ctx.primary.symptom if ctx.primary else "healthy"


def _evidence_of(ctx: Context, *rule_ids: str) -> list[Evidence]:
    return [e for rid in rule_ids for f in ctx.findings.get(rid, []) for e in f.evidence]


def _cause(
    cause_id: str, rule_id: str, score: float, evidence: list[Evidence], fix_list, rules
) -> RuleResult:
    rules = [rule_id, *[r for r in rules if r]]
    seen: set[tuple] = set()
    unique = []
    for e in evidence:  # several rules can report the same fact (e.g. the loss at ln(C))
        ident = (e.key, tuple(sorted((k, str(v)) for k, v in e.params.items())))
        if ident not in seen:
            seen.add(ident)
            unique.append(e)
    return RuleResult(cause=Cause(cause_id, min(score, 0.97), unique, fix_list, rules))


def _lr_evidence(ctx: Context) -> list[Evidence]:
    if ctx.lr_value is None:
        return []
    name = "base_lr" if ctx.meta.framework == "caffe" else "lr"
    return [Evidence("evidence.lr_value", {"name": name, "lr": f"{ctx.lr_value:g}"}, quote=ctx.lr_quote)]


def _nan_step(ctx: Context) -> int | None:
    s = ctx.symptoms.get("nan")
    return s.onset_step if s else None


def _grew_before_nan(ctx: Context) -> bool:
    grew = ("evidence.growth_before_nan", "evidence.companion_exploded")
    return any(e.key in grew for e in _evidence_of(ctx, "LD101"))


def _lr_flag(ctx: Context) -> str | None:
    """LD309's verdict as "evidence.lr_high" / "evidence.lr_low" (whether or not the optimiser is known)."""
    found = ctx.finding("LD309")
    return found.evidence[0].key.removesuffix("_any") if found else None


def _broken_lr_policy(ctx: Context):
    """LD307's finding when the schedule breaks the run from the start (NaN/negative lr, poly without
    max_iter); a missing gamma only matters at the first step decay and explains no blow-up."""
    found = ctx.finding("LD307")
    return found if found is not None and found.severity == "critical" else None


def _huge_start(ctx: Context) -> bool:
    """LD110: the loss was many times ln(C) before any update, so the inputs or the init make the logits
    huge (not the lr, which has not acted yet, nor a bad batch). A summed loss (LD306) is huge anyway."""
    summed = ctx.meta.loss_normalize is False or (ctx.meta.loss_normalization or "").upper() == "NONE"
    return ctx.finding("LD110") is not None and not summed and ctx.finding("LD306") is None


def _known_without_bn(ctx: Context) -> bool:
    """The log lists the whole net (Caffe) and it has no BatchNorm layer."""
    return ctx.meta.framework == "caffe" and not ctx.meta.batchnorm and ctx.meta.depth is not None


def _val_erratic(ctx: Context) -> bool:
    return any(e.key == "evidence.val_erratic" for e in _evidence_of(ctx, "LD107"))


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
    early_peak = float(np.max(values[: max(2, len(values) // 10)]))
    return float(values[0]) > 1.05 * lnc or early_peak > 1.5 * lnc or ctx.finding("LD101") is not None


def _collapse_evidence(ctx: Context) -> Evidence:
    assert ctx.train_loss is not None and ctx.classes is not None and ctx.lnc is not None
    params = {
        "first": f"{float(ctx.train_loss.trend_values[0]):.4g}",
        "c": ctx.classes[0],
        "lnc": round(ctx.lnc, 4),
    }
    return Evidence("evidence.collapsed_to_chance", params, int(ctx.train_loss.steps[0]))


@rule("LD201", "lr-too-high", curves=("train_loss",), cause="lr_too_high")
def lr_too_high(ctx: Context) -> RuleResult | None:
    s = _symptom(ctx)
    nan_step = _nan_step(ctx)
    early_nan = nan_step is not None and nan_step <= ctx.params.nan_early_steps
    high = _lr_flag(ctx) == "evidence.lr_high"
    grew = _grew_before_nan(ctx) or "diverging" in ctx.symptoms
    if s in BLOW_UP:
        score = 0.6 + (0.2 if grew else 0) + (0.15 if high else 0)
        if early_nan and not high and not grew:
            score = 0.45  # NaN at once from a normal lr: the data is as likely
    elif s == "oscillating":
        score = 0.65 + (0.15 if high else 0)
    elif s == "spiky":
        score = 0.45 + (0.15 if high else 0)
    elif s in STALLED and _collapsed(ctx):
        score = 0.5 + (0.2 if high else 0)
    elif s in STALLED and high:
        score = 0.45
    else:
        return None
    if _huge_start(ctx) and not high:
        score -= 0.15  # the logits were huge before the lr acted
    if ctx.frozen_bn or (ctx.finding("LD306") and s in BLOW_UP):
        score -= 0.3  # a config defect explains the blow-up better
    evidence = _evidence_of(ctx, "LD101", "LD102", "LD105", "LD108") + _lr_evidence(ctx)
    if s in STALLED and _collapsed(ctx):
        evidence.insert(0, _collapse_evidence(ctx))
    evidence += _evidence_of(ctx, "LD309")
    fix_list = [*fixes.change_lr(ctx, 1 / ctx.params.lr_cut, "fixes.lower_lr"), fixes.clip_gradients(ctx)]
    if s in BLOW_UP:
        fix_list.append(fixes.warmup(ctx))
    policy = _broken_lr_policy(ctx)
    if policy:
        score += 0.15  # a broken lr schedule (NaN or negative lr) blows the run up from the start
        evidence += policy.evidence
        missing = policy.evidence[0].params.get("missing", "")
        fix_list.insert(
            0,
            fixes.lr_policy(ctx, [m.strip() for m in str(missing).split(",") if m.strip() not in ("", "-")]),
        )
    return _cause(
        "lr_too_high",
        "LD201",
        score,
        evidence,
        fix_list,
        ["LD309" if high else "", "LD307" if policy else ""],
    )


@rule("LD202", "lr-too-low", curves=("train_loss",), cause="lr_too_low")
def lr_too_low(ctx: Context) -> RuleResult | None:
    s, p, lr = _symptom(ctx), ctx.params, ctx.lr_value
    if s not in STALLED:
        return None
    flag = _lr_flag(ctx)
    if lr is not None and lr <= p.tiny_lr:
        score = 0.8
    elif flag == "evidence.lr_low":
        score = 0.6
    elif any(e.key == "evidence.stalled_after_lr_decay" for e in _evidence_of(ctx, "LD104")):
        score = 0.6  # the loss stopped where the lr was cut: the remaining lr is too small
    elif lr is None:
        score = 0.3 if s == "flat" else 0.25  # the log does not say: keep the lr among the suspects
    else:
        # An ordinary lr: for a plateau, slow convergence is still the most common reason (AUTOTRAINER's
        # most frequent repair); for a loss that never moved, it is not the first suspect.
        score = 0.3 if s == "plateau" else 0.2
    if lr is not None and lr <= p.tiny_lr and s == "flat":
        # A loss that never moved under an lr orders of magnitude below any working one: the lr first,
        # before a missing init or pretraining (a net from scratch still moves with a working lr).
        score = 0.9
    if flag == "evidence.lr_high" or _collapsed(ctx):
        score = 0.15  # a large step, not a small one, explains this stall
    evidence = _evidence_of(ctx, "LD103", "LD104") + _lr_evidence(ctx) + _evidence_of(ctx, "LD309")
    return _cause(
        "lr_too_low",
        "LD202",
        score,
        evidence,
        # 10x, or straight to the low end of the usual range when the lr is far below it (1e-9)
        fixes.change_lr(ctx, max(p.lr_raise, usual_lr_range(ctx)[0] / lr if lr else 0.0), "fixes.raise_lr"),
        ["LD309" if flag else ""],
    )


@rule("LD203", "input-scale-mismatch", curves=("train_loss",), cause="input_scale")
def input_scale(ctx: Context) -> RuleResult | None:
    s = _symptom(ctx)
    if s == "healthy":
        return None
    rescaled, mean_scaled, high_start = ctx.finding("LD303"), ctx.finding("LD302"), ctx.finding("LD110")
    score = 0.0
    if rescaled and s in STALLED:
        score = 0.8 + (0.1 if ctx.finding("LD109") else 0)
    elif mean_scaled:
        score = 0.7
    elif high_start and _huge_start(ctx) and ctx.meta.input_scale is None and s in (*BLOW_UP, *STALLED):
        score = 0.7  # unscaled inputs: the loss was huge at the first forward pass
    elif rescaled:
        score = 0.35
    if rescaled and ctx.finding("LD308"):
        # Fixed small gaussians shrink the signal by std*sqrt(fan_in) per layer in a deep plain net:
        # no input scale rescues that, so the init (LD206) ranks first.
        score -= 0.3
    if not score:
        return None
    evidence = _evidence_of(ctx, "LD303", "LD302", "LD110", "LD109", "LD103", "LD104")
    fix_list = fixes.input_scale(ctx)
    if mean_scaled:
        fix_list.insert(0, fixes.mean_in_raw_units(ctx))
    return _cause(
        "input_scale",
        "LD203",
        score,
        evidence,
        fix_list,
        ["LD303" if rescaled else "", "LD302" if mean_scaled else ""],
    )


@rule("LD204", "batchnorm-statistics", curves=("train_loss",), cause="bn_stats")
def bn_stats(ctx: Context) -> RuleResult | None:
    s = _symptom(ctx)
    if s == "healthy":
        return None
    frozen = ctx.finding("LD301")
    tiny = ctx.finding("LD304")
    has_bn = bool(ctx.meta.batchnorm)
    if frozen and frozen.severity == "critical":
        score = 0.9
    elif frozen:
        score = 0.4
    elif tiny and s in (*UNSTABLE, "eval_gap"):
        score = 0.6
    elif s == "eval_gap":
        # The usual reason: BatchNorm in the wrong mode or with statistics that do not match training.
        # Only a net known to have no BatchNorm (Caffe dumps the whole net) points elsewhere.
        score = 0.3 if _known_without_bn(ctx) else 0.75 if has_bn or _val_erratic(ctx) else 0.6
    else:
        return None
    evidence = _evidence_of(ctx, "LD301", "LD304", "LD107")
    return _cause(
        "bn_stats",
        "LD204",
        score,
        evidence,
        fixes.bn_batch_stats(ctx),
        ["LD301" if frozen else "", "LD304" if tiny else ""],
    )


@rule("LD205", "no-pretrained-weights", curves=("train_loss",), cause="no_pretraining")
def no_pretraining(ctx: Context) -> RuleResult | None:
    s = _symptom(ctx)
    arch = ctx.deep_architecture
    if s not in STALLED or arch is None or ctx.meta.pretrained:
        return None
    scratch = ctx.finding("LD305")
    segmentation = arch in ("fcn", "deeplab", "segnet", "unet")
    # without LD305 the log does not say whether weights were loaded
    score = (0.85 if segmentation else 0.7) if scratch else 0.35
    if ctx.finding("LD303") or ctx.finding("LD308"):
        score -= 0.2  # a config defect explains the stall better
    evidence = _evidence_of(ctx, "LD305", "LD103", "LD104", "LD109")
    return _cause(
        "no_pretraining", "LD205", score, evidence, fixes.pretrained(ctx), ["LD305" if scratch else ""]
    )


def _uniform_at_init(ctx: Context) -> bool:
    """The untrained net already predicted exactly 1/C (loss within 0.5% of ln(C), not above it as a
    normal init's random logits give) under a known lr that is not low and from a first loss that was
    not huge: its logits were ~0 from the start, the forward signal vanished at initialisation. Without
    the lr, a too small lr stays the first suspect."""
    curve, lnc = ctx.train_loss, ctx.lnc
    if curve is None or lnc is None or ctx.finding("LD110") or _lr_flag(ctx) == "evidence.lr_low":
        return False
    if ctx.lr_value is None or ctx.lr_value <= ctx.params.tiny_lr:
        return False
    return abs(curve.start_level - lnc) <= 0.005 * lnc


@rule("LD206", "deep-net-initialisation", curves=("train_loss",), cause="depth_init")
def depth_init(ctx: Context) -> RuleResult | None:
    s = _symptom(ctx)
    gaussian = ctx.finding("LD308")
    if s not in (*STALLED, *BLOW_UP) or (not gaussian and not (s in STALLED and ctx.finding("LD109"))):
        return None
    meta = ctx.meta
    if not gaussian and any(f.type in ("xavier", "msra") for f in meta.weight_fillers):
        return None  # a scaled init keeps the signal; LD206 is about fixed small gaussians
    plain = not meta.batchnorm and not meta.has_residual and (meta.depth or 0) >= ctx.params.deep_layers
    score = 0.8 if gaussian and s in STALLED else 0.5 if gaussian else 0.4 if plain else 0.2
    evidence = _evidence_of(ctx, "LD308", "LD103", "LD109")
    if s == "flat" and _uniform_at_init(ctx):
        score = max(score, 0.45)
        assert ctx.train_loss is not None and ctx.lnc is not None and ctx.lr_value is not None
        params = {
            "first": f"{ctx.train_loss.start_level:.4g}",
            "lnc": round(ctx.lnc, 4),
            "lr": f"{ctx.lr_value:g}",
        }
        evidence.insert(0, Evidence("evidence.uniform_at_init", params, int(ctx.train_loss.steps[0])))
    return _cause("depth_init", "LD206", score, evidence, fixes.init(ctx), ["LD308" if gaussian else ""])


@rule("LD207", "small-batch", curves=("train_loss",), cause="small_batch", meta=("batch_size",))
def small_batch(ctx: Context) -> RuleResult | None:
    s, p, batch = _symptom(ctx), ctx.params, ctx.meta.batch_size
    assert batch is not None
    if batch > p.small_batch_noise or s not in (*UNSTABLE, "eval_gap"):
        return None
    score = 0.55 if batch <= p.small_batch else 0.4
    if ctx.finding("LD304"):
        score += 0.1
    elif s in BLOW_UP:
        # Small batches make the curve noisy; a blow-up needs BatchNorm on them (LD304) to follow.
        # Detectors train with 2 images per GPU and frozen BatchNorm as a matter of course.
        score -= 0.25
    evidence = [Evidence("evidence.batch_size", {"batch": batch}, quote=ctx.quote("batch_size"))]
    evidence += _evidence_of(ctx, "LD304", "LD105", "LD108")
    return _cause(
        "small_batch",
        "LD207",
        score,
        evidence,
        fixes.small_batch(ctx),
        ["LD304" if ctx.finding("LD304") else ""],
    )


@rule("LD208", "loss-normalization", curves=("train_loss",), cause="loss_normalization")
def loss_normalization(ctx: Context) -> RuleResult | None:
    s = _symptom(ctx)
    found = ctx.finding("LD306")
    if not found or s == "healthy":
        return None
    score = 0.85 if s in (*STALLED, *BLOW_UP) else 0.5
    if found.evidence[0].key == "evidence.normalized_tiny_lr":
        # The loss IS averaged, so for the loss as configured the lr is simply too low (LD202 ranks
        # first); summing the loss instead is the second way out.
        score = 0.6
    evidence = _evidence_of(ctx, "LD306") + _lr_evidence(ctx)
    return _cause("loss_normalization", "LD208", score, evidence, fixes.loss_normalization(ctx), ["LD306"])


@rule("LD209", "overfitting", curves=("train_loss",), cause="overfitting")
def overfitting(ctx: Context) -> RuleResult | None:
    s = ctx.symptoms.get("overfitting")
    if s is None:
        return None
    score = 0.85 if _symptom(ctx) == "overfitting" else 0.45
    return _cause(
        "overfitting", "LD209", score, _evidence_of(ctx, "LD106"), fixes.overfitting(ctx, s.onset_step), []
    )


@rule("LD210", "data-problem", curves=("train_loss",), cause="data_issue")
def data_issue(ctx: Context) -> RuleResult | None:
    s = _symptom(ctx)
    nan_step = _nan_step(ctx)
    early_nan = nan_step is not None and nan_step <= ctx.params.nan_early_steps
    high = _lr_flag(ctx) == "evidence.lr_high"
    explained = bool(
        ctx.frozen_bn
        or ctx.finding("LD303")
        or _broken_lr_policy(ctx)
        or ctx.finding("LD306")
        or _huge_start(ctx)
    )
    if s == "nan" and early_nan and not high and not explained and not _grew_before_nan(ctx):
        score = 0.55
    elif s == "nan" and not _grew_before_nan(ctx) and not explained:
        score = 0.4  # a sudden NaN from a normal-looking loss: a bad sample or a log(0) in the loss
    elif s == "eval_gap":
        score = 0.6 if _known_without_bn(ctx) else 0.45
    elif s == "spiky":
        periodic = any(e.key == "evidence.spikes_periodic" for e in _evidence_of(ctx, "LD108"))
        score = 0.7 if periodic else 0.4  # spikes at a fixed period: the same bad data met every pass
    elif s == "flat" and not explained:
        score = 0.3
    else:
        return None
    evidence = _evidence_of(ctx, "LD101", "LD107", "LD108", "LD103", "LD109")
    fix_list = fixes.check_data(ctx)
    if s == "eval_gap":
        fix_list.insert(0, fixes.eval_pipeline(ctx))
    return _cause("data_issue", "LD210", score, evidence, fix_list, [])
