"""Turn a Diagnosis and a run's facts into display-ready plain data (strings, numbers, rows).

The page, the HTML report and the tests all read these, so the wording is decided once, in the
reader's language, from the catalogue. Log-derived strings are returned untouched: each renderer
escapes or shows them as plain text itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from diagnostics.model import SEVERITY_ORDER, Diagnosis, Evidence, Fix
from i18n import catalogue, has, t
from parsers.model import RunMeta, TrainingLog
from share.store import ShareError

T = TypeVar("T")
log = logging.getLogger(__name__)

# Facts shown in the run table, in order (RunMeta field names).
FACT_FIELDS = (
    "framework",
    "format",
    "net_name",
    "base_lr",
    "peak_lr",
    "lr_policy",
    "optimizer",
    "momentum",
    "weight_decay",
    "batch_size",
    "iter_size",
    "max_iter",
    "epochs",
    "clip_gradients",
    "precision",
    "input_scale",
    "mean_file",
    "mean_value",
    "crop_size",
    "input_channels",
    "num_classes",
    "loss_type",
    "loss_normalize",
    "loss_normalization",
    "depth",
    "has_residual",
    "pretrained",
    "pretrained_from",
    "train_loss_mean",
)
# Display mappings: snippet language -> code highlighter, verdict level -> icon, severity -> badge.
HIGHLIGHT = {"prototxt": "protobuf", "python": "python", "bash": "bash", "yaml": "yaml", "json": "json"}
LEVEL_ICON = {
    "info": ":material/help:",
    "success": ":material/check_circle:",
    "error": ":material/error:",
    "warning": ":material/warning:",
}
BADGE_COLOUR = {"critical": "red", "warning": "orange", "info": "blue"}
# Symptoms after which the run's weights are useless: shown as errors, the others as warnings.
LOST_RUN_SYMPTOMS = ("nan", "diverging")
# Order of the parts of a rule's documentation when they exist in the catalogue.
RULE_DOC_PARTS = ("title", "summary", "why", "example", "fix")


@dataclass
class EvidenceView:
    text: str
    step: int | None = None
    source: str | None = None
    line: int | None = None
    quote: str | None = None  # verbatim log line: plain text only


@dataclass
class FixView:
    text: str
    snippet: str | None = None
    language: str | None = None


@dataclass
class CauseView:
    title: str
    confidence: float
    rules: list[str]
    evidence: list[EvidenceView] = field(default_factory=list)
    fixes: list[FixView] = field(default_factory=list)
    id: str = ""


@dataclass
class FindingView:
    rule: str
    severity: str
    title: str
    step: int | None
    step_end: int | None
    evidence: list[EvidenceView] = field(default_factory=list)


@dataclass
class Verdict:
    symptom: str
    title: str
    sentence: str
    confidence: float
    onset_step: int | None
    healthy: bool
    summary: str | None = None  # how the symptom is recognised, in plain words
    uncertain: bool = False  # below the confidence floor: the sentence names the two leading readings

    @property
    def level(self) -> str:
        """How alarming the verdict is: info when uncertain, else success, error (the run is lost) or
        warning."""
        if self.uncertain:
            return "info"
        return "success" if self.healthy else "error" if self.symptom in LOST_RUN_SYMPTOMS else "warning"


def verdict(diagnosis: Diagnosis, lang: str) -> Verdict:
    s = diagnosis.symptom
    title = t(f"symptoms.{s.symptom}.title", lang)
    if s.onset_step is not None:
        sentence = t(
            "ui.verdict.with_onset", lang, title=title, step=s.onset_step, pct=round(100 * s.confidence)
        )
    else:
        sentence = t("ui.verdict.no_onset", lang, title=title, pct=round(100 * s.confidence))
    summary_key = f"symptoms.{s.symptom}.summary"
    summary = t(summary_key, lang) if has(summary_key) else None
    if diagnosis.uncertain:
        sentence = diagnosis.uncertain_text(lang, "ui")
    return Verdict(
        s.symptom,
        title,
        sentence,
        s.confidence,
        s.onset_step,
        diagnosis.healthy,
        summary,
        diagnosis.uncertain,
    )


def secondary_symptoms(diagnosis: Diagnosis, lang: str) -> list[str]:
    return [t(f"symptoms.{s.symptom}.title", lang) for s in diagnosis.secondary]


def evidence_views(items: list[Evidence], lang: str) -> list[EvidenceView]:
    return [_evidence(e, lang) for e in items]


def _evidence(e: Evidence, lang: str) -> EvidenceView:
    q = e.quote
    return EvidenceView(
        text=e.text(lang),
        step=e.step,
        source=q.source if q else None,
        line=q.line if q else None,
        quote=q.text if q else None,
    )


def _fix(f: Fix, lang: str) -> FixView:
    return FixView(text=f.text(lang), snippet=f.code(lang), language=f.snippet_lang)


def _unrepeated(views: list[EvidenceView]) -> list[EvidenceView]:
    """The evidence with each log line quoted once: two rules that read the same setting both cite
    it, and a card that shows the same line twice reads as two facts."""
    seen: set[tuple[str | None, int | None, str | None]] = set()
    out = []
    for v in views:
        where = (v.source, v.line, v.quote)
        if v.quote is not None and where in seen:
            v = replace(v, source=None, line=None, quote=None)
        seen.add(where)
        out.append(v)
    return out


def causes(diagnosis: Diagnosis, lang: str) -> list[CauseView]:
    """Causes ranked by confidence, most likely first."""
    ranked = sorted(diagnosis.causes, key=lambda c: -c.confidence)
    return [
        CauseView(
            title=c.title(lang),
            confidence=c.confidence,
            rules=list(c.rules),
            evidence=_unrepeated([_evidence(e, lang) for e in c.evidence]),
            fixes=[_fix(f, lang) for f in c.fixes],
            id=c.id,
        )
        for c in ranked
    ]


def findings(diagnosis: Diagnosis, lang: str) -> list[FindingView]:
    """Findings, most severe first."""
    ordered = sorted(diagnosis.findings, key=lambda f: SEVERITY_ORDER.get(f.severity, 9))
    return [
        FindingView(
            f.rule, f.severity, f.title(lang), f.step, f.step_end, [_evidence(e, lang) for e in f.evidence]
        )
        for f in ordered
    ]


@dataclass
class UncheckedView:
    rule: str
    title: str
    needs: str  # the settings the check reads, and where a log states them


def unchecked(diagnosis: Diagnosis, lang: str) -> list[UncheckedView]:
    """The checks that could not run because the log does not show the settings they read
    (`Diagnosis.unchecked`), with what each reads, in rule order."""
    return [
        UncheckedView(r, t(f"rules.{r}.title", lang), t(f"rules.{r}.needs", lang))
        for r in sorted(diagnosis.unchecked)
    ]


def rule_doc(rule: str, lang: str) -> list[tuple[str, str]]:
    """The rule's documentation parts from the catalogue, as (heading, text) pairs (title excluded)."""
    prefix = f"rules.{rule}."
    keys = [k for k in catalogue() if k.startswith(prefix)]
    parts = [p for p in RULE_DOC_PARTS if f"{prefix}{p}" in keys and p != "title"]
    parts += sorted(k[len(prefix) :] for k in keys if k[len(prefix) :] not in RULE_DOC_PARTS)
    return [
        (t(f"ui.rule_part.{p}", lang) if has(f"ui.rule_part.{p}") else p, t(f"{prefix}{p}", lang))
        for p in parts
    ]


def human_size(n: int) -> str:
    return f"{n / 1024**2:.1f} MB" if n >= 1024**2 else f"{n / 1024:.1f} kB"


def day(timestamp: float) -> str:
    """A date as the page shows it (UTC, ISO): the same for every reader of a share."""
    return time.strftime("%Y-%m-%d", time.gmtime(timestamp))


def share_error(err: ShareError, lang: str) -> str:
    """The catalogue message for a share that could not be saved, opened or deleted."""
    return t(f"ui.error.share_{err.kind}", lang, **{k: human_size(v) for k, v in err.sizes.items()})


def chart_or_message(build: Callable[[], T], lang: str) -> tuple[T | None, str | None]:
    """(figure, None), or (None, message) when building the figure raised: a bug in the chart must not
    take the diagnosis beside it down. The traceback goes to the server log for the operator."""
    try:
        return build(), None
    except Exception:
        log.exception("building the chart failed")
        return None, t("ui.error.chart", lang)


def format_value(value: Any, lang: str = "en") -> str:
    if isinstance(value, bool):
        return t("ui.yes" if value else "ui.no", lang)
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(format_value(v, lang) for v in value)
    return str(value)


def fact_label(name: str, lang: str) -> str:
    return t(f"ui.fact.{name}", lang) if has(f"ui.fact.{name}") else name


def _batchnorm_summary(meta: RunMeta, lang: str) -> str | None:
    if not meta.batchnorm:
        return None
    if meta.batchnorm[0].source == "setting":
        return t("ui.fact.bn_setting", lang, name=meta.batchnorm[0].name)
    return t("ui.fact.bn_summary", lang, layers=len(meta.batchnorm), frozen=len(meta.frozen_batchnorm()))


def facts(log: TrainingLog, lang: str) -> list[tuple[str, str]]:
    """The run's known facts as (label, value) rows; unknown facts are left out."""
    meta = log.meta
    rows = []
    for name in FACT_FIELDS:
        value = getattr(meta, name)
        if value in (None, [], "unknown", ""):
            continue
        rows.append((fact_label(name, lang), format_value(value, lang)))
    bn = _batchnorm_summary(meta, lang)
    if bn:
        rows.append((t("ui.fact.batchnorm", lang), bn))
    if meta.lr_params:
        rows.append(
            (fact_label("lr_params", lang), format_value(list(f"{k}={v}" for k, v in meta.lr_params.items())))
        )
    return rows


def run_parameters(log: TrainingLog) -> dict[str, str]:
    """Everything comparable about a run: typed facts plus every hyper-parameter echo."""
    out = {name: format_value(getattr(log.meta, name)) for name in FACT_FIELDS}
    out = {k: v for k, v in out.items() if v not in ("None", "", "unknown")}
    for key, value in log.meta.hyperparams.items():
        out.setdefault(key, str(value))
    return out


def differing_parameters(runs: list[tuple[str, TrainingLog]]) -> list[dict[str, str]]:
    """Rows {parameter, run1, run2, ...} for the parameters whose values differ between runs."""
    params = [run_parameters(log) for _, log in runs]
    names = sorted(set().union(*params)) if params else []
    rows = []
    for name in names:
        values = [p.get(name, "—") for p in params]
        if len(set(values)) > 1:
            rows.append({"parameter": name, **{label: v for (label, _), v in zip(runs, values, strict=True)}})
    return rows


def warnings(log: TrainingLog, lang: str, limit: int = 50, diagnosis: Diagnosis | None = None) -> list[str]:
    """Parse warnings as plain text lines (source:line: message), the skipped-line count, and the
    rules that failed on this run (the others still ran)."""
    out = (
        [t("ui.warnings.rule_failed", lang, rule=rule, error=error) for rule, error in diagnosis.errors]
        if diagnosis
        else []
    )
    if log.skipped_lines:
        out.append(t("ui.warnings.skipped", lang, count=log.skipped_lines))
    for w in log.warnings[:limit]:
        where = f"{w.source}:{w.line}: " if w.source and w.line else (f"{w.source}: " if w.source else "")
        out.append(f"{where}{w.message}")
    if len(log.warnings) > limit:
        out.append(t("ui.warnings.more", lang, count=len(log.warnings) - limit))
    return out


def command_caption(command: str, lang: str) -> str:
    """What a changed command means: a command line to start with, or the settings a print log echoes
    (an argparse Namespace) with a value changed, when no settings file was uploaded."""
    if command.startswith("Namespace("):
        return t("ui.settings_change", lang)
    return t("ui.command_change", lang)
