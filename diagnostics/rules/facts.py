"""LD109-LD111: facts about the curves that support causes (the loss at ln(C), a huge first loss, the
lr schedule); they name no symptom.

Texts (title, why, example, fix) live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

import math

import numpy as np

from diagnostics.context import Context
from diagnostics.features import lr_decays
from diagnostics.model import Evidence, Finding
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import chance_evidence, first_is_initial, fmt


@rule("LD109", "loss-at-chance-level", curves=("train_loss",))
def loss_at_chance(ctx: Context) -> RuleResult | None:
    """The loss sits at ln(C): the classifier predicts every class with probability 1/C."""
    curve = ctx.train_loss
    assert curve is not None
    if ctx.lnc is None or not len(curve.by) or not ctx.at_chance(curve.end_level):
        return None
    evidence = [chance_evidence(ctx, curve.end_level)]
    accuracy = _final_accuracy(ctx)
    assert ctx.classes is not None
    c = ctx.classes[0]
    if accuracy is not None and accuracy[0] <= ctx.chance_accuracy_ceiling() * accuracy[1]:
        params = {"accuracy": fmt(accuracy[0]), "c": c, "chance": fmt(accuracy[1] / c)}
        evidence.append(Evidence("evidence.accuracy_at_chance", params))
    return RuleResult([Finding("LD109", "warning", evidence, None, None, curve.label)])


def _final_accuracy(ctx: Context) -> tuple[float, float] | None:
    """(last validation/test accuracy, its full scale: 1 or 100) when the log has one."""
    for split in ("val", "test", "train"):
        values = ctx.rows("accuracy", split)["value"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            return float(values[-1]), 100.0 if values.max() > 1.5 else 1.0
    return None


@rule("LD110", "initial-loss-far-above-chance", curves=("train_loss",))
def initial_loss_high(ctx: Context) -> RuleResult | None:
    """The first loss is many times ln(C): the logits start huge (unscaled input or a wide init).
    Only for a classification loss (ln(C) means nothing for a detection loss such as SSD's
    MultiBoxLoss) and only when the first value is an initial loss, not that of a resumed run."""
    curve = ctx.train_loss
    assert curve is not None
    if ctx.lnc is None or not first_is_initial(ctx, curve):
        return None
    first = float(curve.values[0])
    if not math.isfinite(first) or first < ctx.params.ld110_initial_ratio * ctx.lnc:
        return None
    evidence = [
        Evidence(
            "evidence.initial_high",
            {"first": fmt(first), "lnc": round(ctx.lnc, 4), "ratio": round(first / ctx.lnc, 1)},
            int(curve.steps[0]),
            ctx.curve_quote(curve, 0),
        )
    ]
    measurements = {"initial_over_lnc": first / ctx.lnc}
    return RuleResult(
        [Finding("LD110", "warning", evidence, int(curve.steps[0]), None, curve.label, measurements)]
    )


@rule("LD111", "lr-schedule", curves=("lr",))
def lr_schedule(ctx: Context) -> RuleResult | None:
    """Recognises warm-up and decays in the logged lr, so the loss moves they cause are not alarms."""
    p, lr = ctx.params, ctx.lr
    assert lr is not None
    finite = np.isfinite(lr.values)
    v = lr.values[finite]
    if len(v) < 3 or v.max() <= 0:
        return None
    peak_i = int(np.argmax(v))
    warmup = peak_i > 0 and v[0] < p.ld111_warmup_share * v[peak_i]
    drops = len(lr_decays(lr.steps[finite], v, p.ld111_drop_factor))
    decay = v[-1] < p.ld111_decay_share * v[peak_i]
    if not (warmup or decay):
        return None
    evidence = [
        Evidence(
            "evidence.lr_schedule",
            {
                "start": fmt(float(v[0])),
                "peak": fmt(float(v[peak_i])),
                "end": fmt(float(v[-1])),
                "drops": drops,
            },
        )
    ]
    measurements = {"warmup": 1.0 if warmup else 0.0, "decay": 1.0 if decay else 0.0, "drops": float(drops)}
    return RuleResult([Finding("LD111", "info", evidence, None, None, lr.label, measurements)])
