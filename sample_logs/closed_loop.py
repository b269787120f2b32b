"""The closed loop, measured (issue 10 part 2): each DEVELOPERS case run with a config fault is re-trained
with the corrected config the current `diagnostics.corrections` produces, and diagnosed again.

    /work/main/.venv/bin/python sample_logs/closed_loop.py [--train-python /work/train-venv/bin/python]

For every case run (case 1, case 2 at 1e-9 and 1e-4, case 3, case 4 from scratch) the run is diagnosed
as the page sees it (the case folder with its prototxts, or case 4's log alone, whose solver and net are
rebuilt from the echo), and every option the page offers (each option of each cause, applied alone; the
leading cause's first option among them) is written to closed_loop/<row>/ as the corrected files. The
training venv (torch) then re-trains each from those files: the corrected prototxts are read back into
the generator's dicts, everything else (data, seed, iterations, how the user stops a NaN run) is the
case's recipe in generator/caffe_runs.py, the same path generate.py runs. The new train.log is
diagnosed with `diagnostics.diagnose` and the row goes to closed_loop/results.csv and the table in
README.md. An option that is a command (`-weights X`) is re-trained only where the generator has X: case
4's fine-tuning run (case4_finetune_pretrained.log) is the scratch run with `-weights`, so it is the
after-run of that fix. tests/diagnostics/test_closed_loop.py checks the committed table against the
edits the current code produces.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT = HERE / "closed_loop"
RESULTS = OUT / "results.csv"
TRAIN_PYTHON = "/work/train-venv/bin/python"
COMMAND = "/work/main/.venv/bin/python sample_logs/closed_loop.py"

# The case runs with a config fault: run path (relative to sample_logs/), DEVELOPERS case.
RUNS = {
    "case1_resnet_frozen_bn": "1",
    "case2_fcn_lr1e-9": "2",
    "case2_fcn_lr1e-4": "2",
    "case3_vgg_scaled": "3",
    "case4_scratch.log": "4",
}
# Fixes the diagnosis does not offer for a run, but its label names and the generator has run:
# run -> (cause, fix key, the existing after-run, its command line).
LABELLED = {
    "case4_scratch.log": (
        "no_pretraining",
        "fixes.load_weights_caffe",
        "case4_finetune_pretrained.log",
        "./build/tools/caffe train -solver solver.prototxt -weights snapshots/taskA_iter_800.caffemodel",
    ),
}
# Why a row was not re-trained, or why its corrected run does not train, and caveats of a run the
# diagnosis calls healthy: written after reading the re-trained runs, keyed by row id. A row that does
# not train and has no entry here stops the script.
WHY = {
    "no_weights": "the generator has no pretrained VGG16 .caffemodel (the net expects ImageNet "
    "weights); the command is recorded only",
    "case2_fcn_lr1e-9__lr_too_low-1": "the diagnosis says healthy, but the loss only falls to 0.74, the "
    "class-prior level where case2_fcn_lr1e-4 sits (labelled plateau, no_pretraining): the filler-less "
    "convolutions are still all zero without -weights, so it predicts background everywhere",
    "case2_fcn_lr1e-9__loss_normalization-1": "the summed loss (1125 = 1024 pixels x ln 3) only falls to "
    "1008 (0.98 per pixel) in 3000 iterations: normalize: false makes the gradient 1024x larger, but "
    "1e-9 x 1024 is still ~1e-6, and without -weights the convolutions are all zero; FCN's unnormalised "
    "loss is meant for a pretrained net",
    "case2_fcn_lr1e-4__lr_too_low-1": "the same plateau at the class-prior loss (0.727): with no -weights "
    "the filler-less convolutions are all zero and only the score bias learns, which no lr changes; "
    "the fix is -weights (not re-trained here, see the row above)",
    "case3_vgg_scaled__input_scale-1": "without scale the inputs are raw pixels minus the mean (about "
    "+-128): with xavier weights and base_lr 0.0648 the first loss is 63.7 (saturated softmax) and the "
    "loss is NaN from iteration 10 (test accuracy 100% is Caffe counting NaN scores as correct). This "
    "net's lr and init were not tuned for [0, 255] inputs, as the edit assumes; the page's other "
    "option (keep the scale, retune lr/init) is advice, not an edit",
    "case3_vgg_scaled__lr_too_low-1": "base_lr 0.65 does not leave the ln(1000) = 6.91 plateau in 400 "
    "iterations (6.94 at the end; the diagnosis now adds lr_too_high): the inputs are still 256x small",
    "case4_scratch__lr_too_low-1": "the diagnosis says healthy (train loss 1.26 -> 0.017), but from "
    "scratch on 100 images it memorises: test loss 1.30 -> 1.51, test accuracy 50.2% -> 52.8%; the "
    "labelled fix (-weights, next row) reaches 91.8%",
}

COLUMNS = [
    "row",
    "case",
    "run",
    "cause",
    "option",
    "fix",
    "source",
    "edits",
    "command",
    "after",
    "before_symptom",
    "before_causes",
    "before_loss",
    "before_test_loss",
    "before_accuracy",
    "after_symptom",
    "after_causes",
    "after_loss",
    "after_test_loss",
    "after_accuracy",
    "outcome",
    "why",
    "seconds",
]


# ---------------------------------------------------------------- app side (diagnostics, no torch)


@dataclass
class Row:
    row: str
    case: str
    run: str
    cause: str
    option: int
    fix: str
    source: str  # "diagnosis" (an option the code offers) or "label" (the run's label, not offered)
    edits: list[list]  # [file, line, before, after]
    command: str
    after: str = ""  # the after-run, relative to sample_logs/ ("" when not re-trained)
    files: dict[str, str] = field(default_factory=dict)  # the after-run's config files to write
    values: dict[str, object] = field(default_factory=dict)


def uploads(run: str) -> list[tuple[str, bytes]]:
    """The run's files as the CLI reads them (a folder: every file in it)."""
    path = HERE / run
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [(p.name, p.read_bytes()) for p in files]


def diagnosis(run: str):
    from diagnostics import diagnose
    from parsers import load_paths

    log = load_paths([HERE / run])
    return log, diagnose(log)


def edit_list(edits) -> list[list]:
    return [[e.file, e.line, e.before, e.after] for e in edits]


def plan(run: str) -> list[Row]:
    """One row per option the page offers for the run (in its order), plus the labelled fix."""
    from diagnostics import corrections

    _, d = diagnosis(run)
    configs, found = corrections.for_uploads(uploads(run), d)
    short = run.removesuffix(".log")
    rows = []
    for cause, alternatives in corrections.by_cause(found).items():
        for number, option in enumerate(alternatives, 1):
            result = corrections.apply(configs, [option])
            row = Row(
                f"{short}__{cause}-{number}",
                RUNS[run],
                run,
                cause,
                number,
                option.fix,
                "diagnosis",
                edit_list(result.edits),
                " ".join(result.commands),
            )
            if option.edits:
                row.after = f"closed_loop/{row.row}"
                # the run folder's other files as they were (case 4's log came alone: only the edited)
                if (HERE / run).is_dir():
                    row.files = {c.name: c.text for c in configs if not c.rebuilt_from}
                row.files |= result.files
            rows.append(row)
    if run in LABELLED:
        cause, fix, after, command = LABELLED[run]
        if not any(r.cause == cause for r in rows):
            rows.append(
                Row(f"{short}__{cause}-label", RUNS[run], run, cause, 0, fix, "label", [], command, after)
            )
    return rows


def readings(run: str) -> dict[str, object]:
    """Symptom, causes, final train loss, final test loss and test accuracy of a run."""
    log, d = diagnosis(run)
    available = log.available()

    def last(metric: str, split: str) -> str:
        if (split, metric) not in available:
            return ""
        value = float(log.series(metric, split)["value"].iloc[-1])
        return "nan" if math.isnan(value) else f"{value:.4g}"

    return {
        "symptom": d.symptom.symptom,
        "causes": ";".join(c.id for c in d.causes),
        "loss": last("loss", "train"),
        "test_loss": last("loss", "test"),
        "accuracy": last("accuracy", "test"),
    }


def outcome(before: dict, after: dict) -> str:
    """healthy; better (the final loss at most 80% of before, or finite where it was NaN, and the
    accuracy not lower); else does not train."""
    if after["symptom"] == "healthy":
        return "trains (healthy)"
    b, a = float(before["loss"] or "nan"), float(after["loss"] or "nan")
    lower = math.isfinite(a) and (not math.isfinite(b) or a <= 0.8 * b)
    acc_ok = not before["accuracy"] or float(after["accuracy"] or 0) >= float(before["accuracy"])
    return (
        f"better (still {after['symptom']})" if lower and acc_ok else f"does not train ({after['symptom']})"
    )


def write_after_files(rows: list[Row]) -> None:
    for row in rows:
        if not row.files:
            continue
        folder = HERE / row.after
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, text in row.files.items():
            (folder / name).write_bytes(text.encode("utf-8", "surrogateescape"))


def train(rows: list[Row], python: str) -> dict[str, float]:
    jobs = [f"{row.after}={row.run}" for row in rows if row.files]
    if not jobs:
        return {}
    done = subprocess.run(
        [python, str(Path(__file__).resolve()), "--train", *jobs],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    print(done.stdout, end="")
    return {
        line.split()[1]: float(line.split()[2])
        for line in done.stdout.splitlines()
        if line.startswith("trained ")
    }


def measure(rows: list[Row], seconds: dict[str, float]) -> None:
    cache: dict[str, dict] = {}
    for row in rows:
        before = cache.setdefault(row.run, readings(row.run))
        row.values |= {f"before_{k}": v for k, v in before.items()}
        row.values["seconds"] = f"{seconds[row.after]:.1f}" if row.after in seconds else ""
        if not row.after:
            row.values["outcome"] = "not re-trained"
            row.values["why"] = WHY["no_weights"]
            continue
        after = readings(row.after)
        row.values |= {f"after_{k}": v for k, v in after.items()}
        row.values["outcome"] = outcome(before, after)
        if row.values["outcome"].startswith("does not train") and row.row not in WHY:
            raise SystemExit(f"{row.row}: does not train ({after}); say why in WHY")
        if row.row in WHY:
            row.values["why"] = WHY[row.row]
        elif row.source == "label":
            row.values["why"] = (
                f"not offered by the current diagnosis of {row.run}; the after-run is the existing "
                f"{row.after} (same net, solver, data and seed, plus -weights)"
            )


def csv_row(row: Row) -> dict[str, object]:
    out = {k: getattr(row, k) for k in COLUMNS[:10]}
    out["edits"] = json.dumps(row.edits, ensure_ascii=False)
    return out | {k: row.values.get(k, "") for k in COLUMNS[10:]}


def write_results(rows: list[Row]) -> None:
    with RESULTS.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow(csv_row(row))


def edits_cell(edits: list[list], command: str, most: int = 2) -> str:
    """`file:line before → after` (lines of the same change grouped), or the command."""
    if command and not edits:
        return f"command: `{command.split(' train ', 1)[-1]}`"
    groups: dict[tuple, list[int]] = {}
    for name, line, before, after in edits:
        groups.setdefault((name, (before or "").strip(), (after or "deleted").strip()), []).append(line)
    cells = []
    for (name, before, after), lines in groups.items():
        shown = ", ".join(map(str, lines[:most])) + (f", … ({len(lines)})" if len(lines) > most else "")
        cells.append(f"`{name}:{shown}` `{before}` → `{after}`")
    return "; ".join(cells)


def state(r: dict[str, str], side: str) -> str:
    if not r[f"{side}_symptom"]:
        return "-"
    acc = f", {float(r[f'{side}_accuracy']):.1%}" if r[f"{side}_accuracy"] else ""
    return f"{r[f'{side}_symptom']}, {r[f'{side}_loss']}{acc}"


def table(results: list[dict[str, str]]) -> str:
    head = (
        "| case | run | fix (cause, option) | edits | before: symptom, loss, test acc | "
        "after: symptom, loss, test acc | outcome |"
    )
    lines = [head, "|---|---|---|---|---|---|---|"]
    for r in results:
        option = f"{r['cause']} {r['option']}" if r["source"] == "diagnosis" else f"{r['cause']} (label)"
        outcome_cell = r["outcome"] + (f": {r['why']}" if r["why"] else "")
        lines.append(
            f"| {r['case']} | `{r['run']}` | {option} | {edits_cell(json.loads(r['edits']), r['command'])} | "
            f"{state(r, 'before')} | {state(r, 'after')} | {outcome_cell} |"
        )
    return "\n".join(lines)


def write_readme(seconds: float | None) -> None:
    with RESULTS.open(encoding="utf-8") as fh:
        results = list(csv.DictReader(fh))
    readme = HERE / "README.md"
    text = readme.read_text(encoding="utf-8")
    begin, end = "<!-- closed loop: generated by closed_loop.py -->", "<!-- /closed loop -->"
    head, _, rest = text.partition(begin)
    old, _, tail = rest.partition(end)
    took = next((line for line in old.splitlines() if line.startswith("Last run:")), "Last run: -")
    if seconds is not None:
        took = (
            f"Last run: {len(results)} rows, {sum(1 for r in results if r['seconds'])} of them re-trained, "
            f"in {seconds:.0f} s on this machine (2 busy cores, training on one thread)."
        )
    readme.write_text(f"{head}{begin}\n{table(results)}\n\n{took}\n{end}{tail}", encoding="utf-8")


def kept_runs(rows: list[Row]) -> dict[str, float]:
    """--no-train: the committed after-runs stay; their files must be what the current code writes."""
    for row in rows:
        for name, text in row.files.items():
            if (HERE / row.after / name).read_bytes() != text.encode("utf-8", "surrogateescape"):
                raise SystemExit(f"{row.after}/{name} differs from the current correction: re-train")
    with RESULTS.open(encoding="utf-8") as fh:
        return {r["after"]: float(r["seconds"]) for r in csv.DictReader(fh) if r["seconds"]}


def main_app(python: str, retrain_runs: bool = True) -> int:
    start = time.perf_counter()
    sys.path.insert(0, str(REPO))
    rows = [row for run in RUNS for row in plan(run)]
    OUT.mkdir(exist_ok=True)
    if retrain_runs:
        write_after_files(rows)
        seconds = train(rows, python)
    else:
        seconds = kept_runs(rows)
    measure(rows, seconds)
    write_results(rows)
    if retrain_runs:
        write_readme(time.perf_counter() - start)
    else:
        write_readme(None)
    for row in rows:
        symptoms = f"{row.values.get('before_symptom')} -> {row.values.get('after_symptom') or '-'}"
        print(f"{row.row}: {symptoms}  {row.values['outcome']}")
    return 0


# ---------------------------------------------------------------- training side (torch, no diagnostics)


def retrain(folder: Path, run: str) -> float:
    """Re-train `run`'s recipe with the prototxts in `folder` (the corrected ones) into folder/train.log."""
    import numpy as np
    import torch
    from generator.caffe import NetSpec, net_file_text, solver_file_text
    from generator.caffe_runs import RECIPES
    from generator.prototxt import parse_text, text_lines

    torch.set_num_threads(1)
    np.seterr(all="ignore")
    case = RECIPES[run]()
    if (HERE / run).is_dir():  # the committed before-files are what the recipe writes
        before = HERE / run
        assert (before / "solver.prototxt").read_text() == solver_file_text(case.solver, case.comments), run
        assert (before / case.net.file).read_text() == net_file_text(case.net), run
        # ... and the reader gives back the recipe's own dicts from them
        assert parse_text((before / case.net.file).read_text()) == case.net.param(), run
        assert parse_text((before / "solver.prototxt").read_text()) == case.solver, run
    solver, net = None, None
    for path in sorted(folder.glob("*.prototxt")):
        text = path.read_text(encoding="utf-8")
        parsed = parse_text(text)
        written = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        assert len(text_lines(parsed)) == len(written), f"{path}: not read back as written"
        for ours, theirs in zip(text_lines(parsed), written, strict=True):
            assert same_line(ours, theirs), f"{path}: {theirs!r} read back as {ours!r}"
        if path.name == "solver.prototxt":
            parsed.pop("train_state", None)  # echoed by Caffe, not a file field
            solver = parsed
            changed = {k: (case.solver.get(k), v) for k, v in parsed.items() if case.solver.get(k) != v}
            print(f"{folder.name}: solver changes {changed}")
        elif path.name == case.net.file:
            assert set(parsed) == {"name", "layer"}, path
            net = NetSpec(parsed["name"], parsed["layer"], path.name)
            changed = sum(a != b for a, b in zip(net.layers, case.net.layers, strict=True))
            print(f"{folder.name}: {path.name}: {changed} layers changed")
        else:
            raise SystemExit(f"{path}: a corrected file the generator cannot re-train from")
    start = time.perf_counter()
    case.caffe_run(folder / "train.log", solver, net).run()
    return time.perf_counter() - start


def same_line(ours: str, theirs: str) -> bool:
    """A line as the generator prints it and as the file has it: equal, or the same number spelled
    otherwise (`1e-5` is printed `1e-05`)."""
    if ours == theirs:
        return True
    key, _, value = ours.partition(": ")
    key2, _, value2 = theirs.partition(": ")
    try:
        return key == key2 and float(value) == float(value2.split("#")[0])
    except ValueError:
        return False


def main_train(jobs: list[str]) -> int:
    sys.path.insert(0, str(HERE))
    for job in jobs:
        after, _, run = job.partition("=")
        seconds = retrain(HERE / after, run)
        print(f"trained {after} {seconds:.1f}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-python", default=TRAIN_PYTHON, help="python of the training venv (torch)")
    parser.add_argument(
        "--no-train", action="store_true", help="keep the committed after-runs, redo the table"
    )
    parser.add_argument("--train", nargs="+", metavar="AFTER=RUN", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    return main_train(args.train) if args.train else main_app(args.train_python, not args.no_train)


if __name__ == "__main__":
    raise SystemExit(main())
