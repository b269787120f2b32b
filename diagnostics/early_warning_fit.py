"""Replay labelled runs prefix by prefix and fit the early-warning thresholds on the training split.

    python -m diagnostics.early_warning_fit            # writes diagnostics/early_warning_params.json

A *case* is one labelled run parsed once; its prefixes are the run as a watch saw it after each
logged loss point (the metrics up to that step: for the formats that write in step order, what a
growing file held then). A diverging/NaN run's *onset* is its first non-finite loss or gradient norm,
or its first loss at `BLOWUP_FACTOR` times the first one, whichever comes first (a run that neither
NaNs nor blows up: the onset step of its full-run diagnosis). It is replayed up to the onset; a
warning counts when it fires at a point before it, and its lead is the steps from that point to the
onset, as a share of the steps from the first point to the onset. A healthy run is replayed to its end
(at most MAX_CUTS evenly spread prefixes); any warning on it is a false warning.

The fit is coordinate descent over each threshold's grid (`WarningParams` metadata), on the corpus's
training split (`diagnostics.split`), the extra training set (`sample_logs/corpus_extra`) and the
LLM training set (`sample_logs/llm/train/`, the replay set's families drawn with another seed: the only
runs that log a loss scale and a gradient norm ahead of a blow-up) only: the objective is runs warned
in time + the median lead share - FALSE_WARNING_WEIGHT x healthy runs warned. Each rule's `ldNNN_on`
is a field like the others (grid on, off): a rule that warns first on no training positive adds no
lead, and is switched off when its false warnings are its only effect. The test split, the fresh set,
the public logs and the LLM replay set are only ever scored (`bench/early_warning.py`).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from diagnostics import diagnose
from diagnostics.early_warning import (
    BLOWUP_FACTOR,
    CHECKS,
    PARAMS_FILE,
    Signals,
    WarningParams,
    judge,
    signals_of,
)
from diagnostics.evaluate import REAL_LABELS, REAL_LOGS, read_labels, resolve_run_path
from diagnostics.split import CORPUS, EXTRA, LLM_REPLAY, LLM_TRAIN, MANIFEST_NAME, paths_of
from parsers import ParseError, load_paths

POSITIVE = ("nan", "diverging")
LLM_REPLAY_LABELS = LLM_REPLAY / "labels.csv"
MAX_CUTS = 400  # prefixes of a healthy run that are judged (every point of a shorter run)
FALSE_WARNING_WEIGHT = 3.0  # a false warning costs three missed ones, as a false alarm does in the fit
ROUNDS = 2


@dataclass
class Case:
    path: str
    label: str  # nan, diverging or healthy
    signals: Signals | None
    cuts: list[int] = field(default_factory=list)  # the steps after which the prefix is judged
    onset: int | None = None  # the NaN / blow-up step of a positive run
    start: int | None = None  # the first logged loss step
    error: str | None = None

    @property
    def positive(self) -> bool:
        return self.label in POSITIVE


def onset_step(signals: Signals) -> int | None:
    """The first non-finite loss or gradient norm, or the first loss at BLOWUP_FACTOR x the first one."""
    found = []
    for series in (signals.loss, signals.grad_norm):
        if series is not None and len(series):
            bad = np.flatnonzero(~np.isfinite(series.values))
            if len(bad):
                found.append(int(series.steps[bad[0]]))
    loss = signals.loss
    if loss is not None and len(loss):
        finite = loss.values[np.isfinite(loss.values)]
        if len(finite) and finite[0] > 0:
            with np.errstate(invalid="ignore"):
                blown = np.flatnonzero(loss.values >= BLOWUP_FACTOR * finite[0])
            if len(blown):
                found.append(int(loss.steps[blown[0]]))
    return min(found) if found else None


def make_case(task: tuple[str, str, str]) -> Case:
    """Parse one run and lay out its replay (in a worker process; a bad log becomes an error)."""
    path, shown, label = task
    try:
        log = load_paths([path])
        signals = signals_of(log)
    except (ParseError, OSError, ValueError) as err:
        return Case(shown, label, None, error=str(err).splitlines()[0] if str(err) else type(err).__name__)
    case = Case(shown, label, signals)
    if signals.loss is None or not len(signals.loss):
        case.error = "no training loss"
        return case
    steps = np.unique(signals.loss.steps)
    case.start = int(steps[0])
    if case.positive:
        case.onset = onset_step(signals)
        if case.onset is None:
            case.onset = diagnose(log).symptom.onset_step
        case.cuts = [int(s) for s in steps if case.onset is None or s < case.onset]
    else:
        pick = np.unique(np.linspace(0, len(steps) - 1, min(MAX_CUTS, len(steps))).round().astype(int))
        case.cuts = [int(steps[i]) for i in pick]
    return case


def corpus_tasks(split: str, corpus: Path = CORPUS) -> list[tuple[str, str, str]]:
    rows = read_labels(corpus / "labels.csv", paths_of(split, corpus))
    return [
        (str(resolve_run_path(corpus, r.path)), r.path, r.symptom)
        for r in rows
        if r.symptom in (*POSITIVE, "healthy")
    ]


def real_tasks() -> list[tuple[str, str, str]]:
    if not REAL_LOGS.is_dir():
        return []
    rows = read_labels(REAL_LABELS)
    return [
        (str(resolve_run_path(REAL_LOGS, r.path)), r.path, r.symptom)
        for r in rows
        if r.symptom in (*POSITIVE, "healthy")
    ]


def replay_tasks() -> list[tuple[str, str, str]]:
    """The LLM divergence replay set (`sample_logs/llm/replay/`, from `llm_replay.py`): test data
    only, never fitted on."""
    return llm_tasks(LLM_REPLAY)


def llm_tasks(folder: Path) -> list[tuple[str, str, str]]:
    """The runs of a set written by `llm_replay.py` (replay or train)."""
    labels = folder / "labels.csv"
    if not labels.exists():
        return []
    rows = read_labels(labels)
    return [(str(folder / r.path), r.path, r.symptom) for r in rows if r.symptom in (*POSITIVE, "healthy")]


def training_tasks() -> list[tuple[str, str, str]]:
    """What the thresholds are fitted on: the corpus's training split, the extra training set and the
    LLM training set."""
    extra = corpus_tasks("train", EXTRA) if (EXTRA / MANIFEST_NAME).exists() else []
    return corpus_tasks("train") + extra + llm_tasks(LLM_TRAIN)


def _init_worker() -> None:
    os.environ["LOSS_DOCTOR_WORKERS"] = "1"


def load_cases(tasks: list[tuple[str, str, str]], jobs: int = 0) -> list[Case]:
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 or len(tasks) < 4:
        return [make_case(task) for task in tasks]
    with ProcessPoolExecutor(jobs, initializer=_init_worker) as pool:
        return list(pool.map(make_case, tasks, chunksize=4))


def first_warning(case: Case, params: WarningParams, rule: str) -> int | None:
    """The first cut at which `rule` warns (None: never)."""
    if case.signals is None:
        return None
    for step in case.cuts:
        if judge(case.signals.upto(step), params, (rule,)):
            return step
    return None


@dataclass
class Score:
    positives: int
    warnable: int  # positives with at least one point before the onset
    warned: int  # positives warned before the onset
    leads: list[float]  # lead share of each warned positive
    lead_steps: list[int]
    healthy: int
    healthy_warned: int
    by_rule: dict[str, int]  # positives each rule warned first (ties to every rule that fired then)
    false_by_rule: dict[str, int]

    @property
    def median_lead(self) -> float:
        return statistics.median(self.leads) if self.leads else 0.0

    def objective(self) -> float:
        return self.warned + self.median_lead - FALSE_WARNING_WEIGHT * self.healthy_warned


def score(cases: list[Case], firsts: dict[str, dict[str, int | None]]) -> Score:
    """Score cases from each rule's first warning per case (`firsts[rule][path]`)."""
    s = Score(0, 0, 0, [], [], 0, 0, dict.fromkeys(CHECKS, 0), dict.fromkeys(CHECKS, 0))
    for case in cases:
        if case.error is not None:
            continue
        when = {rule: firsts[rule][case.path] for rule in CHECKS if firsts[rule][case.path] is not None}
        first = min(when.values(), default=None)
        if case.positive:
            s.positives += 1
            s.warnable += bool(case.cuts)
            if first is not None and case.onset is not None and first < case.onset:
                s.warned += 1
                s.lead_steps.append(case.onset - first)
                s.leads.append((case.onset - first) / max(case.onset - case.start, 1))
                for rule, step in when.items():
                    s.by_rule[rule] += step == first
        elif first is not None:
            s.healthy_warned += 1
            for rule in when:
                s.false_by_rule[rule] += 1
        if not case.positive:
            s.healthy += 1
    return s


def all_firsts(cases: list[Case], params: WarningParams) -> dict[str, dict[str, int | None]]:
    return {rule: {c.path: first_warning(c, params, rule) for c in cases} for rule in CHECKS}


def fit(cases: list[Case], log=print) -> tuple[WarningParams, Score]:
    """Coordinate descent on the grids; a field moves only when the objective strictly improves."""
    params = WarningParams()
    firsts = all_firsts(cases, params)
    best = score(cases, firsts)
    log(f"prior: {_summary(best)}")
    for round_ in range(ROUNDS):
        moved = False
        for f in dataclasses.fields(WarningParams):
            rule = f.metadata["rule"]
            for value in f.metadata["grid"]:
                if value == getattr(params, f.name):
                    continue
                trial = dataclasses.replace(params, **{f.name: value})
                trial_firsts = {**firsts, rule: {c.path: first_warning(c, trial, rule) for c in cases}}
                trial_score = score(cases, trial_firsts)
                if trial_score.objective() > best.objective() + 1e-9:
                    params, firsts, best, moved = trial, trial_firsts, trial_score, True
                    log(f"round {round_ + 1}: {f.name} = {value}: {_summary(best)}")
        if not moved:
            break
    return params, best


def _summary(s: Score) -> str:
    return (
        f"warned {s.warned}/{s.positives} (warnable {s.warnable}), median lead {s.median_lead:.0%}, "
        f"healthy warned {s.healthy_warned}/{s.healthy}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diagnostics.early_warning_fit", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--jobs", type=int, default=0, help="processes (default: one per core)")
    parser.add_argument("--check", action="store_true", help="exit 1 when the committed thresholds differ")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cases = load_cases(training_tasks(), args.jobs)
    params, best = fit(cases)
    record = {
        "params": dataclasses.asdict(params),
        "fit": {
            "split": "corpus-train + corpus-extra + llm-train",
            "runs": sum(c.error is None for c in cases),
            "positives": best.positives,
            "warned": best.warned,
            "median_lead": round(best.median_lead, 4),
            "healthy": best.healthy,
            "healthy_warned": best.healthy_warned,
        },
    }
    text = json.dumps(record, indent=2) + "\n"
    print(f"fitted in {time.perf_counter() - started:.0f} s: {_summary(best)}")
    if args.check:
        current = PARAMS_FILE.read_text(encoding="utf-8") if PARAMS_FILE.exists() else ""
        if current != text:
            print(
                f"{PARAMS_FILE} differs from the fit: run python -m diagnostics.early_warning_fit",
                file=sys.stderr,
            )
            return 1
        return 0
    PARAMS_FILE.write_text(text, encoding="utf-8")
    print(f"wrote {PARAMS_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
