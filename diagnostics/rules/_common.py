"""Helpers shared by the symptom rule families (LD1xx): the result a symptom rule returns, how a
resumed run is recognised, evidence number formatting, evaluation-series helpers."""

from __future__ import annotations

import math

import numpy as np

from diagnostics.context import Context
from diagnostics.features import Curve
from diagnostics.model import Evidence, Finding, Severity, SymptomResult
from diagnostics.registry import RuleResult

# Quality metrics of an evaluation, the first one logged is judged: (canonical metric, higher is better).
QUALITY_METRICS = (("accuracy", True), ("map", True), ("top5", True), ("wer", False), ("cer", False))


def symptom_result(
    ctx: Context,
    rule_id: str,
    symptom: str,
    confidence: float,
    curve: Curve,
    step: int | None,
    evidence: list[Evidence],
    severity: Severity = "critical",
    measurements: dict[str, float] | None = None,
) -> RuleResult:
    """A symptom with the finding that shows it (shaded on the chart from `step`)."""
    finding = Finding(rule_id, severity, evidence, step, None, curve.label, dict(measurements or {}))
    confidence = min(confidence, ctx.params.symptom_max_confidence)
    return RuleResult([finding], SymptomResult(symptom, confidence, step, curve.label, rule_id))


def resumed_late(ctx: Context, curve: Curve) -> bool:
    """The log starts far into training (a resumed run): its first value is not an initial loss."""
    p = ctx.params
    first = int(curve.steps[0]) if len(curve) else 0
    last = int(curve.steps[-1]) if len(curve) else 0
    return (
        ctx.meta.resumed and first > p.resumed_first_fraction * max(last, 1)
    ) or first > p.late_first_fraction * max(last, 1) > 0


def first_is_initial(ctx: Context, curve: Curve) -> bool:
    """The first logged value is the loss of an untrained net (no resumed state behind it)."""
    if ctx.meta.resumed and len(curve) and curve.steps[0] > 0:
        return False
    return not resumed_late(ctx, curve)


def final_accuracy(ctx: Context) -> tuple[float, float] | None:
    """(last validation/test accuracy, its full scale: 1 or 100) when the log has one."""
    for split in ("val", "test", "train"):
        values = ctx.rows("accuracy", split)["value"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            return float(values[-1]), 100.0 if values.max() > 1.5 else 1.0
    return None


def accuracy_at_chance_evidence(ctx: Context) -> Evidence | None:
    """The last accuracy logged is at chance for C classes (no more than `chance_accuracy_ceiling`);
    None when it is above, when none is logged, or when C is unknown."""
    accuracy = final_accuracy(ctx)
    if ctx.classes is None or accuracy is None:
        return None
    value, scale = accuracy
    if value > ctx.chance_accuracy_ceiling() * scale:
        return None
    c = ctx.classes[0]
    return Evidence("evidence.accuracy_at_chance", {"accuracy": fmt(value), "c": c, "chance": fmt(scale / c)})


def chance_evidence(ctx: Context, level: float) -> Evidence:
    assert ctx.classes is not None and ctx.lnc is not None
    c, how = ctx.classes
    return Evidence(f"evidence.at_chance.{how}", {"level": fmt(level), "c": c, "lnc": round(ctx.lnc, 4)})


def median3(y: np.ndarray) -> np.ndarray:
    """3-point running median: one noisy evaluation is not a minimum."""
    if len(y) < 3:
        return y
    padded = np.r_[y[0], y, y[-1]]
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def train_at(ctx: Context, steps: np.ndarray) -> np.ndarray | None:
    """The training loss (bucket medians) interpolated at evaluation steps."""
    train = ctx.train_loss
    if train is None or len(train.by) < 2:
        return None
    return np.interp(steps.astype(float), train.bx, train.by)


def fmt(value: float) -> str:
    """Numbers in evidence: 4 significant digits, NaN/inf as the log wrote them."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"
