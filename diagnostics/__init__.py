"""TrainingLog -> Diagnosis: pure functions, no Streamlit (enforced by ruff TID251).

    from diagnostics import diagnose
    diagnosis = diagnose(log)          # symptom, ranked causes with evidence and fixes, findings

The runner executes the rule catalogue (`diagnostics.registry`) in three passes: symptom rules
(LD1xx) measure the curves, config checks (LD3xx) read the run facts, cause rules (LD2xx) weigh both.
A rule whose data is missing is reported as not applicable; a rule that raises is recorded in
`Diagnosis.errors` and the others still run (deepchecks' suite runner).
"""

from __future__ import annotations

from dataclasses import replace

from diagnostics import fitted
from diagnostics.calibration import Calibration
from diagnostics.context import Context
from diagnostics.model import SEVERITY_ORDER, Diagnosis, Finding, SymptomResult
from diagnostics.params import Params
from diagnostics.registry import RULES, Rule, RuleResult, all_rules
from diagnostics.rules.stall import made_progress
from parsers.model import TrainingLog

__all__ = ["Params", "diagnose"]

# Config checks whose critical findings are faults on their own, whatever the curve looks like.
CONFIG_FAULTS = ("LD301", "LD310", "LD311", "LD312")
# Config checks whose warnings state a mismatch the run cannot have trained well under (BatchNorm over
# 1-2 samples, a loss normalisation the lr was not chosen for, frozen random layers or BatchNorm in
# inference mode when the log does not say whether weights were loaded, inputs in other units), and a
# training loss the curves show summed over the batch (LD114).
CONFIG_WARNING_FAULTS = ("LD304", "LD306", "LD310", "LD311", "LD312", "LD114")
# When several symptoms are present, the most consequential one is the verdict.
SYMPTOM_PRIORITY = ("nan", "diverging", "flat", "plateau", "overfitting", "eval_gap", "oscillating", "spiky")


def diagnose(
    log: TrainingLog, params: Params | None = None, calibration: Calibration | None = None
) -> Diagnosis:
    """Classify the run's curves, rank the likely causes and collect every rule's findings. Params and
    calibration default to the fitted ones (`diagnostics.fitted`, with the operator's uncertainty floor);
    the fit passes its own."""
    params = params or fitted.PARAMS
    calibration = calibration or fitted.calibration()
    ctx = Context(log, params)
    rules = all_rules()
    not_applicable: list[str] = []
    unchecked: list[str] = []
    errors: list[tuple[str, str]] = []

    def run(rule: Rule) -> None:
        if not rule.applies(ctx):
            not_applicable.append(rule.id)
            if rule.lacks_only_settings(ctx):
                unchecked.append(rule.id)
            return
        try:
            result = rule.check(ctx)
        except Exception as err:
            errors.append((rule.id, f"{type(err).__name__}: {err}"))
            return
        if result is not None:
            _collect(ctx, rule, result)

    for rule in rules:
        if rule.kind != "cause":
            run(rule)
    ctx.primary = _primary(ctx)
    for rule in rules:
        if rule.kind == "cause":
            run(rule)

    causes = sorted(
        (c for c in ctx.causes if c.confidence >= params.min_cause_confidence), key=lambda c: -c.confidence
    )
    findings = [f for fs in ctx.findings.values() for f in fs]
    findings.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.rule))
    secondary = [s for name, s in ctx.symptoms.items() if name != ctx.primary.symptom]
    secondary.sort(key=lambda s: SYMPTOM_PRIORITY.index(s.symptom))
    verdict = replace(
        ctx.primary, confidence=calibration.verdict(ctx.primary.symptom, ctx.primary.confidence)
    )
    secondary = [replace(x, confidence=calibration.verdict(x.symptom, x.confidence)) for x in secondary]
    runner_up = _runner_up(verdict, secondary, findings)
    if (
        verdict.symptom != "healthy"
        and runner_up is not None
        and runner_up.symptom == "healthy"
        and runner_up.confidence > verdict.confidence
    ):
        # Fewer than half of such alarms were right when fitted: healthy is the likelier reading,
        # and the alarm stays visible as the runner-up (a false alarm costs more than a miss).
        verdict, runner_up = runner_up, verdict
    uncertain = verdict.confidence < calibration.uncertain_below or _healthy_without_a_trend(ctx, verdict)
    if causes:
        # The first cause's confidence is calibrated; the others keep their distance below it.
        shift = calibration.cause(causes[0].confidence) - causes[0].confidence
        causes = [replace(c, confidence=min(max(c.confidence + shift, 0.01), 0.99)) for c in causes]
    return Diagnosis(
        format=log.meta.format,
        framework=log.meta.framework,
        symptom=verdict,
        secondary=[x for x in secondary if x.symptom != verdict.symptom],
        causes=causes if verdict.symptom != "healthy" or uncertain else [],
        findings=findings,
        not_applicable=not_applicable,
        unchecked=unchecked,
        errors=errors,
        uncertain=uncertain,
        runner_up=runner_up,
    )


def _healthy_without_a_trend(ctx: Context, verdict: SymptomResult) -> bool:
    """Healthy means the loss falls and settles, which one value (LD116) cannot show, nor a log without
    a training loss (LD117, which no curve rule reads): such a verdict is uncertain, whatever the
    calibration says of short runs in general."""
    return verdict.symptom == "healthy" and (ctx.finding("LD116") or ctx.finding("LD117")) is not None


def _runner_up(
    verdict: SymptomResult, secondary: list[SymptomResult], findings: list
) -> SymptomResult | None:
    """The second reading of the run: the next symptom found, else (for a problem verdict) healthy, else
    (for a healthy verdict) the symptom a rule saw a trace of without calling it."""
    if secondary:
        return secondary[0]
    if verdict.symptom != "healthy":
        return SymptomResult("healthy", round(1 - verdict.confidence, 3), None, verdict.series, None)
    for f in findings:
        symptom = RULES[f.rule].symptom if f.rule.startswith("LD1") else None
        if symptom is not None:
            return SymptomResult(symptom, round(1 - verdict.confidence, 3), f.step, f.series, f.rule)
    return None


def _collect(ctx: Context, rule: Rule, result: RuleResult) -> None:
    if result.findings:
        ctx.findings.setdefault(rule.id, []).extend(result.findings)
    if result.symptom is not None:
        ctx.symptoms[result.symptom.symptom] = result.symptom
    if result.cause is not None:
        ctx.causes.append(result.cause)


def _primary(ctx: Context) -> SymptomResult:
    """The most consequential symptom found that is at least as sure as its floor (the spikes, when
    they explain the reading ranked above them: `_spikes_lead`); healthy when none was."""
    p = ctx.params
    found = {
        name: s for name, s in ctx.symptoms.items() if s.confidence >= getattr(p, f"alarm_floor_{name}", 0.0)
    }
    if _spikes_lead(ctx, found):
        return found["spiky"]
    for name in SYMPTOM_PRIORITY:
        if name in found:
            return found[name]
    curve = ctx.train_loss or ctx.val_loss
    fault, confidence = _config_fault(ctx)
    if fault is not None and ctx.train_loss is not None:
        # The curve looks fine, but the configuration cannot have trained the net as meant (frozen random
        # layers, BatchNorm in inference mode from scratch...): the run stalled below what it could reach.
        symptom = "plateau" if made_progress(ctx, ctx.train_loss) else "flat"
        return SymptomResult(symptom, confidence, None, ctx.train_loss.label, fault.rule)
    points = len(curve) if curve is not None else 0
    if points >= p.healthy_points_long:
        confidence = p.healthy_confidence_long
    elif points >= p.healthy_points_medium:
        confidence = p.healthy_confidence_medium
    else:
        confidence = p.healthy_confidence_short
    # Without a training loss no curve rule judged anything (LD117): the verdict names no judged curve.
    judged = ctx.train_loss.label if ctx.train_loss is not None else None
    return SymptomResult("healthy", confidence, None, judged, None)


def _spikes_lead(ctx: Context, found: dict[str, SymptomResult]) -> bool:
    """Spikes explain a reading SYMPTOM_PRIORITY ranks above them, unless the run is graver (NaN,
    diverging, flat): spikes that knock the loss back explain a stall better than a plateau does, and
    the same bad batch met on every pass (spikes on LD108's beat) swings the bucketed loss and wrecks
    BatchNorm's running statistics, and the evaluation with them."""
    if "spiky" not in found or {"nan", "diverging", "flat"} & set(found):
        return False
    p, sure = ctx.params, found["spiky"].confidence
    if "plateau" in found and sure >= p.spiky_over_plateau:
        return True
    return (
        bool({"overfitting", "eval_gap", "oscillating"} & set(found))
        and sure >= p.periodic_spikes_over_eval
        and any(f.measurements.get("periodic_spikes") == 1.0 for f in ctx.findings.get("LD108", []))
    )


def _config_fault(ctx: Context) -> tuple[Finding | None, float]:
    """The config finding that makes a healthy-looking curve a stall, and how sure that verdict is:
    critical faults first, then the warnings of `CONFIG_WARNING_FAULTS` (each level off at 0)."""
    p = ctx.params
    levels = (
        (CONFIG_FAULTS, "critical", p.config_fault_confidence),
        (CONFIG_WARNING_FAULTS, "warning", p.config_warning_fault_confidence),
    )
    for rule_ids, severity, confidence in levels:
        if confidence <= 0:
            continue
        for rid in rule_ids:
            for found in ctx.findings.get(rid, []):
                if found.severity == severity:
                    return found, confidence
    return None, 0.0
