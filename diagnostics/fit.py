"""Fit the rule catalogue's numbers on the corpus's training split: `python -m diagnostics.fit`.

Deterministic and explainable, in two stages:

1. **Thresholds and cause weights**: coordinate descent over the `Params` fields that declare a grid
   (`params.tunable_fields()`): for each field in turn, every value of its grid is tried with the
   others held, and the best is kept only when it beats the current value on the training runs
   by at least the worth of `MIN_RUNS_MOVED` runs (ties and one-run gains keep the current value: a
   threshold fitted to one run is a bug) and is no worse on either of two folds of the training recipe
   groups (a gain that only half of the groups see is noise, not a general rule). The objective counts
   a false alarm on a healthy run three times, because a tool that cries wolf is not read:
   `symptom accuracy + cause top-1 + 0.5 * cause top-2 - 3 * false-alarm rate`, where each grid value
   is charged the highest false-alarm rate within one grid notch of it (`charged_alarms`): a threshold
   just outside the training split's healthy runs alarms on the next healthy run, so the fit keeps a
   notch of margin from them.
   Hard constraints: a value that gets one of the four DEVELOPERS cases (`sample_logs`, column `case`)
   wrong, or one of the public real logs the rules were checked against while they were written
   (`real_logs_labels.csv`, `labelled=tuned`: 22 healthy, 16 failed), is never taken.
2. **Calibration**: Platt scaling of the raw verdict and cause scores (`diagnostics.calibration`).

The training runs are the corpus's training split, the extra training set (`sample_logs/corpus_extra`),
the 36 hand-made samples and the large-model training runs (`sample_logs/llm/train`: healthy runs whose
loss spikes at a bad stretch of data and recovers, which a spike threshold must leave alone); all tuning
data. The test split, the fresh set and the LLM replay set are never read here.
The result goes to `diagnostics/fitted_params.json`; `--check` fits again and fails when the committed
file differs.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from diagnostics import diagnose
from diagnostics.calibration import IDENTITY, Calibration, Platt
from diagnostics.evaluate import REAL_LABELS, REAL_LOGS, SAMPLES, Row, read_labels, resolve_run_path
from diagnostics.fitted import FITTED_FILE
from diagnostics.model import Diagnosis
from diagnostics.params import DEFAULT_PARAMS, Params, tunable_fields
from diagnostics.split import CORPUS, EXTRA, LLM_TRAIN, MANIFEST_NAME, REPO, paths_of, read_manifest
from parsers import ParseError, load_paths

FALSE_ALARM_WEIGHT = 3.0
MIN_RUNS_MOVED = 2
UNCERTAIN_BELOW = 0.6
DEFAULT_ROUNDS = 2

# The parsed training runs, set in the parent before the worker pool forks (workers inherit them).
_LOGS: list = []


@dataclass
class Run:
    row: Row
    case: bool  # a hard constraint: one of the four DEVELOPERS cases, or a real log checked while tuning
    scored: bool = True  # counted in the objective (the real logs are only constraints)
    fold: int = 0  # which half of the training recipe groups the run belongs to


def _fold(key: str) -> int:
    return int(hashlib.sha256(f"loss-doctor-fold:{key}".encode()).hexdigest()[:8], 16) % 2


def training_runs() -> list[Run]:
    """The corpus's training split, the extra training set, the hand-made samples and the LLM training
    runs, with their labels."""
    import csv

    with SAMPLES.open(newline="", encoding="utf-8") as fh:
        cases = {r["path"] for r in csv.DictReader(fh) if r.get("case")}
    runs = []
    for corpus in (CORPUS, EXTRA):
        if not (corpus / MANIFEST_NAME).exists():
            continue
        group = {e.path: e.group for e in read_manifest(corpus)}
        for r in read_labels(corpus / "labels.csv", paths_of("train", corpus)):
            runs.append(Run(r, False, fold=_fold(group[r.path])))
            r.path = str((corpus / r.path).relative_to(REPO))
    for r in read_labels(SAMPLES):
        r.path = str(resolve_run_path(SAMPLES.parent, r.path).relative_to(REPO))
        runs.append(Run(r, r.path.removeprefix("sample_logs/") in cases, fold=_fold(r.path)))
    for r in read_labels(LLM_TRAIN / "labels.csv") if LLM_TRAIN.is_dir() else []:
        r.path = str((LLM_TRAIN / r.path).relative_to(REPO))
        runs.append(Run(r, False, fold=_fold(r.path)))
    if REAL_LOGS.is_dir():
        for r in read_labels(REAL_LABELS, where={"labelled": "tuned"}):
            r.path = str(REAL_LOGS / r.path)
            runs.append(Run(r, True, scored=False))
    return runs


def _parse(path: str):
    try:
        return load_paths([REPO / path])
    except (ParseError, OSError, ValueError):
        return None


_FIELDS = frozenset(f.name for f in dataclasses.fields(Params))


class _Reading(Params):
    """Params that note which fields a diagnosis reads. The diagnosis is deterministic and sees the
    params only through their fields, so its verdict is a function of the values it read: under params
    that agree on those values it would run the same way and give the same verdict."""

    def __getattribute__(self, name: str):
        if name in _FIELDS:
            object.__getattribute__(self, "_read").add(name)
        elif name == "__dict__":  # every field at once
            object.__getattribute__(self, "_read").update(_FIELDS)
        return object.__getattribute__(self, name)


def _verdicts(task: tuple[Params, list[int]]) -> list[tuple[tuple, frozenset[str]]]:
    """Each run's verdict under the params, with the names of the fields its diagnosis read."""
    params, indices = task
    out = []
    for i in indices:
        log = _LOGS[i]
        if log is None:
            out.append((("unreadable", math.nan, [], math.nan), frozenset()))
            continue
        reading = _Reading(**{name: getattr(params, name) for name in _FIELDS})
        object.__setattr__(reading, "_read", set())
        verdict = verdict_of(diagnose(log, reading, IDENTITY))
        out.append((verdict, frozenset(object.__getattribute__(reading, "_read"))))
    return out


def verdict_of(d: Diagnosis) -> tuple:
    """What the objective scores: (symptom, its confidence, the causes' ids, the first cause's confidence)."""
    return (
        d.symptom.symptom,
        d.symptom.confidence,
        [c.id for c in d.causes],
        d.causes[0].confidence if d.causes else math.nan,
    )


class Judge:
    """Diagnoses every training run under given params, in worker processes that share the parsed logs.

    A run is diagnosed again only when the params differ in a field its last diagnoses read (`_Reading`):
    a trial moves one field, and most fields are read by a few rules on a few runs, so most verdicts of a
    trial are the ones already known. Exact, not an approximation: a test compares it with diagnosing
    every run afresh."""

    MEMO_PER_RUN = 8  # a field's grid has at most 7 values: its trials plus the current params' verdict

    def __init__(self, runs: list[Run], jobs: int):
        self.runs = runs
        self.jobs = max(1, jobs)
        self.pool = ProcessPoolExecutor(self.jobs) if self.jobs > 1 else None
        # Per run, most recent first: (the values of the fields the diagnosis read, its verdict).
        self.memo: list[list[tuple[tuple[tuple[str, object], ...], tuple]]] = [[] for _ in runs]
        self.asked = self.diagnosed = 0

    def _recall(self, i: int, params: Params) -> tuple | None:
        entries = self.memo[i]
        for k, (read, verdict) in enumerate(entries):
            if all(_same(getattr(params, name), value) for name, value in read):
                entries.insert(0, entries.pop(k))
                return verdict
        return None

    def __call__(self, params: Params) -> list[tuple]:
        results: list[tuple | None] = [self._recall(i, params) for i in range(len(self.runs))]
        todo = [i for i, verdict in enumerate(results) if verdict is None]
        shards = [todo[k :: self.jobs] for k in range(self.jobs)]
        tasks = [(params, shard) for shard in shards]
        done = list(self.pool.map(_verdicts, tasks)) if self.pool else [_verdicts(tasks[0])]
        for shard, out in zip(shards, done, strict=True):
            for i, (verdict, read) in zip(shard, out, strict=True):
                entries = self.memo[i]
                entries.insert(0, (tuple((name, getattr(params, name)) for name in sorted(read)), verdict))
                del entries[self.MEMO_PER_RUN :]
                results[i] = verdict
        self.asked += len(self.runs)
        self.diagnosed += len(todo)
        return results  # type: ignore[return-value]

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _same(a: object, b: object) -> bool:
    """Equal field values; a NaN equals itself (a field's value object is shared by every trial)."""
    return a is b or a == b


def objective(runs: list[Run], verdicts: list[tuple]) -> tuple[float, bool, dict]:
    """(score, every case right, the parts) of one set of verdicts."""
    symptom_right = cause_runs = top1 = top2 = healthy = alarms = 0
    cases_right = True
    for run, (predicted, _, ranked, _) in zip(runs, verdicts, strict=True):
        row = run.row
        if not run.scored:
            unhealthy = row.symptom == "unhealthy" and predicted not in ("healthy", "unreadable")
            first_ok = not row.causes or (bool(ranked) and ranked[0] in row.causes)
            cases_right = cases_right and (predicted == row.symptom or unhealthy) and first_ok
            continue
        right = predicted == row.symptom or (
            row.symptom == "unhealthy" and predicted not in ("healthy", "unreadable")
        )
        symptom_right += right
        first_right = True
        if row.causes:
            cause_runs += 1
            first_right = bool(ranked) and ranked[0] in row.causes
            top1 += first_right
            top2 += bool(set(ranked[:2]) & set(row.causes))
        if row.symptom == "healthy":
            healthy += 1
            alarms += predicted != "healthy"
        if run.case and not (right and first_right):
            cases_right = False
    n = sum(r.scored for r in runs) or 1
    parts = {
        "symptom": symptom_right / n,
        "top1": top1 / (cause_runs or 1),
        "top2": top2 / (cause_runs or 1),
        "false_alarms": alarms / (healthy or 1),
    }
    score = (
        parts["symptom"] + parts["top1"] + 0.5 * parts["top2"] - FALSE_ALARM_WEIGHT * parts["false_alarms"]
    )
    return score, cases_right, parts


def fold_scores(runs: list[Run], verdicts: list[tuple]) -> list[float]:
    """The objective on each fold of the training groups (constraints aside)."""
    out = []
    for fold in (0, 1):
        chosen = [i for i, r in enumerate(runs) if r.scored and r.fold == fold]
        out.append(objective([runs[i] for i in chosen], [verdicts[i] for i in chosen])[0])
    return out


class _Trial(NamedTuple):
    """One grid value of a field, judged with the others held."""

    params: Params
    score: float  # the objective, false alarms counted as they are
    cases_ok: bool
    parts: dict
    folds: list[float]


def charged_alarms(alarm_rates: list[float]) -> list[float]:
    """The false-alarm rate each grid value is charged: the worst within one grid notch of it.

    A threshold that sits just outside the training split's healthy runs alarms on the next healthy run,
    so a value pays for the false alarms of its neighbours too. At a grid's end the missing neighbour is
    extrapolated from the one inside (a rate that climbs towards the end keeps climbing past it).
    """
    n = len(alarm_rates)
    charged = []
    for i, rate in enumerate(alarm_rates):
        near = alarm_rates[max(0, i - 1) : i + 2]
        if n > 1 and i in (0, n - 1):
            inner = alarm_rates[1 if i == 0 else n - 2]
            near = [*near, 2 * rate - inner]
        charged.append(max(near))
    return charged


def fit_params(judge: Judge, rounds: int, log=print) -> tuple[Params, dict]:
    params = DEFAULT_PARAMS
    state = judge(params)
    raw, cases_ok, parts = objective(judge.runs, state)
    folds = fold_scores(judge.runs, state)
    min_gain = MIN_RUNS_MOVED / max(1, sum(r.scored for r in judge.runs))
    log(f"start: objective {raw:.4f} {_fmt(parts)} cases {'ok' if cases_ok else 'WRONG'}")
    fields = tunable_fields()
    for round_no in range(1, rounds + 1):
        moved = False
        for f in fields:
            current = getattr(params, f.name)
            grid = list(f.metadata["grid"])
            trials = []
            for value in grid:
                if value == current:
                    trials.append(_Trial(params, raw, cases_ok, parts, folds))
                    continue
                trial = dataclasses.replace(params, **{f.name: value})
                verdicts = judge(trial)
                trials.append(
                    _Trial(trial, *objective(judge.runs, verdicts), fold_scores(judge.runs, verdicts))
                )
            charged = charged_alarms([t.parts["false_alarms"] for t in trials])
            scores = [
                t.score - FALSE_ALARM_WEIGHT * (c - t.parts["false_alarms"])
                for t, c in zip(trials, charged, strict=True)
            ]
            here = grid.index(current)
            chosen = None
            for i, t in enumerate(trials):
                steady = all(a >= b - 1e-9 for a, b in zip(t.folds, folds, strict=True))
                clears = scores[i] >= scores[here] + min_gain - 1e-9
                best_yet = chosen is None or scores[i] > scores[chosen] + 1e-9
                if i != here and t.cases_ok and steady and clears and best_yet:
                    chosen = i
            if chosen is not None:
                params, raw, cases_ok, parts, folds = trials[chosen]
                moved = True
                log(
                    f"round {round_no}: {f.name} {current} -> {grid[chosen]}: {raw:.4f} "
                    f"(charged {scores[chosen]:.4f}) {_fmt(parts)}"
                )
        if not moved:
            break
    return params, {"objective": round(raw, 6), **{k: round(v, 6) for k, v in parts.items()}}


def fit_calibration(runs: list[Run], verdicts: list[tuple]) -> Calibration:
    """Platt maps for problem verdicts, healthy verdicts and the first cause, from raw scores."""
    problem, healthy, cause = ([], []), ([], []), ([], [])
    for run, (predicted, conf, ranked, cause_conf) in zip(runs, verdicts, strict=True):
        row = run.row
        if not run.scored or predicted == "unreadable" or not math.isfinite(conf):
            continue
        right = predicted == row.symptom or (row.symptom == "unhealthy" and predicted != "healthy")
        target = healthy if predicted == "healthy" else problem
        target[0].append(conf)
        target[1].append(right)
        if row.causes and ranked and math.isfinite(cause_conf):
            cause[0].append(cause_conf)
            cause[1].append(ranked[0] in row.causes)
    return Calibration(
        Platt.fit(np.array(problem[0]), np.array(problem[1])),
        Platt.fit(np.array(healthy[0]), np.array(healthy[1])),
        Platt.fit(np.array(cause[0]), np.array(cause[1])),
        UNCERTAIN_BELOW,
    )


def _fmt(parts: dict) -> str:
    return " ".join(f"{k}={v:.3f}" for k, v in parts.items())


def fit(jobs: int, rounds: int, log=print) -> dict:
    global _LOGS
    os.environ["LOSS_DOCTOR_WORKERS"] = "1"
    runs = training_runs()
    start = time.perf_counter()
    _LOGS = [_parse(r.row.path) for r in runs]
    log(f"{len(runs)} training runs parsed in {time.perf_counter() - start:.1f}s")
    judge = Judge(runs, jobs)
    try:
        params, record = fit_params(judge, rounds, log)
        calibration = fit_calibration(runs, judge(params))
        log(f"{judge.diagnosed} diagnoses for {judge.asked} verdicts (the rest were known)")
    finally:
        judge.close()
    tuned = {f.name: getattr(params, f.name) for f in tunable_fields()}
    return {
        "fit": {
            "training_runs": len(runs),
            "split_manifest_sha256": _sha256(CORPUS / MANIFEST_NAME),
            "extra_manifest_sha256": _sha256(EXTRA / MANIFEST_NAME),
            "rounds": rounds,
            "false_alarm_weight": FALSE_ALARM_WEIGHT,
            "training_scores": record,
        },
        "params": tuned,
        "calibration": calibration.to_dict(),
    }


def _sha256(path: Path) -> str | None:
    """The checksum of a split manifest the fit read (None when the set is absent)."""
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.exists() else None


def dump(result: dict) -> str:
    return json.dumps(result, indent=2, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diagnostics.fit", description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="passes of coordinate descent")
    parser.add_argument("--out", type=Path, default=FITTED_FILE)
    parser.add_argument("--check", action="store_true", help="fail when the committed file differs")
    args = parser.parse_args(argv)
    result = dump(fit(args.jobs, args.rounds))
    if args.check:
        same = args.out.exists() and args.out.read_text(encoding="utf-8") == result
        print("the committed fitted params are reproduced" if same else f"{args.out} differs from a new fit")
        return 0 if same else 1
    args.out.write_text(result, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
