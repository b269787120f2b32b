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
spike detector of LD108, noise filtered out); two spikes coincide when their onsets (where the loss
first left its level) are less than `ALIGN_INTERVALS` logging intervals of the coarser run apart, and
only when so many coincidences are unlikely by chance (`CHANCE_ALPHA`). Runs whose stated batch sizes
differ read the same sample at different steps: they are aligned on the samples read before the step
instead: Megatron's own `consumed samples` counter where the log has it (exact, also while the batch
size ramps up), else step x batch_size x iter_size.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import poisson

from diagnostics import fitted, fixes
from diagnostics.context import Context
from diagnostics.instability import Spike
from diagnostics.model import Evidence, Fix
from diagnostics.params import Params
from diagnostics.rules._common import fmt
from diagnostics.rules.instability import loss_spikes
from i18n import t
from parsers.model import LogLine, TrainingLog, purge_orphans
from parsers.names import CONSUMED_SAMPLES

# Two spikes are at the same place when their onsets are less than this many logging intervals of the
# coarser run apart (in samples: its logged updates): a bad sample shows at the first logged point that
# read it, which is up to one interval (one coarser batch) away in a run that logs or batches differently.
ALIGN_INTERVALS = 1
# Spikes of unrelated runs fall at independent places: the number of one pair's spikes that line up by
# chance is about Poisson with mean n_a * n_b * (2 * tolerance - 1) / span (span: the positions both runs
# logged). A pair's coincidences count only when that many or more would happen by chance with a
# probability below this (a 1% false alarm per pair of unrelated runs; not fitted).
CHANCE_ALPHA = 0.01


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
    """One run's spike at a shared position of the data order."""

    run: int  # index into the runs given
    label: str
    spike: Spike
    line: int | None  # where the peak was logged
    source: str | None
    position: int  # the spike's onset step, or the samples read before it when the batch sizes differ


@dataclass(frozen=True)
class SharedSpike:
    position: int  # the earliest of the runs' spike positions
    spikes: tuple[RunSpike, ...]

    @property
    def step(self) -> int:
        """The earliest onset step among the runs."""
        return min(_onset(s.spike) for s in self.spikes)


@dataclass
class CrossRunFinding:
    """What a cross-run rule found: like a `Finding`, with the runs it concerns and its fixes."""

    rule: str
    severity: str
    runs: list[str]  # labels of every run compared
    shared: list[SharedSpike]
    by_samples: bool  # aligned on samples read (the runs' batch sizes differ or ramp up), else on steps
    chance: float  # the probability that unrelated runs line up like this (the likeliest pair's)
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
            "samples": [s.position for s in self.shared] if self.by_samples else None,
            "chance": float(f"{self.chance:.3g}"),
            "evidence": [e.to_json(lang) for e in self.evidence],
            "fixes": [f.to_json(lang) for f in self.fixes],
        }


@dataclass(frozen=True)
class DataOrder:
    """Where a run is in its data order: the samples read before a step. From the log's own counter
    (`consumed_samples`, logged steps and counts) when it has one, else from a stated batch size."""

    per_step: int | None = None  # samples an update reads (batch_size x iter_size), None when not stated
    counted: tuple[np.ndarray, np.ndarray] | None = None  # (steps, samples read by them), steps rising

    @property
    def known(self) -> bool:
        return self.counted is not None or self.per_step is not None

    @property
    def steady(self) -> int | None:
        """The samples every update reads, when that is one number (None: unknown or ramping up)."""
        if self.counted is None:
            return self.per_step
        steps, samples = self.counted
        rates = np.diff(samples, prepend=0) / np.diff(steps, prepend=0)
        return int(rates[0]) if np.all(rates == rates[0]) else None

    def samples(self, step: int) -> int:
        """Samples read before `step`: step x batch, or the counter (which counts the samples read by the
        end of a step) at the step before, linear between logged counts and past the last."""
        if self.counted is None:
            return step * (self.per_step or 1)
        steps, samples = (np.concatenate(([0], a)) for a in self.counted)
        step -= 1
        if step <= steps[-1]:
            return round(float(np.interp(step, steps, samples)))
        rate = (samples[-1] - samples[-2]) / (steps[-1] - steps[-2])
        return round(samples[-1] + (step - steps[-1]) * rate)


def data_order(log: TrainingLog) -> DataOrder:
    """The run's data order: its logged sample counter when that rises with the steps, and its batch."""
    batch = log.meta.batch_size
    per_step = batch * (log.meta.iter_size or 1) if batch else None
    counter = purge_orphans(log.series(CONSUMED_SAMPLES))
    steps = counter["step"].to_numpy(dtype=np.int64)
    samples = counter["value"].to_numpy(dtype=float)
    keep = np.isfinite(samples)
    steps, samples = steps[keep], samples[keep]
    if len(steps) and np.all(np.diff(steps) > 0) and np.all(np.diff(samples) >= 0) and steps[0] > 0:
        return DataOrder(per_step, (steps, samples))
    return DataOrder(per_step)


@dataclass(frozen=True)
class _RunSpikes:
    label: str
    interval: int  # the training loss's logging interval, in steps
    order: DataOrder
    spikes: list[tuple[Spike, int | None, str | None]]  # spike, line, source
    span: tuple[int, int] = (0, 0)  # first and last step of the judged loss


def _spikes_of(label: str, log: TrainingLog, params: Params) -> _RunSpikes:
    ctx = Context(log, params)
    order = data_order(log)
    curve = ctx.train_loss_raw or ctx.train_loss
    if curve is None:
        return _RunSpikes(label, 1, order, [])
    steps = curve.steps[curve.trend_index]
    interval = max(1, int(np.median(np.diff(steps)))) if len(steps) > 1 else 1
    try:
        detected = loss_spikes(ctx)
    except Exception:  # LD112's own detector: the run's diagnosis reports the error; no spikes here
        detected = []
    found = []
    for spike in detected:
        where = ctx.curve_quote(curve, int(curve.trend_index[spike.index]))
        found.append((spike, where.line if where else None, where.source if where else None))
    span = (int(steps[0]), int(steps[-1])) if len(steps) else (0, 0)
    return _RunSpikes(label, interval, order, found, span)


def shared_spikes(runs: list[tuple[str, TrainingLog]], params: Params | None = None) -> list[CrossRunFinding]:
    """LD501 over the (label, log) runs given: the positions of the data order where two or more runs
    have a loss spike (steps; samples read when every run's data order is known and the batches differ), with
    the heights and lines in each and the fixes; empty when fewer than two runs or no spikes coincide."""
    if len(runs) < 2:
        return []
    params = params or fitted.PARAMS
    per_run = [_spikes_of(label, log, params) for label, log in runs]
    sizes = {r.order.steady for r in per_run}
    by_samples = all(r.order.known for r in per_run) and (len(sizes) > 1 or None in sizes)
    position = [r.order.samples if by_samples else int for r in per_run]  # int: a step is its own position
    spikes = [
        [
            RunSpike(i, r.label, spike, line, source, position[i](_onset(spike)))
            for spike, line, source in r.spikes
        ]
        for i, r in enumerate(per_run)
    ]
    spans = [(position[i](r.span[0]), position[i](r.span[1])) for i, r in enumerate(per_run)]
    interval = [_interval(r, position[i]) for i, r in enumerate(per_run)]
    tolerance = {
        (i, j): ALIGN_INTERVALS * max(interval[i], interval[j])
        for i in range(len(runs))
        for j in range(i + 1, len(runs))
    }
    groups: list[SharedSpike] = []
    grouped: set[tuple[int, int]] = set()  # (run, spike step) already in a group
    for i, own in enumerate(spikes):
        for spike in own:
            if (i, spike.spike.step) in grouped:
                continue
            members = [spike]
            for j in range(i + 1, len(spikes)):
                near = [s for s in spikes[j] if abs(s.position - spike.position) < tolerance[i, j]]
                if near:
                    members.append(min(near, key=lambda s: abs(s.position - spike.position)))
            if len(members) >= 2:
                grouped |= {(m.run, m.spike.step) for m in members}
                groups.append(SharedSpike(min(m.position for m in members), tuple(members)))
    chance = {pair: _chance(pair, groups, spikes, spans, tolerance[pair]) for pair in tolerance}
    unlikely = {pair for pair, p in chance.items() if p < CHANCE_ALPHA}
    groups = [g for g in groups if any((a.run, b.run) in unlikely for a in g.spikes for b in g.spikes)]
    if not groups:
        return []
    groups.sort(key=lambda g: g.position)
    p = min(chance[pair] for pair in unlikely)
    return [_finding([label for label, _ in runs], groups, by_samples, p)]


def _chance(
    pair: tuple[int, int],
    groups: list[SharedSpike],
    spikes: list[list[RunSpike]],
    spans: list[tuple[int, int]],
    tolerance: int,
) -> float:
    """The probability that two unrelated runs with these spike counts line up at least as often as
    this pair does (Poisson; see `CHANCE_ALPHA`). 1.0 when the pair shares no spike."""
    i, j = pair
    shared = sum(1 for g in groups if {i, j} <= {m.run for m in g.spikes})
    if not shared:
        return 1.0
    lo = max(spans[i][0], spans[j][0])
    hi = min(spans[i][1], spans[j][1])
    counts = [sum(1 for s in spikes[k] if lo <= s.position <= hi) for k in pair]
    expected = counts[0] * counts[1] * (2 * tolerance - 1) / max(hi - lo + 1, 1)
    return float(poisson.sf(shared - 1, expected))


def _finding(
    labels: list[str], groups: list[SharedSpike], by_samples: bool, chance: float
) -> CrossRunFinding:
    evidence: list[Evidence] = []
    for group in groups:
        numbers = {"count": len(group.spikes), "runs": len(labels)}
        if by_samples:
            evidence.append(
                Evidence("evidence.cross_run_spike_samples", {"samples": group.position, **numbers})
            )
        else:
            evidence.append(Evidence("evidence.cross_run_spike", {"step": group.step, **numbers}, group.step))
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
    runs = len({m.run for g in groups for m in g.spikes})
    if by_samples:  # and each run's own step of the first shared spike: they differ with the batch sizes
        samples = ", ".join(str(g.position) for g in groups)
        inspect = Fix("fixes.inspect_samples", {"samples": samples, "runs": runs})
        rollbacks = [_rollback_run(m) for m in sorted(groups[0].spikes, key=lambda m: m.run)]
    else:
        steps = ", ".join(str(g.step) for g in groups)
        inspect = Fix("fixes.inspect_batches", {"steps": steps, "runs": runs})
        rollbacks = [fixes.rollback_spike(groups[0].step)]
    evidence.append(Evidence("evidence.cross_run_chance", {"p": f"{chance:.2g}"}))
    return CrossRunFinding(
        "LD501", "warning", labels, groups, by_samples, chance, evidence, [inspect, *rollbacks]
    )


def _interval(run: _RunSpikes, position) -> int:
    """The run's logging interval in positions: steps, or the samples read over a typical interval."""
    start, end = run.span
    if end <= start:
        return max(1, position(run.interval) - position(0))
    logged = max(1, (end - start) // run.interval)
    return max(1, round((position(end) - position(start)) / logged))


def _onset(spike: Spike) -> int:
    return spike.onset_step if spike.onset_step is not None else spike.step


def _rollback_run(member: RunSpike) -> Fix:
    """`fixes.rollback_spike` for one of the runs, with its own step (where its spike began)."""
    step = _onset(member.spike)
    numbers = {"n": member.run + 1, "label": member.label, "step": step}
    return Fix("fixes.rollback_spike_run", numbers | {"target": max(0, step - fixes.ROLLBACK_STEPS)})
