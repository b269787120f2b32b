"""LD3xx: configuration checks that need no curve: solver and net facts from the log header,
prototxts or the hyper-parameter echo. Each finding quotes the line that states the fact."""

from __future__ import annotations

import math

import numpy as np

from diagnostics.context import Context
from diagnostics.model import Evidence, Finding
from diagnostics.registry import RuleResult, rule
from parsers.model import RunMeta, WeightFiller

# Caffe lr policies and the solver fields each one needs (caffe.proto, SGDSolver::GetLearningRate).
LR_POLICY_NEEDS = {
    "step": ("gamma", "stepsize"),
    "multistep": ("gamma", "stepvalue"),
    "exp": ("gamma",),
    "inv": ("gamma", "power"),
    "poly": ("max_iter", "power"),
    "sigmoid": ("gamma", "stepsize"),
}


def _one(
    rule_id: str, severity: str, evidence: list[Evidence], measurements: dict[str, float] | None = None
) -> RuleResult:
    finding = Finding(rule_id, severity, evidence, measurements=dict(measurements or {}))  # type: ignore[arg-type]
    return RuleResult([finding])


def _train_phase_bn(ctx: Context) -> list:
    """BatchNorm layers that run in TRAIN (a Caffe log prints the TEST net's copies too)."""
    return [b for b in ctx.meta.batchnorm if b.phase in ("train", "any")]


@rule("LD301", "batchnorm-global-stats-in-train", meta=("batchnorm",))
def bn_global_stats_in_train(ctx: Context) -> RuleResult | None:
    """A BatchNorm layer of the TRAIN net normalises with its running statistics."""
    frozen = ctx.frozen_bn
    if not frozen:
        return None
    intended = bool(ctx.meta.pretrained) and (ctx.meta.batch_size or 99) <= ctx.params.small_batch
    evidence = [
        Evidence(
            "evidence.bn_frozen",
            {"count": len(frozen), "total": len(_train_phase_bn(ctx)), "layer": frozen[0].name},
            quote=frozen[0].where,
        )
    ]
    if ctx.meta.pretrained is not True:
        evidence.append(Evidence("evidence.bn_frozen_scratch", {}))
    return _one("LD301", "info" if intended else "critical", evidence)


@rule("LD302", "mean-in-scaled-units", meta=("input_scale", "mean_value"))
def mean_in_scaled_units(ctx: Context) -> RuleResult | None:
    """mean_value given in [0, 1] units while Caffe subtracts the mean before applying `scale`."""
    meta = ctx.meta
    assert meta.input_scale is not None
    if meta.input_scale >= 1 or max(meta.mean_value) > ctx.params.ld302_raw_mean_above:
        return None
    evidence = [
        Evidence(
            "evidence.mean_scaled",
            {"mean": ", ".join(f"{v:g}" for v in meta.mean_value), "scale": f"{meta.input_scale:g}"},
            quote=meta.where.get("mean_value"),
        )
    ]
    return _one("LD302", "warning", evidence)


@rule("LD303", "input-rescaled-for-raw-pixel-recipe", meta=("input_scale",))
def input_rescaled(ctx: Context) -> RuleResult | None:
    """Inputs rescaled to about [0, 1] in a deep net without BatchNorm, with an lr and init from
    raw-pixel recipes: every layer's signal is ~256x weaker and the net barely moves."""
    meta, p = ctx.meta, ctx.params
    assert meta.input_scale is not None
    deep = ctx.deep_architecture is not None or (meta.depth or 0) >= p.deep_layers
    if meta.input_scale > p.raw_pixel_scale or meta.batchnorm or meta.pretrained or not deep:
        return None
    evidence = [
        Evidence(
            "evidence.input_rescaled",
            {"scale": f"{meta.input_scale:g}", "factor": round(1 / meta.input_scale)},
            quote=meta.where.get("input_scale"),
        )
    ]
    if ctx.lr_value is not None:
        evidence.append(
            Evidence(
                "evidence.lr_value",
                {"name": "base_lr", "lr": f"{ctx.lr_value:g}"},
                quote=ctx.lr_quote,
            )
        )
    fillers = sorted({f.type for f in meta.weight_fillers})
    if fillers:
        evidence.append(
            Evidence("evidence.fillers", {"fillers": ", ".join(fillers)}, quote=meta.weight_fillers[0].where)
        )
    # The harm is a net that barely moves; a loss that fell far shows this recipe trained anyway.
    return _one("LD303", "info" if _learned(ctx) else "warning", evidence)


def _learned(ctx: Context) -> bool:
    """The training loss fell by more than the plateau threshold (of ln(C) when known, else of its start)."""
    curve = ctx.train_loss
    if curve is None or len(curve.by) < 3 or not curve.start_level > 0:
        return False
    reference = ctx.lnc or curve.start_level
    return (curve.start_level - curve.end_level) / reference > ctx.params.plateau_max_drop


@rule("LD304", "batchnorm-with-tiny-batch", meta=("batch_size", "batchnorm"))
def bn_tiny_batch(ctx: Context) -> RuleResult | None:
    """BatchNorm computing statistics over a batch of 1-2 images: they are noise, not statistics."""
    meta = ctx.meta
    assert meta.batch_size is not None
    computing = [bn for bn in meta.batchnorm if not bn.use_global_stats and bn.phase != "test"]
    # A setting that puts BatchNorm in inference mode (norm_eval, freeze_bn) stops it computing statistics.
    if meta.batch_size > ctx.params.small_batch or not computing or meta.batchnorm_flags:
        return None
    batch = meta.batch_size
    if computing[0].source == "setting":
        params: dict = {"batch": batch, "name": computing[0].name}
        evidence = [Evidence("evidence.bn_tiny_batch_setting", params, quote=meta.where.get("batch_size"))]
        if computing[0].where not in (None, meta.where.get("batch_size")):
            evidence.append(Evidence("evidence.config_line", {}, quote=computing[0].where))
    else:
        params = {"batch": batch, "count": len(computing)}
        evidence = [Evidence("evidence.bn_tiny_batch", params, quote=meta.where.get("batch_size"))]
    return _one("LD304", "warning", evidence)


def shallow_named_net(ctx: Context) -> bool:
    """The net is named like a deep architecture (a small "resnet") but has few weight layers: such a net
    trains from scratch, so its name says nothing about missing pretrained weights."""
    depth = ctx.meta.depth
    return depth is not None and depth < ctx.params.ld305_min_depth


@rule("LD305", "deep-net-from-scratch", meta=("pretrained",))
def deep_from_scratch(ctx: Context) -> RuleResult | None:
    """A deep architecture that is normally fine-tuned starts from random weights."""
    arch = ctx.deep_architecture
    if ctx.meta.pretrained is not False or arch is None or shallow_named_net(ctx):
        return None
    evidence = [
        Evidence(
            "evidence.from_scratch",
            {"net": ctx.meta.net_name or arch, "depth": ctx.meta.depth or "?"},
            quote=ctx.meta.where.get("pretrained") or ctx.meta.where.get("net_name"),
        )
    ]
    severity = "warning" if arch in ("fcn", "deeplab", "segnet", "unet") else "info"
    return _one("LD305", severity, evidence)


def loss_is_normalized(ctx: Context) -> bool | None:
    """Whether the loss is averaged over pixels/samples (Caffe's SoftmaxWithLoss default is VALID)."""
    meta = ctx.meta
    if meta.loss_normalization is not None:
        return meta.loss_normalization.upper() != "NONE"
    if meta.loss_normalize is not None:
        return meta.loss_normalize
    if meta.loss_type and "softmaxwithloss" in meta.loss_type.lower():
        return True
    return None


@rule(
    "LD306", "loss-normalization-vs-lr", meta=("base_lr",), any_meta=("loss_normalize", "loss_normalization")
)
def normalization_vs_lr(ctx: Context) -> RuleResult | None:
    """The lr was chosen for a summed (unnormalised) loss but the loss is averaged, or vice versa."""
    meta, p = ctx.meta, ctx.params
    normalized = loss_is_normalized(ctx)
    lr = ctx.lr_value
    if normalized is None or lr is None:
        return None
    pixels = (meta.input_size or meta.crop_size or 0) ** 2
    params: dict = {"lr": f"{lr:g}", "pixels": pixels or "?"}
    first = _first_loss(ctx)
    summed_lr = lr >= p.ld306_summed_min_lr
    # SGD's step grows with the sum: an lr chosen for the mean over batch x pixels acts that much larger.
    effective_lr = lr * (meta.batch_size or 0) * max(pixels, 1)
    if normalized and lr <= p.tiny_lr:
        key = "evidence.normalized_tiny_lr"
    elif not normalized and summed_lr and pixels >= p.ld306_min_pixels:
        key = "evidence.unnormalized_big_lr"
    elif (
        not normalized
        and summed_lr
        and not ctx.optimizer_is_adaptive
        and effective_lr >= p.ld306_summed_effective_lr
    ):
        key = "evidence.unnormalized_batch_sum"
        params.update(batch=meta.batch_size, effective=f"{effective_lr:.3g}")
    elif (
        not normalized
        and summed_lr
        and not pixels
        and first is not None
        and first >= p.ld306_summed_first_loss * (ctx.lnc or 1)
    ):
        # The image size is not in the log, but the summed loss shows its own size: a first loss a
        # hundred times ln(C) (or over 100) is a sum over that many positions, and so is its gradient.
        key = "evidence.unnormalized_big_loss"
        params["first"] = f"{first:.4g}"
    else:
        return None
    quote = meta.where.get("loss_normalize") or meta.where.get("loss_normalization")
    evidence = [Evidence(key, params, quote=quote)]
    evidence += [
        Evidence("evidence.config_comment", {}, quote=c)
        for c in meta.comments
        if "normaliz" in c.text.lower()
    ]
    # +1: the loss is averaged and the lr was tuned for a sum (too small); -1: summed, lr for an average.
    return _one("LD306", "warning", evidence, {"lr_for_other_loss": 1.0 if normalized else -1.0})


def _first_loss(ctx: Context) -> float | None:
    curve = ctx.train_loss
    if curve is None or not len(curve.trend_values):
        return None
    return float(curve.trend_values[0])


@rule("LD307", "lr-policy-params-missing", meta=("lr_policy",))
def lr_policy_params(ctx: Context) -> RuleResult | None:
    """The lr policy needs solver fields that are not set (e.g. poly without max_iter). The fields are
    Caffe's: other frameworks name them differently and default them (mmcv's step policy: gamma 0.1)."""
    meta = ctx.meta
    policy = (meta.lr_policy or "").lower()
    missing = missing_policy_fields(ctx)
    bad_lr = ctx.lr is not None and bool(
        (~(ctx.lr.values == ctx.lr.values)).any() | (ctx.lr.values < 0).any()
    )
    if not missing and not bad_lr:
        return None
    evidence = [
        Evidence(
            "evidence.policy_missing",
            {"policy": policy, "missing": ", ".join(missing) or "-"},
            quote=meta.where.get("lr_policy"),
        )
    ]
    if bad_lr:
        evidence.append(Evidence("evidence.lr_nonfinite", {}))
    severity = "critical" if bad_lr or policy == "poly" else "warning"
    measurements = {"missing_fields": float(len(missing)), "lr_nonfinite": 1.0 if bad_lr else 0.0}
    return RuleResult([Finding("LD307", severity, evidence, measurements=measurements)])


def missing_policy_fields(ctx: Context) -> list[str]:
    """The solver fields the run's Caffe lr policy needs but the log does not set."""
    meta = ctx.meta
    policy = (meta.lr_policy or "").lower()
    needs = LR_POLICY_NEEDS.get(policy, ()) if meta.framework == "caffe" else ()
    known = {k.lower() for k in meta.lr_params} | {k.lower() for k in meta.hyperparams}
    if meta.max_iter:
        known.add("max_iter")
    return [n for n in needs if n not in known]


@rule("LD308", "deep-plain-net-small-gaussian-init", meta=("depth", "weight_fillers"))
def deep_plain_gaussian(ctx: Context) -> RuleResult | None:
    """A deep plain net (no BatchNorm, no shortcuts) initialised with a fixed small gaussian std:
    the signal shrinks by ~std*sqrt(fan_in) per layer and vanishes before the loss. Weights read from a
    file (pretrained, or written by an init script such as LSUV) replaced the fillers' draws."""
    meta, p = ctx.meta, ctx.params
    assert meta.depth is not None
    if meta.depth < p.ld308_min_depth or meta.has_residual or meta.batchnorm or meta.pretrained:
        return None
    if "initial_weights" in meta.hyperparams:
        return None
    small = [
        f
        for f in meta.weight_fillers
        if f.type == "gaussian" and f.std is not None and f.std <= p.plain_gaussian_std
    ]
    if len(small) < len(meta.weight_fillers) * p.ld308_min_small_share:
        return None
    if meta.depth < p.deep_layers:
        gain = _layer_gain(meta, small, p.ld308_kernel_area)
        if gain is None or gain > p.ld308_max_gain:
            return None
    evidence = [
        Evidence(
            "evidence.gaussian_init",
            {"depth": meta.depth, "count": len(small), "std": f"{small[0].std:g}"},
            quote=small[0].where,
        )
    ]
    return _one("LD308", "warning", evidence)


def _layer_gain(meta: RunMeta, small: list[WeightFiller], kernel_area: int) -> float | None:
    """The signal's gain per layer at init, std x sqrt(fan-in), with the fan-in of a kernel of
    `kernel_area` over the median stated width; None when no width is stated."""
    if not meta.layer_widths:
        return None
    std = float(np.median([f.std for f in small]))
    return std * math.sqrt(kernel_area * float(np.median(meta.layer_widths)))


def usual_lr_range(ctx: Context) -> tuple[float, float]:
    """What the run's optimiser usually trains with; an unknown optimiser gets the widest range
    (the adaptive low end and SGD's high end)."""
    p = ctx.params
    adaptive = ctx.optimizer_is_adaptive
    low = p.low_lr_adaptive if adaptive or ctx.meta.optimizer is None else p.low_lr_sgd
    return low, p.high_lr_adaptive if adaptive else p.high_lr_sgd


@rule("LD309", "lr-outside-usual-range")
def lr_range(ctx: Context) -> RuleResult | None:
    """The lr is far outside what the optimiser usually trains with."""
    p, lr = ctx.params, ctx.lr_value
    if lr is None or not math.isfinite(lr):
        return None
    if (ctx.meta.optimizer or "").lower() == "adadelta":
        return None  # AdaDelta's lr is a multiplier of its own step size; 1.0 is its default
    known = ctx.meta.optimizer is not None
    low, high = usual_lr_range(ctx)
    if lr <= p.tiny_lr or lr < low:
        key = "evidence.lr_low"
    elif lr > high:
        key = "evidence.lr_high"
    else:
        return None
    evidence = [
        Evidence(
            key if known else f"{key}_any",
            {"lr": f"{lr:g}", "optimizer": ctx.meta.optimizer or "", "low": f"{low:g}", "high": f"{high:g}"},
            quote=ctx.lr_quote,
        )
    ]
    severity = "warning" if key == "evidence.lr_low" and lr <= p.tiny_lr else "info"
    return _one("LD309", severity, evidence, {"lr_flag": -1.0 if key == "evidence.lr_low" else 1.0})
