"""What a diagnosis is made of. Pure data: no rendering, no Streamlit.

Prose is never stored here. Evidence and fixes hold a catalogue key plus the numbers that fill it
(see `i18n`), so one diagnosis renders in English or Chinese, in the CLI, the page, the JSON and a
shared link alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from i18n import t
from parsers.model import LogLine

# A translatable comment inside a fix snippet: `# ⟦no_scale⟧` is catalogue key `snippet.no_scale`.
_SNIPPET_COMMENT = re.compile(r"⟦(\w+)⟧")

SYMPTOMS = (
    "healthy",
    "diverging",
    "nan",
    "flat",
    "plateau",
    "oscillating",
    "overfitting",
    "eval_gap",
    "spiky",
)
CAUSES = (
    "lr_too_high",
    "lr_too_low",
    "input_scale",
    "bn_stats",
    "no_pretraining",
    "depth_init",
    "small_batch",
    "loss_normalization",
    "overfitting",
    "data_issue",
    "fp16_overflow",
)
Severity = Literal["critical", "warning", "info"]
SEVERITY_ORDER = {"critical": 0, "warning": 1, "info": 2}


@dataclass(frozen=True)
class Evidence:
    """One fact supporting a finding or cause: a sentence key + its numbers, and where it shows."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    step: int | None = None
    quote: LogLine | None = None  # the log line that states it; always shown as plain text

    def text(self, lang: str = "en") -> str:
        return t(self.key, lang, **self.params)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text(lang), "key": self.key, "params": _jsonable(self.params)}
        if self.step is not None:
            out["step"] = self.step
        if self.quote is not None:
            out["line"] = self.quote.line
            out["source"] = self.quote.source
            out["quote"] = self.quote.text
        return out


@dataclass(frozen=True)
class Fix:
    """A concrete change, computed from the run's own values; `snippet` is copyable code."""

    key: str
    params: dict[str, Any] = field(default_factory=dict)
    snippet: str | None = None
    snippet_lang: str | None = None  # "prototxt", "python", "bash"

    def text(self, lang: str = "en") -> str:
        return t(self.key, lang, **self.params)

    def code(self, lang: str = "en") -> str | None:
        """The snippet with its comments (written `⟦name⟧`, catalogue key `snippet.name`) in `lang`."""
        if self.snippet is None:
            return None
        return _SNIPPET_COMMENT.sub(lambda m: t(f"snippet.{m.group(1)}", lang), self.snippet)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        out: dict[str, Any] = {"text": self.text(lang), "key": self.key, "params": _jsonable(self.params)}
        if self.snippet:
            out["snippet"] = self.code(lang)
            out["snippet_lang"] = self.snippet_lang
        return out


@dataclass
class Finding:
    """What one rule found. `step`..`step_end` is the region to shade on the chart."""

    rule: str  # stable id, e.g. "LD101"
    severity: Severity
    evidence: list[Evidence] = field(default_factory=list)
    step: int | None = None
    step_end: int | None = None
    series: str | None = None  # which curve was judged, e.g. "train/loss_raw"
    # What the rule measured, by name (e.g. "grew_before_nan": 1.0), for the cause rules to weigh;
    # flags are 1.0/0.0 (or +1/-1 for a direction). Not part of the JSON output.
    measurements: dict[str, float] = field(default_factory=dict)

    def title(self, lang: str = "en") -> str:
        return t(f"rules.{self.rule}.title", lang)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title(lang),
            "severity": self.severity,
            "step": self.step,
            "step_end": self.step_end,
            "series": self.series,
            "evidence": [e.to_json(lang) for e in self.evidence],
        }


@dataclass
class SymptomResult:
    symptom: str  # one of SYMPTOMS
    confidence: float  # 0..1
    onset_step: int | None = None
    series: str | None = None  # the curve it was judged on, e.g. "train/loss (smoothed)"
    rule: str | None = None  # the LD1xx rule that found it

    def to_json(self) -> dict[str, Any]:
        return {
            "symptom": self.symptom,
            "confidence": round(self.confidence, 3),
            "onset_step": self.onset_step,
            "series": self.series,
            "rule": self.rule,
        }


@dataclass
class Cause:
    id: str  # one of CAUSES
    confidence: float  # 0..1
    evidence: list[Evidence] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)
    rules: list[str] = field(default_factory=list)  # the rules whose findings support it

    def title(self, lang: str = "en") -> str:
        return t(f"causes.{self.id}.title", lang)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title(lang),
            "confidence": round(self.confidence, 3),
            "rules": self.rules,
            "evidence": [e.to_json(lang) for e in self.evidence],
            "fixes": [f.to_json(lang) for f in self.fixes],
        }


@dataclass
class Diagnosis:
    format: str
    framework: str
    symptom: SymptomResult
    secondary: list[SymptomResult] = field(default_factory=list)
    causes: list[Cause] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    not_applicable: list[str] = field(default_factory=list)  # rule ids that lacked their data
    # Of those, the rules whose curves were there but whose settings the log does not state.
    unchecked: list[str] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)  # (rule id, error) of rules that failed
    # Below the calibrated confidence floor the verdict is "uncertain": the page and the CLI then show
    # the two leading readings, the verdict and this runner-up, instead of one word that may be wrong.
    uncertain: bool = False
    runner_up: SymptomResult | None = None

    @property
    def healthy(self) -> bool:
        return self.symptom.symptom == "healthy"

    @property
    def healthy_on_the_curves(self) -> bool:
        """Healthy with a training loss to judge: a log without one (LD117) was never read by the curve
        rules, so "healthy as far as the curves show" would claim a check that did not run."""
        return self.healthy and all(f.rule != "LD117" for f in self.findings)

    def readings(self) -> list[tuple[str, float]]:
        """(symptom, confidence) of the verdict, then of the runner-up when there is one."""
        out = [(self.symptom.symptom, self.symptom.confidence)]
        if self.runner_up is not None:
            out.append((self.runner_up.symptom, self.runner_up.confidence))
        return out

    def uncertain_text(self, lang: str, surface: str) -> str:
        """ "Uncertain: A (55%) or B (30%)", in the words of `surface` ("ui" or "cli")."""
        names = [(t(f"symptoms.{name}.title", lang), round(100 * conf)) for name, conf in self.readings()]
        if len(names) == 1:
            return t(f"{surface}.uncertain.one", lang, first=names[0][0], first_pct=names[0][1])
        first, second = names[:2]
        return t(
            f"{surface}.uncertain.two",
            lang,
            first=first[0],
            first_pct=first[1],
            second=second[0],
            second_pct=second[1],
        )

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "format": self.format,
            "framework": self.framework,
            "symptom": self.symptom.symptom,
            "onset_step": self.symptom.onset_step,
            "confidence": round(self.symptom.confidence, 3),
            "uncertain": self.uncertain,
            "readings": [{"symptom": s, "confidence": round(c, 3)} for s, c in self.readings()],
            "series": self.symptom.series,
            "verdict": t(f"symptoms.{self.symptom.symptom}.title", lang),
            "secondary": [s.to_json() for s in self.secondary],
            "causes": [c.to_json(lang) for c in self.causes],
            "findings": [f.to_json(lang) for f in self.findings],
            "not_applicable": self.not_applicable,
            "unchecked": self.unchecked,
            "errors": [{"rule": r, "error": e} for r, e in self.errors],
        }


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    """Numbers stay numbers; NaN/inf become strings so the JSON stays strict."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, float) and value != value:
            out[key] = "nan"
        elif isinstance(value, float) and value in (float("inf"), float("-inf")):
            out[key] = "inf" if value > 0 else "-inf"
        elif isinstance(value, (str, int, float, bool)) or value is None:
            out[key] = value
        else:
            out[key] = str(value)
    return out
