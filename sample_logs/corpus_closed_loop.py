"""The closed loop over the labelled corpus (issue 10 part 2): for up to five PyTorch runs of every
config-level cause, the fix Loss Doctor offers first is applied to the run's settings and the run is
re-trained (same seed, same data), then judged by the generator's own outcome check.

    /work/main/.venv/bin/python sample_logs/corpus_closed_loop.py [--train-python /work/train-venv/bin/python]

App side (this script, no torch): each run is diagnosed as the page sees it; its leading cause's first fix
(key and numbers) is the plan. Training side (the training venv, `generator/corpus/closed_loop.py`):
the run's recipe is rebuilt exactly as generate_corpus.py built it, the fix applied to the recipe (an
lr moved by the fix's own old -> new, inputs normalised, BatchNorm back to momentum 0.1, weights loaded,
He init, a mean loss), the run and its group's healthy base re-trained, and the outcome checked against
the base (`outcome.is_healthy`, else the symptom `outcome.classify` sees). A fix that is no settings
change (check the data, add early stopping) is listed as not re-trained, as is a run the diagnosis
calls healthy (no fix offered). Writes sample_logs/corpus/closed_loop.csv and prints the README table;
tests/diagnostics/test_corpus_closed_loop.py checks the committed rows against the fixes the current
code offers.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CORPUS = HERE / "corpus"
RESULTS = CORPUS / "closed_loop.csv"
TRAIN_PYTHON = "/work/train-venv/bin/python"
# Causes a settings change can fix: the catalogue's, less those that need other data (overfitting, a data
# problem) and fp16 overflow (the corpus trains in fp32).
NOT_SETTINGS = ("overfitting", "data_issue", "fp16_overflow")
PER_CAUSE = 5
COLUMNS = [
    "row",
    "run",
    "source",
    "label_symptom",
    "label_cause",
    "diagnosed_symptom",
    "diagnosed_cause",
    "fix",
    "fix_params",
    "before_final_loss",
    "before_accuracy",
    "after",
    "after_final_loss",
    "after_accuracy",
    "why",
]


def config_causes() -> tuple[str, ...]:
    sys.path.insert(0, str(REPO))
    from diagnostics.model import CAUSES

    return tuple(c for c in CAUSES if c not in NOT_SETTINGS)


def selected_runs() -> list[dict[str, str]]:
    """The first PER_CAUSE PyTorch runs (by path) labelled with each config-level cause."""
    with (CORPUS / "labels.csv").open(encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if r["format"] != "caffe_glog"]
    chosen: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in sorted(rows, key=lambda r: r["path"]):
        cause = r["cause"].split(";")[0]
        if cause in config_causes() and len(chosen[cause]) < PER_CAUSE:
            chosen[cause].append(r)
    return [r for cause in config_causes() for r in chosen[cause]]


def first_fix(run: str) -> tuple[str, str, str, dict]:
    """(symptom, leading cause, its first fix key, the fix's numbers) as the page shows them."""
    sys.path.insert(0, str(REPO))
    from diagnostics import diagnose
    from parsers import load_paths

    d = diagnose(load_paths([CORPUS / run]))
    if not d.causes or not d.causes[0].fixes:
        return d.symptom.symptom, "", "", {}
    fix = d.causes[0].fixes[0]
    return d.symptom.symptom, d.causes[0].id, fix.key, {k: str(v) for k, v in fix.params.items()}


def label_fix(run: str, cause: str) -> tuple[str, dict]:
    """The first fix the catalogue gives for the run's labelled cause, computed from the run's own
    values by the builders the cause rules call: what the page would offer had it named that cause."""
    sys.path.insert(0, str(REPO))
    from diagnostics import fitted, fixes
    from diagnostics.context import Context
    from parsers import load_paths

    ctx = Context(load_paths([CORPUS / run]), fitted.PARAMS)
    p = ctx.params
    builders = {
        "lr_too_high": lambda: fixes.change_lr(ctx, 1 / p.lr_cut, "fixes.lower_lr"),
        "lr_too_low": lambda: fixes.change_lr(ctx, p.lr_raise, "fixes.raise_lr"),
        "input_scale": lambda: fixes.input_scale(ctx),
        "bn_stats": lambda: fixes.bn_batch_stats(ctx),
        "no_pretraining": lambda: fixes.pretrained(ctx),
        "depth_init": lambda: fixes.init(ctx),
        "small_batch": lambda: fixes.small_batch(ctx),
        "loss_normalization": lambda: fixes.loss_normalization(ctx),
    }
    fix = builders[cause]()[0]
    return fix.key, {k: str(v) for k, v in fix.params.items()}


def run_id(path: str) -> str:
    return path.removeprefix("runs/")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-python", default=TRAIN_PYTHON)
    args = p.parse_args(argv)
    start = time.perf_counter()
    rows, plan = [], []
    for r in selected_runs():
        symptom, cause, fix, params = first_fix(r["path"])
        base = {
            "run": r["path"],
            "label_symptom": r["symptom"],
            "label_cause": r["cause"],
            "diagnosed_symptom": symptom,
            "diagnosed_cause": cause,
            "before_final_loss": r["final_loss"],
            "before_accuracy": r["final_metric"],
        }
        labelled = label_fix(r["path"], r["cause"].split(";")[0])
        tries = [("diagnosis", fix, params)] if fix else []
        if labelled[0] != fix:  # the labelled cause's fix too: is the fix right where the diagnosis missed?
            tries.append(("label", *labelled))
        if not fix:
            rows.append(base | {"row": f"{run_id(r['path'])}:diagnosis", "source": "diagnosis"})
            rows[-1] |= {"after": "not re-trained", "why": "diagnosed healthy: no fix offered"}
        for source, key, numbers in tries:
            row_id = f"{run_id(r['path'])}:{source}"
            fix_row = {"row": row_id, "source": source, "fix": key, "fix_params": json.dumps(numbers)}
            rows.append(base | fix_row)
            plan.append({"row": row_id, "run_id": run_id(r["path"]), "fix": key, "params": numbers})
    out = subprocess.run(
        [args.train_python, "-m", "generator.corpus.closed_loop"],
        input=json.dumps(plan),
        capture_output=True,
        text=True,
        cwd=HERE,
        check=True,
    )
    results = {x["row"]: x for x in map(json.loads, out.stdout.splitlines())}
    for row in rows:
        result = results.get(row["row"])
        if result is None:
            continue
        if result["not_retrained"]:
            row |= {"after": "not re-trained", "why": result["not_retrained"]}
            continue
        row |= {
            "after": result["after"],
            "after_final_loss": f"{result['final_loss']:.4g}",
            "after_accuracy": f"{result['accuracy']:.4g}",
            "why": result["reason"],
        }
    with RESULTS.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    print(table(rows))
    print(f"\n{len(rows)} runs in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    return 0


def table(rows: list[dict]) -> str:
    """Per labelled cause: runs, fixed runs that train (healthy), other outcomes, not re-trained."""
    lines = [
        "| cause (label) | fix | runs | trains after the fix | other outcome | not re-trained |",
        "|---|---|---|---|---|---|",
    ]
    for cause in config_causes():
        for source in ("diagnosis", "label"):
            mine = [r for r in rows if r["label_cause"].split(";")[0] == cause and r["source"] == source]
            if not mine:
                continue
            fixes = defaultdict(int)
            for r in mine:
                fixes[r.get("fix", "").removeprefix("fixes.") or "none (called healthy)"] += 1
            healthy = sum(r.get("after") == "healthy" for r in mine)
            skipped = sum(r.get("after") == "not re-trained" for r in mine)
            other = [r["after"] for r in mine if r.get("after") not in ("healthy", "not re-trained")]
            offered = "first fix offered" if source == "diagnosis" else "the labelled cause's fix"
            lines.append(
                f"| {cause} | {offered}: {', '.join(f'{k} ({v})' for k, v in fixes.items())} | {len(mine)} | "
                f"{healthy} | {', '.join(other) or '-'} | {skipped} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
