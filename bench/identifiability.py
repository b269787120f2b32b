"""How much of the held-out error the log could explain: `python bench/identifiability.py [--jobs N]`.

The rules miss issue 9's cause targets on the held-out sets. Is that because the rules use the log's
information badly, or because the log does not hold it? This study fits a flexible model (a random forest,
scikit-learn, a dev-only dependency) on what the engine already measures - each cause's confidence, each
symptom's, every finding's measurements and a few curve statistics - on the tuning sets only (corpus
training split and extra set), and scores it on the held-out sets (test split, fresh and unseen sets)
beside the rules:

* cause ranking with the verdict kept (a fault the verdict calls healthy has no cause, as in the product);
* cause ranking when told the run is faulty (what a perfect verdict would allow);
* a fault detector over the runs the verdict calls healthy, at the threshold where at most 1 % of the
  tuning sets' healthy runs (out-of-bag) are flagged: faults caught and healthy runs newly flagged, on the
  held-out sets and on the public logs' healthy runs.

Run length, point counts and step numbers are left out: they tell the generator's recipes apart, not
the faults. The model is a measuring instrument, not part of the engine. `--runs` lists the held-out runs
the detector flags.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diagnostics import diagnose, fitted
from diagnostics.context import Context
from diagnostics.evaluate import SETTINGS, read_labels, resolve_run_path, set_source
from diagnostics.features import Curve
from diagnostics.model import Diagnosis
from parsers import ParseError, load_paths

TUNING = ("corpus-train", "corpus-extra")
HELD_OUT = ("corpus-test", "corpus-fresh", "corpus-unseen")
TREES = 500
SEED = 0
FLAG_RATE = 0.01  # share of the tuning sets' healthy runs (out-of-bag) the fault detector may flag


@dataclass
class Run:
    set: str
    path: str
    symptom: str  # label
    causes: list[str]  # label
    verdict: str = "unreadable"
    ranked: tuple[str, ...] = ()
    states_settings: bool = False
    features: dict[str, float] | None = None


def curve_statistics(prefix: str, curve: Curve | None) -> dict[str, float]:
    """Shape of one loss curve as log ratios to its start level (scale-free), and its Kendall tau."""
    if curve is None or len(curve) == 0:
        return {}
    start = curve.start_level
    out = {f"{prefix}.tau": curve.tau}
    levels = {"end": curve.end_level, "min": curve.min_level}
    levels.update({f"at{q:g}": curve.level_at(q) for q in (0.25, 0.5, 0.75)})
    for name, level in levels.items():
        if start > 0 and level > 0 and math.isfinite(start) and math.isfinite(level):
            out[f"{prefix}.{name}"] = math.log(level / start)
    return out


def run_features(ctx: Context, diagnosis: Diagnosis) -> dict[str, float]:
    """What the engine measured on one run, by name."""
    out: dict[str, float] = {f"symptom.{diagnosis.symptom.symptom}": diagnosis.symptom.confidence}
    for other in diagnosis.secondary:
        out[f"symptom.{other.symptom}"] = other.confidence
    for cause in diagnosis.causes:
        out[f"cause.{cause.id}"] = max(out.get(f"cause.{cause.id}", 0.0), cause.confidence)
    for finding in diagnosis.findings:
        out[f"{finding.rule}.fired"] = 1.0
        for key, value in finding.measurements.items():
            if not key.endswith("_step"):  # a step number is the run's length in disguise
                out[f"{finding.rule}.{key}"] = float(value)
    out.update(curve_statistics("train", ctx.train_loss))
    out.update(curve_statistics("val", ctx.val_loss))
    accuracy = ctx.eval_accuracy()
    if accuracy is not None:
        values, scale = accuracy
        for name, value in (("first", values[0]), ("best", values.max()), ("last", values[-1])):
            out[f"acc.{name}"] = value / scale
    return {k: v for k, v in out.items() if math.isfinite(v)}


def judge(run: Run) -> Run:
    """Diagnose one run in a worker; an unreadable log keeps no features."""
    try:
        log = load_paths([run.path])
        diagnosis = diagnose(log)
    except (ParseError, OSError, ValueError):
        return run
    run.verdict = diagnosis.symptom.symptom
    run.ranked = tuple(c.id for c in diagnosis.causes)
    run.states_settings = any(getattr(log.meta, name) is not None for name in SETTINGS)
    run.features = run_features(Context(log, fitted.PARAMS), diagnosis)
    return run


def labelled_runs() -> list[Run]:
    """The labelled runs of the tuning and held-out corpus sets and of the public logs (as one set)."""
    runs = []
    for name in (*TUNING, *HELD_OUT, "real-blind", "real-tuned"):
        source = set_source(name)
        if source is None:
            continue
        labels, filters = source
        base = filters.get("base", labels.parent)
        kind = "real logs" if name.startswith("real-") else name
        for row in read_labels(labels, filters.get("only"), filters.get("where")):
            runs.append(Run(kind, str(resolve_run_path(base, row.path)), row.symptom, row.causes))
    return runs


def matrix(runs: list[Run], names: list[str]) -> np.ndarray:
    """Features in a fixed column order; a measurement a rule did not take is -1 (never a real value
    of a confidence, a flag or a share)."""
    return np.array([[r.features.get(n, -1.0) for n in names] for r in runs])


def share(hits: int, total: int) -> str:
    return f"{hits}/{total} = {hits / total:.1%}" if total else "-"


def cause_table(runs: list[Run], model, names: list[str]) -> list[str]:
    """Rules against the model on the labelled faults of each held-out set, by what the log states."""
    out = [
        "| runs | faults | called healthy | rules top-1 / top-2 | model, verdict kept "
        "| model, told it is a fault |",
        "|---|---|---|---|---|---|",
    ]
    groups = {}
    for name in HELD_OUT:
        faults = [r for r in runs if r.set == name and r.causes]
        groups[name] = faults
        groups[f"{name}, settings stated"] = [r for r in faults if r.states_settings]
        groups[f"{name}, curves only"] = [r for r in faults if not r.states_settings]
    groups["all held-out sets"] = [r for r in runs if r.set in HELD_OUT and r.causes]
    for group, faults in groups.items():
        if not faults:
            continue
        proba = model.predict_proba(matrix(faults, names))
        order = [[model.classes_[j] for j in np.argsort(-p, kind="stable")] for p in proba]

        def right(ranked, run: Run, k: int) -> bool:
            return any(c in run.causes for c in ranked[:k])

        rules = [sum(right(r.ranked, r, k) for r in faults) for k in (1, 2)]
        pairs = list(zip(order, faults, strict=True))
        kept = [sum(right(o, r, k) for o, r in pairs if r.verdict != "healthy") for k in (1, 2)]
        told = [sum(right(o, r, k) for o, r in pairs) for k in (1, 2)]
        n = len(faults)
        called_healthy = sum(r.verdict == "healthy" for r in faults)
        out.append(
            f"| {group} | {n} | {called_healthy} | {rules[0] / n:.1%} / {rules[1] / n:.1%} | "
            f"{kept[0] / n:.1%} / {kept[1] / n:.1%} | {told[0] / n:.1%} / {told[1] / n:.1%} |"
        )
    return out


def detector_table(runs: list[Run], names: list[str], jobs: int, listing: bool) -> list[str]:
    """A fault detector over the runs the verdict calls healthy, its threshold set out-of-bag."""
    from sklearn.ensemble import RandomForestClassifier

    tuning = [r for r in runs if r.set in TUNING and r.verdict == "healthy"]
    detector = RandomForestClassifier(
        TREES, min_samples_leaf=3, random_state=SEED, n_jobs=jobs, oob_score=True
    ).fit(matrix(tuning, names), [r.symptom != "healthy" for r in tuning])
    oob = detector.oob_decision_function_[:, 1]
    healthy_oob = np.sort([p for p, r in zip(oob, tuning, strict=True) if r.symptom == "healthy"])
    allowed = int(FLAG_RATE * sum(r.symptom == "healthy" for r in tuning))
    threshold = float(healthy_oob[-allowed - 1]) + 1e-9 if allowed < len(healthy_oob) else 1.0
    out = [
        f"Fault detector over the runs called healthy: flags at p >= {threshold:.2f} (out-of-bag, at most "
        f"{allowed} of the tuning sets' healthy runs flagged).",
        "",
        "| runs | faults called healthy: caught | healthy runs: newly flagged |",
        "|---|---|---|",
    ]
    listed = []
    for name in (*TUNING, *HELD_OUT, "real logs"):
        called = [r for r in runs if r.set == name and r.verdict == "healthy"]
        if not called:
            continue
        if name in TUNING:
            p = [oob[i] for i, r in enumerate(tuning) if r.set == name]
        else:
            p = list(detector.predict_proba(matrix(called, names))[:, 1])
        flagged = [r for r, q in zip(called, p, strict=True) if q >= threshold]
        faults = sum(r.symptom != "healthy" for r in called)
        healthy = sum(r.symptom == "healthy" for r in runs if r.set == name)
        caught = sum(r.symptom != "healthy" for r in flagged)
        flagged_healthy = sum(r.symptom == "healthy" for r in flagged)
        kind = " (out-of-bag)" if name in TUNING else ""
        out.append(f"| {name}{kind} | {share(caught, faults)} | {share(flagged_healthy, healthy)} |")
        if name not in TUNING:
            listed += [f"  {name}: {Path(r.path).name} label {r.symptom}, flagged" for r in flagged]
    return out + (["", *listed] if listing else [])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--runs", action="store_true", help="list the held-out runs the detector flags")
    args = parser.parse_args(argv)
    from sklearn.ensemble import RandomForestClassifier

    started = time.perf_counter()
    os.environ["LOSS_DOCTOR_WORKERS"] = "1"
    with ProcessPoolExecutor(args.jobs) as pool:
        runs = [r for r in pool.map(judge, labelled_runs(), chunksize=8) if r.features is not None]
    names = sorted({k for r in runs if r.set in TUNING for k in r.features})
    faults = [r for r in runs if r.set in TUNING and r.causes]
    ranker = RandomForestClassifier(TREES, min_samples_leaf=2, random_state=SEED, n_jobs=args.jobs)
    ranker.fit(matrix(faults, names), [r.causes[0] for r in faults])
    print(f"{len(runs)} runs diagnosed; {len(names)} measurements; fitted on {len(faults)} tuning faults\n")
    print("\n".join(cause_table(runs, ranker, names)))
    print()
    print("\n".join(detector_table(runs, names, args.jobs, args.runs)))
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
