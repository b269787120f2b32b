"""What the printed arguments add to a curves-only log: `python bench/with_settings.py [--jobs N]`.

`diagnostics.evaluate` splits each set into runs whose log states its settings and runs that show only
curves (TensorBoard events, Keras CSVs, `trainer_state.json` of the corpus: no lr, batch, optimiser or
net in the log), and the first cause is right far less often on the second. The page asks such users to
upload their settings beside the curves (the "Not checked" list), and reads them (`settings_file`). This
measures what that gives: every curves-only PyTorch run of the corpus sets is diagnosed as it is and
again with `args.txt` beside it, the argparse namespace its training script held (rebuilt from the
run's recipe by the generator's own `generator.corpus.settings`; the line the corpus's print-style runs
start with, which the run below checks for every such run). Nothing here is fitted: the diagnosis is
the committed one. Per set: runs, symptom, cause top-1 / top-2, false alarms, without -> with.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "sample_logs"))

from generator.corpus.recipe import Recipe  # noqa: E402
from generator.corpus.scenarios import build  # noqa: E402
from generator.corpus.settings import config, namespace_line  # noqa: E402

from diagnostics import diagnose  # noqa: E402
from diagnostics.evaluate import SETTINGS, Row, read_labels, resolve_run_path, score, set_source  # noqa: E402
from parsers import ParseError, load  # noqa: E402
from parsers.source import SourceFile  # noqa: E402

SETS = ("corpus-train", "corpus-extra", "corpus-test", "corpus-fresh", "corpus-unseen")
TUNING = ("corpus-train", "corpus-extra")
# PyTorch groups the corpus, fresh, extra and unseen sets were drawn from (sample_logs/generate_corpus.py:
# 90 + 30 + 144 + 30); the sampling is sequential, so the first groups of a longer build are the same.
GROUPS = 294


def recipes() -> dict[str, Recipe]:
    return {r.run_id: r for group in build(GROUPS) for r in group}


def judge(task: tuple[str, str]) -> dict | None:
    """(diagnosis as it is, with the arguments beside it) of a curves-only run; None when its log
    states settings, or cannot be read."""
    path, arguments = task
    files = [SourceFile.from_path(p) for p in sorted(Path(path).rglob("*")) if p.is_file()]
    try:
        log = load(files)
        if any(getattr(log.meta, name) is not None for name in SETTINGS):
            return None
        alone = diagnose(log)
        both = diagnose(load([*files, SourceFile.from_bytes("args.txt", arguments.encode())]))
    except (ParseError, OSError, ValueError):
        return None
    return {
        name: {"predicted": d.symptom.symptom, "ranked": [c.id for c in d.causes]}
        for name, d in (("alone", alone), ("both", both))
    }


def printed_namespaces(rows: list[Row], folder: Path, known: dict[str, Recipe]) -> tuple[int, int]:
    """(print-style runs whose log starts with a namespace, of them the ones `config` reproduces)."""
    seen = same = 0
    for row in rows:
        log = resolve_run_path(folder, row.path) / "train.log.gz"
        recipe = known.get(Path(row.path).name)
        if recipe is None or not log.exists():
            continue
        with gzip.open(log, "rt", encoding="utf-8") as fh:
            first = fh.readline().rstrip("\n")
        if first.startswith("Namespace("):
            seen += 1
            same += first == namespace_line(config(recipe))
    return seen, same


def line(name: str, a, b) -> str:
    kind = "tuning" if name in TUNING else "held out"
    return (
        f"| {name} ({kind}) | {a.runs} | {a.symptom_accuracy:.1%} -> {b.symptom_accuracy:.1%} | "
        f"{a.cause_top1:.1%} -> {b.cause_top1:.1%} ({a.cause_runs}) | "
        f"{a.cause_top2:.1%} -> {b.cause_top2:.1%} | "
        f"{a.false_alarms}/{a.healthy_runs} -> {b.false_alarms}/{b.healthy_runs} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--set", action="append", choices=SETS, help="only these sets (default: all)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    known = recipes()
    os.environ["LOSS_DOCTOR_WORKERS"] = "1"
    out = [
        "| set | curves-only runs | symptom | cause top-1 (faults) | cause top-2 | false alarms |",
        "|---|---|---|---|---|---|",
    ]
    checked = [0, 0]
    for name in args.set or SETS:
        source = set_source(name)
        if source is None:
            continue
        labels, filters = source
        rows = [r for r in read_labels(labels, filters["only"]) if Path(r.path).name in known]
        seen, same = printed_namespaces(rows, labels.parent, known)
        checked = [checked[0] + seen, checked[1] + same]
        tasks = [
            (str(resolve_run_path(labels.parent, r.path)), namespace_line(config(known[Path(r.path).name])))
            for r in rows
        ]
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(judge, tasks, chunksize=4))
        pairs = [(r, res) for r, res in zip(rows, results, strict=True) if res is not None]
        scored = []
        for which in ("alone", "both"):
            part = [Row(r.path, r.symptom, r.causes, **res[which]) for r, res in pairs]
            scored.append(score(part))
        out.append(line(name, *scored))
    print(
        f"Recipes rebuilt: the print-style runs' printed namespace reproduced for {checked[1]} of "
        f"{checked[0]}.\n"
    )
    print("\n".join(out))
    print(f"\n{time.perf_counter() - started:.0f} s")
    return 0 if checked[0] and checked[0] == checked[1] else 1


if __name__ == "__main__":
    sys.exit(main())
