"""Score the engine on labelled runs: `python -m diagnostics.evaluate [LABELS.csv] [--set NAME] [--json]`.

Without a labels file it scores every labelled set separately, since a number is only evidence about
data it was not fitted on:

* `corpus-train`: the training split of `sample_logs/corpus` — thresholds and weights are fitted here
  (tuning numbers);
* `corpus-test`: the frozen test split (held-out families and recipe groups, `diagnostics.split`) —
  the figures to quote;
* `corpus-fresh`: a second held-out set of the same generator's later groups (`sample_logs/corpus_fresh`),
  made after the test split's mistakes had been read, so that changes suggested by them are judged on
  runs no one has looked at;
* `corpus-unseen`: a third held-out set (`sample_logs/corpus_unseen`), the groups after the extra set's,
  made after the test split and the fresh set had both been read; read only in aggregate;
* `corpus-extra`: more training runs (`sample_logs/corpus_extra`, the generator's groups after the fresh
  set's, without the held-out family), fitted on like the training split (tuning numbers);
* `real-blind`: public logs of real runs (`../shared/real_logs`), labelled by hand in
  `sample_logs/real_logs_labels.csv` without running the tool (skipped when the folder is absent);
* `real-tuned`: the public logs that the rules were checked against while they were written (tuning
  numbers);
* `samples`: the 36 hand-made sample runs, which the rules were first written against (tuning numbers);
* `llm-train`: tiny-GPT runs in the large-model formats (`sample_logs/llm/train`), fitted on (tuning);
* `llm-replay`: the same families drawn with another seed, never fitted on (held out).

It prints symptom accuracy, cause top-1/top-2, false alarms on healthy runs, the Brier score of the
verdict's confidence, the train-test gap and the test split's reliability table; `--mistakes` lists
every wrong verdict. A labels file has columns path, symptom, cause (and optionally anything else);
`path` is relative to the file's folder, `cause` may list several acceptable causes separated by `;` or
`|`, and the symptom `unhealthy` accepts any verdict but healthy.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from diagnostics import diagnose
from diagnostics.calibration import Calibration, brier, reliability
from diagnostics.model import SYMPTOMS
from diagnostics.params import Params
from diagnostics.split import CORPUS, EXTRA, FRESH, LLM_REPLAY, LLM_TRAIN, REPO, UNSEEN, paths_of
from parsers import ParseError, load_paths
from parsers.model import RunMeta

SAMPLES = REPO / "sample_logs" / "labels.csv"
REAL_LABELS = REPO / "sample_logs" / "real_logs_labels.csv"
REAL_LOGS = Path(os.environ.get("LOSS_DOCTOR_REAL_LOGS", REPO.parent / "shared" / "real_logs"))
SETS = (
    "corpus-train",
    "corpus-extra",
    "corpus-test",
    "corpus-fresh",
    "corpus-unseen",
    "real-blind",
    "real-tuned",
    "samples",
    "llm-train",
    "llm-replay",
)
TUNING_SETS = ("corpus-train", "corpus-extra", "real-tuned", "samples", "llm-train")
# Run facts that count as the log stating how the run was set up; a log without any (a Keras CSV, bare
# TensorBoard scalars) shows only curves, and a fault that only lowers the level it reaches is invisible.
SETTINGS = ("base_lr", "batch_size", "optimizer", "net_name")


@dataclass
class Row:
    path: str
    symptom: str
    causes: list[str]
    predicted: str = "unreadable"
    ranked: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0
    confidence: float = math.nan  # the verdict's confidence
    cause_confidence: float = math.nan  # the first cause's confidence
    uncertain: bool = False
    runner_up: str | None = None  # the second reading of an uncertain verdict
    states_settings: bool | None = None  # the log states any training setting (lr, batch, optimiser, net)

    @property
    def symptom_right(self) -> bool:
        if self.symptom == "unhealthy":
            return self.predicted not in ("healthy", "unreadable")
        return self.predicted == self.symptom


@dataclass
class Scores:
    runs: int
    symptom_accuracy: float
    cause_runs: int
    cause_top1: float
    cause_top2: float
    healthy_runs: int
    false_alarms: int
    false_alarm_rate: float
    unreadable: int
    brier: float
    uncertain: int
    confusion: dict[str, dict[str, int]]
    mistakes: list[dict]


def read_labels(path: Path, only: set[str] | None = None, where: dict[str, str] | None = None) -> list[Row]:
    """The rows of a labels file (those in `only`, and whose columns match `where`)."""
    with path.open(newline="", encoding="utf-8") as fh:
        rows = []
        for rec in csv.DictReader(fh):
            if only is not None and rec["path"].strip() not in only:
                continue
            if where and any(rec.get(k) != v for k, v in where.items()):
                continue
            causes = [c.strip() for c in re.split(r"[;|]", rec.get("cause") or "") if c.strip()]
            rows.append(Row(rec["path"].strip(), rec["symptom"].strip(), causes))
        return rows


def resolve_run_path(base: Path, rel: str) -> Path:
    """A labels file's run path: relative to the labels' folder, to the working directory, or to the
    folder above (the samples' labels name `sample_logs/...`)."""
    for candidate in (base / rel, Path(rel), base.parent / rel):
        if candidate.exists():
            return candidate
    return base / rel


def _judge(task: tuple[str, Params | None, Calibration | None]) -> dict:
    """Parse and diagnose one run (in a worker process); never raises for a bad log."""
    path, params, calibration = task
    start = time.perf_counter()
    try:
        kwargs = {k: v for k, v in (("params", params), ("calibration", calibration)) if v is not None}
        log = load_paths([path])
        d = diagnose(log, **kwargs)
    except (ParseError, OSError, ValueError) as err:
        return {"error": str(err).splitlines()[0] if str(err) else type(err).__name__}
    readings = d.readings()
    return {
        "predicted": d.symptom.symptom,
        "confidence": d.symptom.confidence,
        "ranked": [c.id for c in d.causes],
        "cause_confidence": d.causes[0].confidence if d.causes else math.nan,
        "uncertain": d.uncertain,
        "runner_up": readings[1][0] if len(readings) > 1 else None,
        "seconds": time.perf_counter() - start,
        "states_settings": states_settings(log.meta),
    }


def states_settings(meta: RunMeta) -> bool:
    """The log states a training setting (lr, batch size, optimiser or net): not a curves-only log."""
    return any(getattr(meta, name) is not None for name in SETTINGS)


def _worker_init() -> None:
    os.environ["LOSS_DOCTOR_WORKERS"] = "1"  # one process per run: no nested forks in the Caffe parser


def judge_all(
    paths: list[Path], params: Params | None = None, calibration: Calibration | None = None, jobs: int = 0
) -> list[dict]:
    """Diagnose many runs, in `jobs` processes (0: one per core)."""
    jobs = jobs or os.cpu_count() or 1
    tasks = [(str(p), params, calibration) for p in paths]
    if jobs == 1 or len(tasks) < 4:
        return [_judge(t) for t in tasks]
    with ProcessPoolExecutor(jobs, initializer=_worker_init) as pool:
        return list(pool.map(_judge, tasks, chunksize=4))


def run(
    labels: Path,
    only: set[str] | None = None,
    *,
    where: dict[str, str] | None = None,
    base: Path | None = None,
    params: Params | None = None,
    calibration: Calibration | None = None,
    jobs: int = 0,
) -> tuple[list[Row], Scores]:
    rows = read_labels(labels, only, where)
    folder = base or labels.parent
    paths = [resolve_run_path(folder, r.path) for r in rows]
    for row, out in zip(rows, judge_all(paths, params, calibration, jobs), strict=True):
        for key, value in out.items():
            setattr(row, key, value)
    return rows, score(rows)


def score(rows: list[Row]) -> Scores:
    n = len(rows) or 1
    with_cause = [r for r in rows if r.causes]
    healthy = [r for r in rows if r.symptom == "healthy"]
    columns = [*SYMPTOMS, "unreadable"]
    confusion = {s: dict.fromkeys(columns, 0) for s in SYMPTOMS}
    for r in rows:
        confusion.setdefault(r.symptom, dict.fromkeys(columns, 0))[r.predicted] += 1
    mistakes = []
    for r in rows:
        top1 = bool(r.causes) and bool(r.ranked) and r.ranked[0] in r.causes
        if not r.symptom_right or (r.causes and not top1):
            mistakes.append(
                {
                    "path": r.path,
                    "symptom": r.symptom,
                    "predicted": r.predicted,
                    "confidence": None if math.isnan(r.confidence) else round(r.confidence, 2),
                    "causes": r.causes,
                    "ranked": r.ranked[:3],
                    "error": r.error,
                }
            )
    top1 = sum(1 for r in with_cause if r.ranked[:1] and r.ranked[0] in r.causes)
    top2 = sum(1 for r in with_cause if set(r.ranked[:2]) & set(r.causes))
    alarms = sum(1 for r in healthy if r.predicted != "healthy")
    judged = [r for r in rows if r.error is None]
    return Scores(
        runs=len(rows),
        symptom_accuracy=sum(r.symptom_right for r in rows) / n,
        cause_runs=len(with_cause),
        cause_top1=top1 / (len(with_cause) or 1),
        cause_top2=top2 / (len(with_cause) or 1),
        healthy_runs=len(healthy),
        false_alarms=alarms,
        false_alarm_rate=alarms / (len(healthy) or 1),
        unreadable=sum(r.error is not None for r in rows),
        brier=brier(np.array([r.confidence for r in judged]), np.array([r.symptom_right for r in judged])),
        uncertain=sum(r.uncertain for r in judged),
        confusion=confusion,
        mistakes=mistakes,
    )


def render(s: Scores, mistakes: bool = True) -> str:
    out = [
        f"runs: {s.runs} (unreadable: {s.unreadable})",
        f"symptom accuracy: {s.symptom_accuracy:.1%}",
        f"cause top-1: {s.cause_top1:.1%}   top-2: {s.cause_top2:.1%}   ({s.cause_runs} runs with a cause)",
        f"false alarms on healthy runs: {s.false_alarms}/{s.healthy_runs} = {s.false_alarm_rate:.1%}",
        f"Brier score of the verdict: {s.brier:.3f}   uncertain verdicts: {s.uncertain}",
        "",
        "confusion (rows: label, columns: predicted)",
    ]
    labels = [k for k, v in s.confusion.items() if sum(v.values())]
    columns = [c for c in [*SYMPTOMS, "unreadable"] if any(s.confusion[k][c] for k in labels)]
    width = max(len(c) for c in [*columns, *labels, "label"]) + 1
    out.append("label".ljust(width) + "".join(c[:width].rjust(width) for c in columns))
    for k in labels:
        out.append(k.ljust(width) + "".join(str(s.confusion[k][c]).rjust(width) for c in columns))
    if mistakes and s.mistakes:
        out += ["", "mistakes:"]
        for m in s.mistakes:
            extra = f" error={m['error']}" if m["error"] else ""
            out.append(
                f"  {m['path']}: symptom {m['symptom']} -> {m['predicted']} ({m['confidence']}); "
                f"cause {m['causes']} -> {m['ranked']}{extra}"
            )
    return "\n".join(out)


def render_reliability(rows: list[Row]) -> str:
    judged = [r for r in rows if r.error is None]
    conf = np.array([r.confidence for r in judged])
    right = np.array([r.symptom_right for r in judged])
    out = ["confidence    runs   mean conf.   right"]
    for lo, hi, n, mean, acc in reliability(conf, right):
        shown = f"{mean:10.1%}   {acc:6.1%}" if n else f"{'-':>10}   {'-':>6}"
        out.append(f"{lo:.1f}-{hi:.1f}   {n:6d}   {shown}")
    return "\n".join(out)


def render_by_settings(rows: list[Row]) -> str:
    """The scores of the runs whose log states its settings and of those that show only curves."""
    out = ["| the log shows | runs | symptom | cause top-1 | false alarms |", "|---|---|---|---|---|"]
    for label, stated in (("settings and curves", True), ("curves only", False)):
        part = [r for r in rows if r.states_settings is stated]
        if part:
            s = score(part)
            out.append(
                f"| {label} | {s.runs} | {s.symptom_accuracy:.1%} | {s.cause_top1:.1%} ({s.cause_runs}) | "
                f"{s.false_alarms}/{s.healthy_runs} |"
            )
    return "\n".join(out)


# The corpus sets a split.csv freezes: (folder, the split of its manifest that the set is).
CORPUS_SETS = {
    "corpus-train": (CORPUS, "train"),
    "corpus-test": (CORPUS, "test"),
    "corpus-fresh": (FRESH, "fresh"),
    "corpus-unseen": (UNSEEN, "unseen"),
    "corpus-extra": (EXTRA, "train"),
}


def set_source(name: str) -> tuple[Path, dict] | None:
    """A named set's labels file and the filters `run` takes for it (`only`, `where`, `base`); None
    when its data is absent, e.g. the real logs outside the repo."""
    if name in CORPUS_SETS:
        folder, split = CORPUS_SETS[name]
        if not (folder / "split.csv").exists():
            return None
        return folder / "labels.csv", {"only": paths_of(split, folder)}
    if name.startswith("real-"):
        if not REAL_LOGS.is_dir():
            return None
        return REAL_LABELS, {"where": {"labelled": name.removeprefix("real-")}, "base": REAL_LOGS}
    if name in ("llm-replay", "llm-train"):  # replay: nothing is fitted on it; train: fitted on
        folder = LLM_REPLAY if name == "llm-replay" else LLM_TRAIN
        return (folder / "labels.csv", {}) if folder.is_dir() else None
    return SAMPLES, {}


def load_set(name: str, **kwargs) -> tuple[list[Row], Scores] | None:
    """Judge one named set (None when its data is absent)."""
    source = set_source(name)
    if source is None:
        return None
    labels, filters = source
    return run(labels, **filters, **kwargs)


def summary_table(results: dict[str, tuple[list[Row], Scores]]) -> str:
    out = [
        "| set | runs | symptom | cause top-1 | cause top-2 | false alarms | Brier | kind |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, (_, s) in results.items():
        kind = "tuning" if name in TUNING_SETS else "held out"
        out.append(
            f"| {name} | {s.runs} | {s.symptom_accuracy:.1%} | {s.cause_top1:.1%} ({s.cause_runs}) | "
            f"{s.cause_top2:.1%} | {s.false_alarms}/{s.healthy_runs} = {s.false_alarm_rate:.1%} | "
            f"{s.brier:.3f} | {kind} |"
        )
    if "corpus-train" in results:
        tr = results["corpus-train"][1]
        held = [name for name in ("test", "fresh", "unseen") if f"corpus-{name}" in results]
        gaps = [(name, results[f"corpus-{name}"][1]) for name in held]
        out += [""] if gaps else []
        out += [
            f"train - {name} gap: symptom {100 * (tr.symptom_accuracy - s.symptom_accuracy):+.1f} points, "
            f"cause top-1 {100 * (tr.cause_top1 - s.cause_top1):+.1f} points"
            for name, s in gaps
        ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m diagnostics.evaluate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("labels", type=Path, nargs="?", help="one labels file (default: every labelled set)")
    parser.add_argument("--set", choices=SETS, action="append", help="score only these sets")
    parser.add_argument("--mistakes", action="store_true", help="list every wrong verdict")
    parser.add_argument("--jobs", type=int, default=0, help="processes (default: one per core)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.labels is not None:
        if not args.labels.exists():
            print(f"{args.labels}: no such file", file=sys.stderr)
            return 2
        rows, scores = run(args.labels, jobs=args.jobs)
        if args.json:
            print(json.dumps({"scores": asdict(scores), "rows": [asdict(r) for r in rows]}, indent=2))
        else:
            print(render(scores))
        return 0
    results = {}
    for name in args.set or SETS:
        found = load_set(name, jobs=args.jobs)
        if found is None:
            print(f"{name}: skipped (its data is absent)", file=sys.stderr)
            continue
        results[name] = found
    if args.json:
        payload = {
            k: {"scores": asdict(s), "rows": [asdict(r) for r in rows]} for k, (rows, s) in results.items()
        }
        print(json.dumps(payload, indent=2, default=str))
        return 0
    print(summary_table(results))
    if "corpus-test" in results:
        print("\nreliability of the verdict's confidence, test split:")
        print(render_reliability(results["corpus-test"][0]))
        print("\ntest split by what the log shows:")
        print(render_by_settings(results["corpus-test"][0]))
    for name, (_, s) in results.items():
        print(f"\n== {name}")
        print(render(s, mistakes=args.mistakes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
