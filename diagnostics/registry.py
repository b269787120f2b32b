"""The rule registry: one table of stable ids, like ruff's `codes.rs`, filled by a decorator.

A rule is a small pure function over a `Context` that returns a `RuleResult` (findings, and for
symptom rules a `SymptomResult`, for cause rules a `Cause`) or None when it found nothing. It declares
what it needs (curves and run facts); the runner reports it as *not applicable* when they are missing.
Ids are never reused: shared links store findings by id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from diagnostics.model import Cause, Finding, SymptomResult

if TYPE_CHECKING:
    from diagnostics.context import Context

RuleKind = Literal["symptom", "cause", "config"]
_ID = re.compile(r"^LD[123]\d\d$")
_KIND_OF_PREFIX = {"1": "symptom", "2": "cause", "3": "config"}

# Curves a rule may require (see Context): the judged training loss, the validation loss, the lr.
CURVES = ("train_loss", "val_loss", "lr")


@dataclass
class RuleResult:
    findings: list[Finding] = field(default_factory=list)
    symptom: SymptomResult | None = None
    cause: Cause | None = None


@dataclass(frozen=True)
class Rule:
    id: str  # LD1xx symptom, LD2xx cause, LD3xx config check
    name: str  # kebab-case, names the flagged pattern (not the fix)
    kind: RuleKind
    check: Callable  # (Context) -> RuleResult | None
    curves: tuple[str, ...] = ()  # required curves, from CURVES
    meta: tuple[str, ...] = ()  # required RunMeta fields (all must be known)
    any_meta: tuple[str, ...] = ()  # at least one of these RunMeta fields must be known
    symptom: str | None = None  # the symptom an LD1xx rule detects
    cause: str | None = None  # the cause an LD2xx rule scores
    since: str = "0.1.0"
    status: Literal["stable", "preview"] = "stable"

    def applies(self, ctx: Context) -> bool:
        """The run has the curves and settings the rule reads."""
        if any(not ctx.has_curve(c) for c in self.curves):
            return False
        if not all(_stated(ctx, m) for m in self.meta):
            return False
        return not self.any_meta or any(_stated(ctx, m) for m in self.any_meta)

    def lacks_only_settings(self, ctx: Context) -> bool:
        """Its curves are there but none of the settings it reads, in a log that does not describe the
        net either (a curves-only log: TensorBoard, CSV, trainer_state): the check could not run. The
        page says so, so that a healthy verdict is not read as "nothing wrong with the configuration".
        (Where the net is described, an empty list of BatchNorm or frozen layers means there are none.)"""
        facts = (*self.meta, *self.any_meta)
        if not facts or any(not ctx.has_curve(c) for c in self.curves):
            return False
        if ctx.meta.depth is not None or ctx.meta.net_name is not None:
            return False
        return not any(_stated(ctx, m) for m in facts)


def _stated(ctx: Context, fact: str) -> bool:
    """The log states the run fact (an empty list or dict is a fact not stated)."""
    return getattr(ctx.meta, fact) not in (None, [], {})


RULES: dict[str, Rule] = {}


def rule(
    id: str,
    name: str,
    *,
    curves: tuple[str, ...] = (),
    meta: tuple[str, ...] = (),
    any_meta: tuple[str, ...] = (),
    symptom: str | None = None,
    cause: str | None = None,
) -> Callable[[Callable], Callable]:
    """Register a rule function under a stable id."""

    def register(fn: Callable) -> Callable:
        if not _ID.match(id):
            raise ValueError(f"bad rule id {id!r}")
        if id in RULES:
            raise ValueError(f"rule id {id} registered twice")
        if any(c not in CURVES for c in curves):
            raise ValueError(f"{id}: unknown curve requirement {curves}")
        kind = _KIND_OF_PREFIX[id[2]]
        RULES[id] = Rule(id, name, kind, fn, curves, meta, any_meta, symptom, cause)  # type: ignore[arg-type]
        return fn

    return register


def all_rules() -> list[Rule]:
    """Every rule, symptom rules first, then config checks, then causes (the order they run in)."""
    import diagnostics.rules  # noqa: F401  (registers the rules)

    order = {"symptom": 0, "config": 1, "cause": 2}
    return sorted(RULES.values(), key=lambda r: (order[r.kind], r.id))


def rule_by_id(rule_id: str) -> Rule:
    """One rule (KeyError for an unknown id); loads the catalogue first."""
    return {r.id: r for r in all_rules()}[rule_id]
