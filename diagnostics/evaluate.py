"""Score the engine on a labelled set: `python -m diagnostics.evaluate LABELS.csv [--json]`.

LABELS.csv has columns path, symptom, cause (and optionally format, case, description); `path` is
relative to the CSV's folder (a folder path means all files of that run). `cause` may list several
acceptable causes separated by `;` or `|`, and is empty for healthy runs. Prints symptom accuracy,
cause top-1/top-2 accuracy, false alarms on healthy runs, a confusion matrix and every mistake.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from diagnostics import diagnose
from diagnostics.model import SYMPTOMS
from parsers import ParseError, load_paths


@dataclass
class Row:
    path: str
    symptom: str
    causes: list[str]
    predicted: str = "unreadable"
    ranked: list[str] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0


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
    confusion: dict[str, dict[str, int]]
    mistakes: list[dict]


def read_labels(path: Path) -> list[Row]:
    with path.open(newline="", encoding="utf-8") as fh:
        rows = []
        for rec in csv.DictReader(fh):
            causes = [c.strip() for c in re.split(r"[;|]", rec.get("cause") or "") if c.strip()]
            rows.append(Row(rec["path"].strip(), rec["symptom"].strip(), causes))
        return rows


def _resolve(base: Path, rel: str) -> Path:
    for candidate in (base / rel, Path(rel), base.parent / rel):
        if candidate.exists():
            return candidate
    return base / rel


def run(labels: Path) -> tuple[list[Row], Scores]:
    rows = read_labels(labels)
    for row in rows:
        start = time.perf_counter()
        try:
            d = diagnose(load_paths([_resolve(labels.parent, row.path)]))
        except (ParseError, OSError, ValueError) as err:
            row.error = str(err).splitlines()[0]
            continue
        row.predicted = d.symptom.symptom
        row.ranked = [c.id for c in d.causes]
        row.seconds = time.perf_counter() - start
    return rows, score(rows)


def score(rows: list[Row]) -> Scores:
    n = len(rows) or 1
    with_cause = [r for r in rows if r.causes]
    healthy = [r for r in rows if r.symptom == "healthy"]
    confusion = {s: dict.fromkeys([*SYMPTOMS, "unreadable"], 0) for s in SYMPTOMS}
    for r in rows:
        confusion.setdefault(r.symptom, dict.fromkeys([*SYMPTOMS, "unreadable"], 0))[r.predicted] += 1
    mistakes = []
    for r in rows:
        top1 = bool(r.causes) and bool(r.ranked) and r.ranked[0] in r.causes
        if r.predicted != r.symptom or (r.causes and not top1):
            mistakes.append(
                {
                    "path": r.path,
                    "symptom": r.symptom,
                    "predicted": r.predicted,
                    "causes": r.causes,
                    "ranked": r.ranked[:3],
                    "error": r.error,
                }
            )
    top1 = sum(1 for r in with_cause if r.ranked[:1] and r.ranked[0] in r.causes)
    top2 = sum(1 for r in with_cause if set(r.ranked[:2]) & set(r.causes))
    alarms = sum(1 for r in healthy if r.predicted != "healthy")
    return Scores(
        runs=len(rows),
        symptom_accuracy=sum(r.predicted == r.symptom for r in rows) / n,
        cause_runs=len(with_cause),
        cause_top1=top1 / (len(with_cause) or 1),
        cause_top2=top2 / (len(with_cause) or 1),
        healthy_runs=len(healthy),
        false_alarms=alarms,
        false_alarm_rate=alarms / (len(healthy) or 1),
        unreadable=sum(r.error is not None for r in rows),
        confusion=confusion,
        mistakes=mistakes,
    )


def render(s: Scores) -> str:
    out = [
        f"runs: {s.runs} (unreadable: {s.unreadable})",
        f"symptom accuracy: {s.symptom_accuracy:.1%}",
        f"cause top-1: {s.cause_top1:.1%}   top-2: {s.cause_top2:.1%}   ({s.cause_runs} runs with a cause)",
        f"false alarms on healthy runs: {s.false_alarms}/{s.healthy_runs} = {s.false_alarm_rate:.1%}",
        "",
        "confusion (rows: label, columns: predicted)",
    ]
    labels = [k for k, v in s.confusion.items() if sum(v.values())]
    columns = [c for c in [*SYMPTOMS, "unreadable"] if any(s.confusion[k][c] for k in labels)]
    width = max(len(c) for c in [*columns, *labels, "label"]) + 1
    out.append("label".ljust(width) + "".join(c[:width].rjust(width) for c in columns))
    for k in labels:
        out.append(k.ljust(width) + "".join(str(s.confusion[k][c]).rjust(width) for c in columns))
    if s.mistakes:
        out += ["", "mistakes:"]
        for m in s.mistakes:
            extra = f" error={m['error']}" if m["error"] else ""
            out.append(
                f"  {m['path']}: symptom {m['symptom']} -> {m['predicted']}; cause {m['causes']} -> "
                f"{m['ranked']}{extra}"
            )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diagnostics.evaluate")
    parser.add_argument("labels", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.labels.exists():
        print(f"{args.labels}: no such file", file=sys.stderr)
        return 2
    rows, scores = run(args.labels)
    if args.json:
        print(json.dumps({"scores": asdict(scores), "rows": [asdict(r) for r in rows]}, indent=2))
    else:
        print(render(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
