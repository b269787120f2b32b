"""Diagnoses across several runs: what no single run can show.

LD501: loss spikes at the same step in two or more runs. Runs that read their data in the same order
(the same dataset, shuffle seed and batch size) meet a bad batch at the same step whatever their init
seed or lr, while spikes made by the optimiser fall where each run's own dynamics put them (PaLM,
OPT-175B's logbook: spikes that came back at the same data position after a restart, and went away
when the batches around them were skipped). A layer beside the diagnosis, like the early warnings
(`diagnostics.early_warning`): `shared_spikes(runs)` never changes a run's `Diagnosis`, so the
accuracy figures of `python -m diagnostics.evaluate` are untouched. Texts in `i18n/cross_run.toml`,
documented in `docs/rules.md`.

Each run's spikes are the ones LD112 reports (`diagnostics.rules.instability.loss_spikes`: the fitted
spike detector of LD108, noise filtered out); two spikes coincide when their steps are within
`ALIGN_INTERVALS` logging intervals of the coarser of the two runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from diagnostics import fitted, fixes
from diagnostics.context import Context
from diagnostics.instability import Spike
from diagnostics.model import Evidence, Fix
from diagnostics.params import Params
from diagnostics.rules._common import fmt
from diagnostics.rules.instability import loss_spikes
from i18n import t
from parsers.model import LogLine, TrainingLog

# Two spikes are at the same step when they are at most this many logging intervals apart: a bad batch
# shows at the first logged point after it, which may be one interval later in a run that logs
# differently (the loss printed is the last micro-batch's in nanoGPT, a window's average in Megatron).
ALIGN_INTERVALS = 1


@dataclass(frozen=True)
class CrossRunRule:
    id: str
    name: str  # kebab-case, names the pattern
    needs: str  # what it reads, for the docs


CROSS_RUN_RULES = (
    CrossRunRule("LD501", "spike-at-same-step-across-runs", "`train_loss` of two or more runs"),
)


@dataclass(frozen=True)
class RunSpike:
    """One run's spike at a shared step."""

    run: int  # index into the runs given
    label: str
    spike: Spike
    line: int | None  # where the peak was logged
    source: str | None


@dataclass(frozen=True)
class SharedSpike:
    step: int  # the earliest of the runs' spike steps
    spikes: tuple[RunSpike, ...]


@dataclass
class CrossRunFinding:
    """What a cross-run rule found: like a `Finding`, with the runs it concerns and its fixes."""

    rule: str
    severity: str
    runs: list[str]  # labels of every run compared
    shared: list[SharedSpike]
    evidence: list[Evidence] = field(default_factory=list)
    fixes: list[Fix] = field(default_factory=list)

    def title(self, lang: str = "en") -> str:
        return t(f"rules.{self.rule}.title", lang)

    def involves(self, label: str) -> bool:
        return any(s.label == label for shared in self.shared for s in shared.spikes)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "rule": self.rule,
            "title": self.title(lang),
            "severity": self.severity,
            "runs": self.runs,
            "steps": [s.step for s in self.shared],
            "evidence": [e.to_json(lang) for e in self.evidence],
            "fixes": [f.to_json(lang) for f in self.fixes],
        }


@dataclass(frozen=True)
class _RunSpikes:
    label: str
    interval: int  # the training loss's logging interval, in steps
    spikes: list[tuple[Spike, int | None, str | None]]  # spike, line, source


def _spikes_of(label: str, log: TrainingLog, params: Params) -> _RunSpikes:
    ctx = Context(log, params)
    curve = ctx.train_loss_raw or ctx.train_loss
    if curve is None:
        return _RunSpikes(label, 1, [])
    steps = curve.steps[curve.trend_index]
    interval = max(1, int(np.median(np.diff(steps)))) if len(steps) > 1 else 1
    found = []
    for spike in loss_spikes(ctx):
        where = ctx.curve_quote(curve, int(curve.trend_index[spike.index]))
        found.append((spike, where.line if where else None, where.source if where else None))
    return _RunSpikes(label, interval, found)


def shared_spikes(runs: list[tuple[str, TrainingLog]], params: Params | None = None) -> list[CrossRunFinding]:
    """LD501 over the (label, log) runs given: the steps where two or more runs have a loss spike, with
    the heights and lines in each and the fixes; empty when fewer than two runs or no spikes coincide."""
    if len(runs) < 2:
        return []
    params = params or fitted.PARAMS
    per_run = [_spikes_of(label, log, params) for label, log in runs]
    groups: list[SharedSpike] = []
    for i, first in enumerate(per_run):
        for spike, line, source in first.spikes:
            if any(s.run == i and s.spike == spike for g in groups for s in g.spikes):
                continue  # already in a group found from an earlier run
            members = [RunSpike(i, first.label, spike, line, source)]
            for j in range(i + 1, len(per_run)):
                other = per_run[j]
                tolerance = ALIGN_INTERVALS * max(first.interval, other.interval)
                near = [s for s in other.spikes if abs(s[0].step - spike.step) <= tolerance]
                if near:
                    match, match_line, match_source = min(near, key=lambda s: abs(s[0].step - spike.step))
                    members.append(RunSpike(j, other.label, match, match_line, match_source))
            if len(members) >= 2:
                groups.append(SharedSpike(min(m.spike.step for m in members), tuple(members)))
    if not groups:
        return []
    groups.sort(key=lambda g: g.step)
    return [_finding([label for label, _ in runs], groups)]


def _finding(labels: list[str], groups: list[SharedSpike]) -> CrossRunFinding:
    evidence: list[Evidence] = []
    for group in groups:
        evidence.append(
            Evidence(
                "evidence.cross_run_spike",
                {"step": group.step, "count": len(group.spikes), "runs": len(labels)},
                group.step,
            )
        )
        for member in group.spikes:
            s = member.spike
            numbers = {
                "n": member.run + 1,
                "label": member.label,
                "step": s.step,
                "peak": fmt(s.peak),
                "base": fmt(s.base),
                "height": f"{s.height:.3g}",
            }
            where = LogLine(member.source, member.line, "") if member.line and member.source else None
            evidence.append(Evidence("evidence.cross_run_spike_in_run", numbers, s.step, where))
    steps = ", ".join(str(g.step) for g in groups)
    runs = len({m.run for g in groups for m in g.spikes})
    fix_list = [
        Fix("fixes.inspect_batches", {"steps": steps, "runs": runs}),
        fixes.rollback_spike(groups[0].step),
    ]
    return CrossRunFinding("LD501", "warning", labels, groups, evidence, fix_list)
