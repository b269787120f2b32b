"""What the printed arguments add to a curves-only log: `python bench/with_settings.py [--jobs N]`.

`diagnostics.evaluate` splits each set into runs whose log states its settings and runs that show only
curves (TensorBoard events, Keras CSVs, `trainer_state.json` of the corpus: no lr, batch, optimiser or
net in the log), and the first cause is right far less often on the second. The page asks such users to
upload their settings beside the curves (the "Not checked" list), and reads them (`settings_file`). This
measures what that gives: every curves-only PyTorch run of the corpus sets is diagnosed as it is and
again with `args.txt` beside it, the argparse namespace its training script held (rebuilt from the
run's recipe by the generator's own `generator.corpus.settings`; the line the corpus's print-style runs
start with, which the run below checks for every such run). Nothing here is fitted: the diagnosis is
the committed one. Per set: runs, symptom, cause top-1 / top-2, false alarms, without -> with; and for
the tuning sets, the faults called healthy and how many of them are in logs where a configuration check
could not run. TensorBoard runs are judged a third time with the namespace logged into the run's
event files (`SummaryWriter.add_text("args", ...)`, as HF's Trainer logs its arguments), which must read
as `args.txt` does. Exit 1 when a rebuilt namespace differs from a printed one, a curves-only run has no
recipe, or the logged arguments read otherwise than the file.
"""

from __future__ import annotations

import argparse
import gzip
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "sample_logs"))

from generator.corpus.recipe import Recipe  # noqa: E402
from generator.corpus.scenarios import build  # noqa: E402
from generator.corpus.settings import config, namespace_line  # noqa: E402
from tensorboardX import SummaryWriter  # noqa: E402

from diagnostics import diagnose  # noqa: E402
from diagnostics.evaluate import Row, read_labels, resolve_run_path, score, set_source, states_settings  # noqa: E402
from diagnostics.model import Diagnosis  # noqa: E402
from parsers import ParseError, load, source_files  # noqa: E402
from parsers.source import SourceFile  # noqa: E402

SETS = ("corpus-train", "corpus-extra", "corpus-test", "corpus-fresh", "corpus-unseen")
TUNING = ("corpus-train", "corpus-extra")
# PyTorch groups the corpus, fresh, extra and unseen sets were drawn from (sample_logs/generate_corpus.py:
# 90 + 30 + 144 + 30); the sampling is sequential, so the first groups of a longer build are the same.
GROUPS = 294


def recipes() -> dict[str, Recipe]:
    return {r.run_id: r for group in build(GROUPS) for r in group}


def arguments(known: dict[str, Recipe], run: str) -> str | None:
    """The namespace the run's script printed (None for a run the PyTorch sampling did not draw)."""
    recipe = known.get(Path(run).name)
    return namespace_line(config(recipe)) if recipe is not None else None


def logged_arguments(printed: str) -> bytes:
    """An event file in which tensorboardX's SummaryWriter logged `printed` as the text `args`."""
    with tempfile.TemporaryDirectory() as folder:
        with SummaryWriter(folder) as writer:
            writer.add_text("args", printed)
        (written,) = Path(folder).glob("events.out.tfevents.*")
        return written.read_bytes()


def judge(task: tuple[str, str | None]) -> dict | None:
    """One run as it is (its verdict, causes, and whether some configuration check could not run for
    want of settings) and, when its log is curves-only, with the arguments beside it (None: the run
    has no recipe) and, for TensorBoard runs, logged into an event file of the run; None when the log
    cannot be read."""
    path, printed = task
    files = source_files([path])
    try:
        log = load(files)
        alone = diagnose(log)
        curves_only = not states_settings(log.meta)
        both = logged = None
        if curves_only and printed is not None:
            both = diagnose(load([*files, SourceFile.from_bytes("args.txt", printed.encode())]))
            if log.meta.format == "tfevents":
                events = SourceFile.from_bytes("events.out.tfevents.args", logged_arguments(printed))
                logged = diagnose(load([*files, events]))
    except (ParseError, OSError, ValueError):
        return None
    out = {"alone": _reading(alone), "unchecked": bool(alone.unchecked), "curves_only": curves_only}
    out |= {"both": _reading(both)} if both is not None else {}
    return out | ({"logged": _reading(logged)} if logged is not None else {})


def _reading(d: Diagnosis) -> dict:
    return {"predicted": d.symptom.symptom, "ranked": [c.id for c in d.causes]}


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
    logged = [0, 0]  # TensorBoard runs judged with their arguments logged, of them read as args.txt
    no_recipe: list[str] = []
    blind: list[str] = []
    for name in args.set or SETS:
        source = set_source(name)
        if source is None:
            continue
        labels, filters = source
        rows = read_labels(labels, filters["only"])
        seen, same = printed_namespaces(rows, labels.parent, known)
        checked = [checked[0] + seen, checked[1] + same]
        tasks = [(str(resolve_run_path(labels.parent, r.path)), arguments(known, r.path)) for r in rows]
        with ProcessPoolExecutor(args.jobs) as pool:
            results = list(pool.map(judge, tasks, chunksize=4))
        pairs = [(r, res) for r, res in zip(rows, results, strict=True) if res is not None]
        no_recipe += [r.path for r, res in pairs if res["curves_only"] and "both" not in res]
        in_events = [res for _, res in pairs if "logged" in res]
        agree = sum(res["logged"] == res["both"] for res in in_events)
        logged = [logged[0] + len(in_events), logged[1] + agree]
        if name in TUNING:
            missed = [
                res for r, res in pairs if r.symptom != "healthy" and res["alone"]["predicted"] == "healthy"
            ]
            blind.append(
                f"{name}: {len(missed)} faults called healthy, {sum(r['unchecked'] for r in missed)} of "
                "them in logs where a configuration check could not run (`Diagnosis.unchecked`)"
            )
        compared = [(r, res) for r, res in pairs if "both" in res]
        scored = []
        for which in ("alone", "both"):
            part = [Row(r.path, r.symptom, r.causes, **res[which]) for r, res in compared]
            scored.append(score(part))
        out.append(line(name, *scored))
    print(
        f"Recipes rebuilt: the print-style runs' printed namespace reproduced for {checked[1]} of "
        f"{checked[0]}.\n"
    )
    print("\n".join(out))
    print(
        f"\nTensorBoard runs with the arguments logged into an event file (`add_text`): read as args.txt "
        f"for {logged[1]} of {logged[0]}."
    )
    print("\n" + "\n".join(blind))
    if no_recipe:
        print(f"\ncurves-only runs without a recipe (raise GROUPS?): {', '.join(no_recipe)}")
    print(f"\n{time.perf_counter() - started:.0f} s")
    consistent = checked[0] == checked[1] and logged[0] == logged[1]
    return 0 if checked[0] and logged[0] and consistent and not no_recipe else 1


if __name__ == "__main__":
    sys.exit(main())
